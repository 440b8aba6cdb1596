/**
 * Per-test-file access to the shared PostgreSQL servers started in global-setup.ts.
 * Roles are cluster-wide, so every name is suffixed with a random tag to keep parallel files apart.
 */
import { randomBytes } from 'node:crypto';
import type { Client } from 'pg';
import { provisionDatabase, withAdmin, type LocalPostgres, type ProvisionedDatabase } from '../../cli/local/postgres';


function server(envName: string): LocalPostgres {
  const raw = process.env[envName];
  if (!raw) throw new Error(`${envName} is not set: run tests through jest (global-setup starts PostgreSQL)`);
  const info = JSON.parse(raw) as Omit<LocalPostgres, 'stop'>;
  return { ...info, stop: async () => undefined };
}

/** The shared TLS server. */
export function tlsServer(): LocalPostgres {
  return server('CONVERGE_TEST_PG');
}

/** The shared server without TLS. */
export function plainServer(): LocalPostgres {
  return server('CONVERGE_TEST_PG_PLAIN');
}

/** A short random tag for unique names. */
export function uniqueTag(): string {
  return randomBytes(4).toString('hex');
}

/**
 * A fresh database on the TLS server with a CREATEROLE master and an application role.
 *
 * @example
 * const db = await freshDatabase('rot');  // db.app.username === 'rot_app_1a2b3c4d'
 */
export async function freshDatabase(prefix: string, options: { appUsername?: string; server?: LocalPostgres } = {}): Promise<ProvisionedDatabase & { server: LocalPostgres }> {
  const tag = uniqueTag();
  const srv = options.server ?? tlsServer();
  const db = await provisionDatabase(srv, {
    dbname: `${prefix}_db_${tag}`,
    master: `${prefix}_master_${tag}`,
    app: options.appUsername ?? `${prefix}_app_${tag}`,
  });
  return { ...db, server: srv };
}

/** Runs `fn` as the superuser on `dbname`. */
export function asSuperuser<T>(dbname: string, fn: (c: Client) => Promise<T>, srv: LocalPostgres = tlsServer()): Promise<T> {
  return withAdmin(srv, dbname, srv.superuser, fn);
}

/** The sorted role names matching a LIKE pattern, with their login flag: for before/after comparisons. */
export async function rolesLike(pattern: string): Promise<string[]> {
  return asSuperuser('postgres', async (c) => {
    const r = await c.query<{ rolname: string; rolcanlogin: boolean; rolpassword: string | null }>(
      'SELECT rolname, rolcanlogin, rolpassword FROM pg_authid WHERE rolname LIKE $1 ORDER BY rolname',
      [pattern],
    );
    return r.rows.map((x) => `${x.rolname}|${x.rolcanlogin}|${x.rolpassword ?? ''}`);
  });
}
