/**
 * Compile-time check, not a jest test: `npm run build` (tsc over test/) fails if RotatingPgPool
 * stops being usable as a `pg.Pool` without casts, by pg itself and by the ORMs whose
 * compatibility suite is test/integration/consumer/compat/. Nothing here runs.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { Kysely, PostgresDialect } from 'kysely';
import type { Pool, PoolClient } from 'pg';
import { FileSource, RotatingPgPool, type SecretVersion } from '../../consumer/index';

interface Database {
  items: { id: number; note: string };
}

/** Every way an application hands the pool to pg or an ORM, typed as it is written there. */
export function usesRotatingPgPoolAsPgPool(): unknown[] {
  const pool = new RotatingPgPool({
    source: new FileSource({ path: '/run/secrets/orders-db.json', secretName: 'prod/orders-db' }),
  });

  // pg itself: assignable, and pg.Pool's own event typing still applies.
  const asPool: Pool = pool;
  asPool.on('error', (err: Error, client: PoolClient) => client.release(err));
  const options: Pool['options'] = pool.options;

  // The rotation events stay typed on the pool itself.
  pool.on('credentialChange', (next: SecretVersion, previous: SecretVersion | undefined) => [
    next.generation,
    previous?.generation,
  ]);
  pool.once('pendingRejected', (candidate: SecretVersion, error: Error, info) => [
    candidate.username,
    error.message,
    info.retryInMs,
  ]);
  pool.off('reloadFailure', (error: Error) => error.message);

  // Kysely 0.29 (PostgresPool needs `options` and connect()/end()).
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const kyselyLazy = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: async () => pool }),
  });

  // Drizzle, both call styles.
  const drizzlePositional = drizzle(pool);
  const drizzleClient = drizzle({ client: pool });

  // Prisma's driver adapter.
  const prisma = new PrismaPg(pool, { onPoolError: (err) => err.message });

  return [asPool, options, kysely, kyselyLazy, drizzlePositional, drizzleClient, prisma];
}
