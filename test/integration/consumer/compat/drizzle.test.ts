/**
 * Drizzle (node-postgres) on a RotatingPgPool from a minified bundle, through three real rotations
 * under load: see compat-support.ts for the load and the checks, drizzle-entry.ts for the bundle.
 * Minified, the class is no longer named "...Pool", so Drizzle hands each transaction one
 * checked-out client only because `pool instanceof pg.Pool` holds; when it does not, BEGIN, the
 * statements and COMMIT each run on whatever connection is free.
 */
import { expectCompatible, loadBundle, rotateUnderLoad } from './compat-support';

const bundle = loadBundle<typeof import('./drizzle-entry')>('drizzle-entry.ts', {
  externalPackages: true,
});

describe('Compatibility: Drizzle from a minified bundle', () => {
  it('runs transactions and queries through three rotations without a failure, each transaction on one backend', async () => {
    // Prepare
    const pools: ReturnType<typeof bundle.createPool>[] = [];
    try {
      // Act
      const run = await rotateUnderLoad({
        prefix: 'compat_drizzle',
        createPool: (options) => {
          const pool = bundle.createPool(options);
          pools.push(pool);
          return pool;
        },
        orm: (pool) => bundle.drizzleOrm(pool),
      });
      // Assess
      // The bundle renamed the class: only instanceof can tell Drizzle that this is a pool.
      expect(run.pool.constructor.name).not.toMatch(/Pool/);
      expect(bundle.isPgPool(run.pool)).toBe(true);
      expectCompatible(run);
    } finally {
      await Promise.all(pools.map((p) => (p.ending ? undefined : p.end())));
    }
  });
});
