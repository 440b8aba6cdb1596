/**
 * Stops every server that any project's global setup started (jest runs this shared teardown once).
 */
import { registeredServers } from './servers';

/**
 * Jest globalTeardown.
 *
 * @example
 * // jest.config.js, in every project
 * { globalTeardown: '<rootDir>/test/support/global-teardown.ts' }
 */
export default async function globalTeardown(): Promise<void> {
  const servers = registeredServers().splice(0);
  await Promise.all(servers.map((s) => s.stop()));
}
