/**
 * Prisma's driver adapter for pg (@prisma/adapter-pg 7) on a RotatingPgPool, through its adapter
 * API (`new PrismaPg(pool)` → `connect()` → queryRaw/executeRaw, startTransaction() with commit
 * and rollback, as Prisma Client's engine calls it), through three real rotations under load: see
 * compat-support.ts for the load and the checks. PrismaPg uses a pool it is given only if it is
 * `instanceof pg.Pool`; otherwise it silently opens a private, non-rotating pg.Pool from it.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import type { RotatingPgPool } from '../../../../consumer/rotating-pg-pool';
import { expectCompatible, pause, rotateUnderLoad, SQL, type OrmUnderTest } from './compat-support';

type Adapter = Awaited<ReturnType<PrismaPg['connect']>>;
/** Prisma's query shape (SqlQuery of @prisma/driver-adapter-utils), as the adapter takes it. */
type SqlQuery = Parameters<Adapter['queryRaw']>[0];

const TEXT: SqlQuery['argTypes'][number] = { scalarType: 'string', arity: 'scalar' };

function query(sql: string, args: string[] = []): SqlQuery {
  return { sql, args, argTypes: args.map(() => TEXT) };
}

function prismaOrm(adapter: Adapter): OrmUnderTest {
  return {
    async transaction(note, commit) {
      const pids: number[] = [];
      const tx = await adapter.startTransaction();
      try {
        for (let i = 0; i < 2; i++) {
          pids.push(Number((await tx.queryRaw(query(SQL.insert, [note]))).rows[0][0]));
          await pause();
        }
        pids.push(Number((await tx.queryRaw(query(SQL.read, [note]))).rows[0][0]));
      } catch (err) {
        await tx.executeRaw(query('ROLLBACK')).catch(() => undefined);
        await tx.rollback();
        throw err;
      }
      // Prisma's engine sends COMMIT/ROLLBACK itself (the adapter's transactions are not phantom),
      // then calls commit()/rollback(), which release the connection.
      expect(tx.options.usePhantomQuery).toBe(false);
      await tx.executeRaw(query(commit ? 'COMMIT' : 'ROLLBACK'));
      await (commit ? tx.commit() : tx.rollback());
      return pids;
    },
    async sessionUser() {
      return String((await adapter.queryRaw(query(SQL.sessionUser))).rows[0][0]);
    },
  };
}

describe('Compatibility: Prisma driver adapter (PrismaPg)', () => {
  it('runs transactions and queries through three rotations on the given pool, each transaction on one backend', async () => {
    // Prepare
    let pool: RotatingPgPool | undefined;
    let adapter: Adapter | undefined;
    const poolErrors: Error[] = [];
    try {
      // Act
      const run = await rotateUnderLoad({
        prefix: 'compat_prisma',
        orm: async (p) => {
          pool = p;
          adapter = await new PrismaPg(p, { onPoolError: (err) => poolErrors.push(err) }).connect();
          return prismaOrm(adapter);
        },
      });
      const underlying = adapter!.underlyingDriver();
      const listenersWhileConnected = pool!.listenerCount('error');
      await adapter!.dispose();
      // Assess
      // The adapter runs on our pool (its connections are the pool's, attributed to its consumer:
      // see expectCompatible), not on a private pg.Pool.
      expect(underlying).toBe(pool);
      expect(run.poolPids.length).toBeGreaterThan(0);
      expect(listenersWhileConnected).toBe(2);
      // dispose() leaves an external pool open (disposeExternalPool is off) and unsubscribes.
      expect(pool!.ending).toBe(false);
      expect(pool!.listenerCount('error')).toBe(1);
      expect(poolErrors).toEqual([]);
      expectCompatible(run);
    } finally {
      if (pool && !pool.ending) await pool.end();
    }
  });
});
