/**
 * The two kinds of database session the rotation function opens, and their options:
 * - as a rotated user (testSecret, the "already logs in?" probe): ordinary TLS sessions;
 * - as the master: TLS sessions whose `search_path` is pinned to `pg_catalog, pg_temp` before the
 *   first statement, and checked, so no name in converge's SQL can resolve to an object a rotated
 *   user created (see lambda/rotation/roles.ts).
 */
import type { Client } from 'pg';
import { DatabaseOperationError } from '../shared/errors';
import { withClient, type ConnectionOptions } from '../shared/pg-connection';
import type { StepContext } from './context';
import type { MasterConnection } from './master-secret';

/** `application_name` of every session the function opens. */
export const ROTATION_APPLICATION_NAME = 'converge-rotation';

/** Connection options from the function's configuration. */
export function connectionOptions(ctx: Pick<StepContext, 'config'>): ConnectionOptions {
  return {
    caBundlePath: ctx.config.caBundlePath,
    connectTimeoutMs: ctx.config.connectTimeoutMs,
    statementTimeoutMs: ctx.config.statementTimeoutMs,
    applicationName: ROTATION_APPLICATION_NAME,
  };
}

/** Connection options with the search path pinned to pg_catalog: every master session, and the pending user's session in testSecret. */
export function pinnedConnectionOptions(ctx: Pick<StepContext, 'config'>): ConnectionOptions {
  return { ...connectionOptions(ctx), pinCatalogSearchPath: true };
}

/**
 * Runs `fn` on a master session and always closes it. Before `fn` runs, the session's search path
 * is read back: if anything (a pooler that drops startup options, say) left it other than
 * `pg_catalog, pg_temp`, nothing is run.
 *
 * @throws {@link DatabaseOperationError} when the search path is not pinned
 *
 * @example
 * await withMasterSession(ctx, master, (c) => setRolePassword(c, { ... }));
 */
export async function withMasterSession<T>(
  ctx: Pick<StepContext, 'config'>,
  master: MasterConnection,
  fn: (client: Client) => Promise<T>,
): Promise<T> {
  return withClient(master.target, master.credential, pinnedConnectionOptions(ctx), async (c) => {
    await assertCatalogSearchPath(c);
    return fn(c);
  });
}

/**
 * @throws {@link DatabaseOperationError} unless the session's search_path is `pg_catalog, pg_temp`
 *
 * @example
 * await assertCatalogSearchPath(client);
 */
export async function assertCatalogSearchPath(c: Client): Promise<void> {
  const r = await c.query<{ path: string }>(
    "SELECT pg_catalog.current_setting('search_path') AS path",
  );
  const path = r.rows[0]?.path;
  if (path?.replace(/\s+/g, '') !== 'pg_catalog,pg_temp') {
    throw new DatabaseOperationError(
      `the master session's search_path is ${JSON.stringify(path)}, not "pg_catalog, pg_temp" (the startup option was not applied: ` +
        'a connection pooler in between?); refusing to run anything as the master',
    );
  }
}
