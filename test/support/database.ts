/**
 * Per-test-file access to the shared PostgreSQL servers started in global-setup.ts, of the major this
 * file's jest project runs (CONVERGE_PG_MAJOR, set by setup-major.ts; see jest.config.js).
 * Roles are cluster-wide, so every name is suffixed with a random tag to keep parallel files apart.
 */
import { randomBytes } from 'node:crypto';
import type { Client } from 'pg';
import {
  defaultPostgresMajor,
  provisionDatabase,
  withAdmin,
  type LocalPostgres,
  type PostgresMajor,
  type ProvisionedDatabase,
  type ProvisionOptions,
} from '../../cli/local/postgres';
import type { ServerInfo } from './servers';

/**
 * The PostgreSQL major this test file runs against (its jest project's, e.g. 16 in project `pg16`).
 *
 * @example
 * if (projectMajor() >= 16) expect(code).toBe('42501');
 */
export function projectMajor(): PostgresMajor {
  return defaultPostgresMajor();
}

function server(envName: string): LocalPostgres {
  const raw = process.env[envName];
  if (!raw) throw new Error(`${envName} is not set: run tests through jest (global-setup starts PostgreSQL)`);
  const major = projectMajor();
  const info = (JSON.parse(raw) as Record<string, ServerInfo>)[String(major)];
  if (!info) {
    throw new Error(`${envName} has no PostgreSQL ${major} server: this file's jest project did not start one (see jest.config.js)`);
  }
  return { ...info, stop: async () => undefined };
}

/**
 * The shared TLS server of this file's major.
 *
 * @example
 * const srv = tlsServer(); // srv.major === projectMajor()
 */
export function tlsServer(): LocalPostgres {
  return server('CONVERGE_TEST_PG');
}

/**
 * The shared server without TLS, of this file's major.
 *
 * @example
 * const srv = plainServer(); // srv.tls === false
 */
export function plainServer(): LocalPostgres {
  return server('CONVERGE_TEST_PG_PLAIN');
}

/**
 * A short random tag for unique names.
 *
 * @example
 * const role = `probe_${uniqueTag()}`;
 */
export function uniqueTag(): string {
  return randomBytes(4).toString('hex');
}

/** Options of {@link freshDatabase}. */
export interface FreshDatabaseOptions extends ProvisionOptions {
  /** Name of the application role. @default `${prefix}_app_<tag>` */
  readonly appUsername?: string;
  /** Server to use. @default the shared TLS server of this file's major */
  readonly server?: LocalPostgres;
}

/**
 * A fresh database on the TLS server with a CREATEROLE master and an application role, created by the
 * master unless `appCreatedBy: 'superuser'` (see provisionDatabase in cli/local/postgres.ts).
 *
 * @example
 * const db = await freshDatabase('rot');  // db.app.username === 'rot_app_1a2b3c4d'
 * const legacy = await freshDatabase('rds', { appCreatedBy: 'superuser' }); // on 16+ the master has no ADMIN OPTION on it
 */
export async function freshDatabase(prefix: string, options: FreshDatabaseOptions = {}): Promise<ProvisionedDatabase & { server: LocalPostgres }> {
  const tag = uniqueTag();
  const srv = options.server ?? tlsServer();
  const db = await provisionDatabase(
    srv,
    {
      dbname: `${prefix}_db_${tag}`,
      master: `${prefix}_master_${tag}`,
      app: options.appUsername ?? `${prefix}_app_${tag}`,
    },
    { appCreatedBy: options.appCreatedBy },
  );
  return { ...db, server: srv };
}

/**
 * Runs `fn` as the superuser on `dbname`.
 *
 * @example
 * await asSuperuser('postgres', (c) => c.query('SELECT 1'));
 */
export function asSuperuser<T>(dbname: string, fn: (c: Client) => Promise<T>, srv: LocalPostgres = tlsServer()): Promise<T> {
  return withAdmin(srv, dbname, srv.superuser, fn);
}

/**
 * The sorted role names matching a LIKE pattern, with their login flag: for before/after comparisons.
 *
 * @example
 * const before = await rolesLike('rot_%');
 */
export async function rolesLike(pattern: string): Promise<string[]> {
  return asSuperuser('postgres', async (c) => {
    const r = await c.query<{ rolname: string; rolcanlogin: boolean; rolpassword: string | null }>(
      'SELECT rolname, rolcanlogin, rolpassword FROM pg_authid WHERE rolname LIKE $1 ORDER BY rolname',
      [pattern],
    );
    return r.rows.map((x) => `${x.rolname}|${x.rolcanlogin}|${x.rolpassword ?? ''}`);
  });
}

/**
 * The comment on a role (`COMMENT ON ROLE`, where converge writes its pair marker), or null.
 *
 * @example
 * expect(await roleComment(h.db.dbname, 'app_clone')).toBe(pairMarker('app'));
 */
export async function roleComment(dbname: string, role: string): Promise<string | null> {
  return asSuperuser(dbname, async (c) => {
    const r = await c.query<{ d: string | null }>(
      "SELECT pg_catalog.shobj_description(oid, 'pg_authid') AS d FROM pg_catalog.pg_roles WHERE rolname = $1",
      [role],
    );
    return r.rows[0].d;
  });
}

