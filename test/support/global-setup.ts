/**
 * Starts the PostgreSQL servers every test file of one jest project shares: one with TLS (the default
 * everywhere) and one without (to prove verify-full refuses it), both of the project's major (its
 * `globals.__CONVERGE_PG_MAJOR__`, see jest.config.js). Each matrix project's globalSetup file
 * (./global-setup-pg14.ts ...) re-exports this function, since jest runs each distinct path only once.
 *
 * Connection facts reach the workers as environment variables holding one entry per major:
 * CONVERGE_TEST_PG (TLS) and CONVERGE_TEST_PG_PLAIN, e.g. `{"16":{"host":"127.0.0.1",...}}`. The setups
 * of all projects run one after the other in jest's parent process before any worker starts, so each
 * one rewrites both variables from every server started so far. Each test file provisions its own
 * database and roles (see ./database.ts).
 *
 * The default major's setup also builds the CLI (scripts/build-cli.mjs, under a second), so the tests
 * that spawn cli/bin.js run the current sources compiled, as `converge` runs them.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import {
  DEFAULT_MAJOR,
  parsePostgresMajor,
  startLocalPostgres,
  type LocalPostgres,
  type PostgresMajor,
} from '../../cli/local/postgres';
import { describeServer, registeredServers, type ServerInfo } from './servers';

/** The part of jest's project config this setup reads. */
interface ProjectConfigLike {
  readonly displayName?: string | { readonly name: string };
  readonly globals?: Record<string, unknown>;
}

/**
 * Jest globalSetup: starts the project's two servers and publishes them to the workers.
 *
 * @example
 * // jest.config.js, in a project
 * { displayName: 'pg16', globals: { __CONVERGE_PG_MAJOR__: 16 }, globalSetup: '<rootDir>/test/support/global-setup-pg16.ts' }
 */
export default async function globalSetup(
  _globalConfig: unknown,
  projectConfig?: ProjectConfigLike,
): Promise<void> {
  const major = projectMajor(projectConfig);
  const label = projectLabel(projectConfig, major);
  const started = Date.now();
  const [tls, plain] = await Promise.all([
    startLocalPostgres({ tls: true, major }),
    startLocalPostgres({ tls: false, major }),
    major === DEFAULT_MAJOR ? buildCli() : undefined,
  ]);
  const servers = registeredServers();
  servers.push(tls, plain);
  process.env.CONVERGE_TEST_PG = JSON.stringify(byMajor(servers.filter((s) => s.tls)));
  process.env.CONVERGE_TEST_PG_PLAIN = JSON.stringify(byMajor(servers.filter((s) => !s.tls)));
  console.log(
    `PostgreSQL ${tls.version} started for ${label} (TLS port ${tls.port}, plain port ${plain.port}, ${Date.now() - started} ms)`,
  );
}

function projectMajor(projectConfig: ProjectConfigLike | undefined): PostgresMajor {
  const fromGlobals = projectConfig?.globals?.__CONVERGE_PG_MAJOR__;
  return fromGlobals === undefined
    ? DEFAULT_MAJOR
    : parsePostgresMajor(fromGlobals as string | number);
}

/** Builds dist/cli/main.js, which cli/bin.js runs. */
async function buildCli(): Promise<void> {
  const root = resolve(__dirname, '../..');
  await promisify(execFile)(process.execPath, [resolve(root, 'scripts/build-cli.mjs'), '--quiet'], {
    cwd: root,
  });
}

function projectLabel(projectConfig: ProjectConfigLike | undefined, major: PostgresMajor): string {
  const name = projectConfig?.displayName;
  return (typeof name === 'string' ? name : name?.name) ?? `pg${major}`;
}

function byMajor(servers: readonly LocalPostgres[]): Record<string, ServerInfo> {
  return Object.fromEntries(servers.map((s) => [String(s.major), describeServer(s)]));
}
