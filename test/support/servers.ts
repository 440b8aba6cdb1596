/**
 * The servers the jest global setups started, kept on jest's parent-process global so the one
 * global teardown can stop all of them, and the JSON form in which workers receive them.
 */
import type { LocalPostgres } from '../../cli/local/postgres';

/** What a worker needs to reach a shared server (everything but `stop`). */
export type ServerInfo = Omit<LocalPostgres, 'stop'>;

/**
 * The servers started so far in this (jest's parent) process; global setups append to it.
 *
 * @example
 * registeredServers().push(await startLocalPostgres({ major: 16 }));
 */
export function registeredServers(): LocalPostgres[] {
  const holder = globalThis as { __convergePg?: LocalPostgres[] };
  holder.__convergePg ??= [];
  return holder.__convergePg;
}

/**
 * The JSON-safe facts of a server.
 *
 * @example
 * process.env.CONVERGE_TEST_PG = JSON.stringify({ [pg.major]: describeServer(pg) });
 */
export function describeServer(pg: LocalPostgres): ServerInfo {
  return {
    host: pg.host,
    port: pg.port,
    major: pg.major,
    version: pg.version,
    superuser: pg.superuser,
    caBundlePath: pg.caBundlePath,
    tls: pg.tls,
  };
}
