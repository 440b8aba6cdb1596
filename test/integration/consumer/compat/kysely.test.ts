/**
 * Kysely 0.29 on a RotatingPgPool (`new PostgresDialect({ pool })`) through three real rotations
 * under load: see compat-support.ts for the load and the checks, kysely-entry.ts for the Kysely side.
 */
import type { RotatingPgPool } from '../../../../consumer/rotating-pg-pool';
import { expectCompatible, loadBundle, rotateUnderLoad } from './compat-support';

const { kyselyOrm } = loadBundle<typeof import('./kysely-entry')>('kysely-entry.ts', {
  externalPackages: false,
});

describe('Compatibility: Kysely', () => {
  it('runs transactions and queries through three rotations without a failure, each transaction on one backend', async () => {
    // Prepare
    let kysely: ReturnType<typeof kyselyOrm> | undefined;
    let pool: RotatingPgPool | undefined;
    try {
      // Act
      const run = await rotateUnderLoad({
        prefix: 'compat_kysely',
        orm: (p) => {
          pool = p;
          kysely = kyselyOrm(p);
          return kysely.orm;
        },
      });
      // Kysely's destroy() ends the pool it was given.
      await kysely!.destroy();
      // Assess
      expectCompatible(run);
      expect(run.pool.ended).toBe(true);
    } finally {
      if (pool && !pool.ending) await pool.end();
    }
  });
});
