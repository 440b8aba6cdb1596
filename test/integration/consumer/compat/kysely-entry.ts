/**
 * Kysely on a pool, as the compatibility suite drives it (test/integration/consumer/compat/
 * kysely.test.ts). Kysely 0.29 is published as ES modules only, so the test loads this file as an
 * esbuild bundle with Kysely inside (CommonJS); the pool comes from the test.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Kysely, PostgresDialect, sql, type PostgresPool } from 'kysely';
import type { OrmUnderTest } from './compat-support';

interface Database {
  items: { id: string; note: string };
}

/** Thrown inside a transaction to roll it back on purpose. */
class DeliberateRollback extends Error {}

/**
 * The load's transaction and single query through Kysely, and Kysely's `destroy()` (which ends
 * the pool).
 *
 * @example
 * const { orm, destroy } = kyselyOrm(pool);
 */
export function kyselyOrm(pool: PostgresPool): { orm: OrmUnderTest; destroy(): Promise<void> } {
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const orm: OrmUnderTest = {
    async transaction(note, commit) {
      const pids: number[] = [];
      try {
        await db.transaction().execute(async (trx) => {
          for (let i = 0; i < 2; i++) {
            const r = await sql<{
              pid: number;
            }>`INSERT INTO items (note) VALUES (${note}) RETURNING pg_backend_pid() AS pid`.execute(
              trx,
            );
            pids.push(r.rows[0].pid);
            await sleep(5);
          }
          const read = await sql<{
            pid: number;
          }>`SELECT pg_backend_pid() AS pid FROM items WHERE note = ${note} LIMIT 1`.execute(trx);
          pids.push(read.rows[0].pid);
          if (!commit) throw new DeliberateRollback();
        });
      } catch (err) {
        if (!(err instanceof DeliberateRollback)) throw err;
      }
      return pids;
    },
    async sessionUser() {
      return (await sql<{ u: string }>`SELECT session_user AS u`.execute(db)).rows[0].u;
    },
  };
  return { orm, destroy: () => db.destroy() };
}
