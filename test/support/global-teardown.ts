import type { LocalPostgres } from '../../cli/local/postgres';

export default async function globalTeardown(): Promise<void> {
  const servers = (globalThis as { __convergePg?: LocalPostgres[] }).__convergePg ?? [];
  await Promise.all(servers.map((s) => s.stop()));
}
