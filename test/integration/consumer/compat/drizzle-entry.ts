/**
 * RotatingPgPool and Drizzle (node-postgres) as an application bundles them: the compatibility
 * suite (drizzle.test.ts) loads this file as a minified esbuild bundle, in which the class is
 * renamed, so Drizzle can recognise the pool only by `instanceof pg.Pool`. npm packages (pg,
 * drizzle-orm) stay external: `instanceof` is checked against the pg the bundle loads.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { sql, TransactionRollbackError } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { Pool } from 'pg';
import { RotatingPgPool, type RotatingPgPoolOptions } from '../../../../consumer/rotating-pg-pool';
import type { OrmUnderTest } from './compat-support';

/**
 * A pool of the bundled class.
 *
 * @example
 * const pool = createPool({ source, caBundlePath });
 */
export function createPool(options: RotatingPgPoolOptions): RotatingPgPool {
  return new RotatingPgPool(options);
}

/**
 * What Drizzle's node-postgres session checks first to tell a pool from a single client.
 *
 * @example
 * isPgPool(createPool(options)); // true
 */
export function isPgPool(value: unknown): boolean {
  return value instanceof Pool;
}

/**
 * The load's transaction and single query through Drizzle.
 *
 * @example
 * const orm = drizzleOrm(pool);
 */
export function drizzleOrm(pool: RotatingPgPool): OrmUnderTest {
  const db = drizzle({ client: pool });
  return {
    async transaction(note, commit) {
      const pids: number[] = [];
      try {
        await db.transaction(async (tx) => {
          for (let i = 0; i < 2; i++) {
            const r = await tx.execute<{ pid: number }>(
              sql`INSERT INTO items (note) VALUES (${note}) RETURNING pg_backend_pid() AS pid`,
            );
            pids.push(r.rows[0].pid);
            await sleep(5);
          }
          const read = await tx.execute<{ pid: number }>(
            sql`SELECT pg_backend_pid() AS pid FROM items WHERE note = ${note} LIMIT 1`,
          );
          pids.push(read.rows[0]?.pid ?? -1);
          if (!commit) tx.rollback();
        });
      } catch (err) {
        if (commit || !(err instanceof TransactionRollbackError)) throw err;
      }
      return pids;
    },
    async sessionUser() {
      return (await db.execute<{ u: string }>(sql`SELECT session_user AS u`)).rows[0].u;
    },
  };
}
