/**
 * The database half of the revocation guard: who is still connected as a user, and (emergency
 * only) ending those sessions. Run on the master connection; the master needs the privileges of
 * `pg_signal_backend` to terminate (RDS's `rds_superuser` has them).
 */
import type { Client } from 'pg';
import { parseApplicationName, type SessionAttribution } from '../../shared/application-name';
import { DatabaseOperationError, redactedCause } from '../../shared/errors';

/** One backend of the user, as pg_stat_activity shows it (never the query text). */
export interface UserSession {
  readonly pid: number;
  readonly applicationName: string;
  /** Client address, or null for Unix sockets and for rows the master may not see in full. */
  readonly clientAddr: string | null;
  readonly database: string | null;
  readonly backendStart: string | null;
  /**
   * Who opened it, parsed from its `cv1` application_name (lambda/shared/application-name.ts);
   * absent when the session was not opened through the consumer library ("unattributed").
   */
  readonly attribution?: SessionAttribution;
}

/** How long pg_terminate_backend waits for each backend to exit (PostgreSQL 14+). */
export const TERMINATE_WAIT_MS = 5_000;

/** Bound on terminate/recheck rounds (a consumer that reconnects at once gets a second round). */
export const TERMINATE_ROUNDS = 3;

/**
 * Sessions of `username` in the whole cluster (pg_stat_activity spans every database), excluding
 * the caller's own.
 *
 * @example
 * const sessions = await listSessions(master, 'app_clone');
 */
export async function listSessions(master: Client, username: string): Promise<UserSession[]> {
  try {
    const r = await master.query<{
      pid: number;
      application_name: string | null;
      client_addr: string | null;
      datname: string | null;
      backend_start: Date | null;
    }>(
      `SELECT pid, application_name, pg_catalog.host(client_addr) AS client_addr, datname, backend_start
         FROM pg_catalog.pg_stat_activity
        WHERE usename = $1::pg_catalog.name AND pid <> pg_catalog.pg_backend_pid()
        ORDER BY pid`,
      [username],
    );
    return r.rows.map((row) => {
      const attribution = parseApplicationName(row.application_name);
      return {
        pid: row.pid,
        applicationName: row.application_name ?? '',
        clientAddr: row.client_addr,
        database: row.datname,
        backendStart: row.backend_start ? new Date(row.backend_start).toISOString() : null,
        ...(attribution ? { attribution } : {}),
      };
    });
  } catch (err) {
    throw new DatabaseOperationError(`could not read pg_stat_activity for user "${username}"`, {
      cause: redactedCause(err),
      code: (err as { code?: string }).code,
    });
  }
}

/**
 * Terminates every session of `username` and returns those it terminated. Waits for each backend
 * to exit where the server supports it, re-checks, and repeats a bounded number of times for
 * clients that reconnect at once.
 *
 * @throws {@link DatabaseOperationError} when the master may not signal the backends (SQLSTATE
 * 42501: grant it `pg_signal_backend`) or sessions survive every round
 *
 * @example
 * const terminated = await terminateSessions(master, 'app_clone');
 */
export async function terminateSessions(master: Client, username: string): Promise<UserSession[]> {
  const terminated: UserSession[] = [];
  const waits = await supportsTerminateTimeout(master);
  for (let round = 1; round <= TERMINATE_ROUNDS; round++) {
    const sessions = await listSessions(master, username);
    if (sessions.length === 0) return terminated;
    for (const s of sessions) {
      try {
        const sql = waits
          ? 'SELECT pg_catalog.pg_terminate_backend($1::pg_catalog.int4, $2::pg_catalog.int8) AS ok'
          : 'SELECT pg_catalog.pg_terminate_backend($1::pg_catalog.int4) AS ok';
        await master.query(sql, waits ? [s.pid, TERMINATE_WAIT_MS] : [s.pid]);
        terminated.push(s);
      } catch (err) {
        const code = (err as { code?: string }).code;
        throw new DatabaseOperationError(
          code === '42501'
            ? `the master role may not terminate sessions of "${username}" (pid ${s.pid}): grant it pg_signal_backend`
            : `could not terminate session ${s.pid} of "${username}"`,
          { cause: redactedCause(err), code },
        );
      }
    }
  }
  const left = await listSessions(master, username);
  if (left.length > 0) {
    throw new DatabaseOperationError(
      `${left.length} session(s) of "${username}" survived ${TERMINATE_ROUNDS} rounds of pg_terminate_backend (pids ${left.map((s) => s.pid).join(', ')})`,
    );
  }
  return terminated;
}

async function supportsTerminateTimeout(master: Client): Promise<boolean> {
  const r = await master.query<{ v: string }>(
    "SELECT pg_catalog.current_setting('server_version_num') AS v",
  );
  return Number(r.rows[0]?.v) >= 140000;
}
