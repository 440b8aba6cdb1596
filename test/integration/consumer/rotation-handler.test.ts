import { GenerationReporter, MemorySink } from '../../../consumer/reporter';
import { RotatingPgPool } from '../../../consumer/rotating-pg-pool';
import { SecretsManagerSource } from '../../../consumer/secrets-manager-source';
import { LOADED_GENERATION } from '../../../lambda/shared/metric-contract';
import { expectNoSecretsInOutput } from '../../support/captured-output';
import { createRotationHarness } from '../../support/rotation-harness';
import { queryLoad, sessionsOf, until } from './fixtures';

describe('Class: RotatingPgPool', () => {
  describe('Through the rotation handler', () => {
    it('follows three rotations under 8 query loops: no failed query, newest user, no older connection left', async () => {
      // Prepare
      const h = await createRotationHarness({ prefix: 'cons_rot' });
      const pool = new RotatingPgPool({
        source: new SecretsManagerSource({ secretId: h.secretArn, includePending: true }),
        refresh: { ttlMs: 200, backoffBaseMs: 100, backoffMaxMs: 1_000 },
        caBundlePath: h.config.caBundlePath,
        max: 8,
      });
      const errors: Error[] = [];
      pool.on('reloadFailure', (err) => errors.push(err));
      pool.on('pendingRejected', (_candidate, err) => errors.push(err));
      const sink = new MemorySink();
      const changes: number[] = [];
      pool.on('credentialChange', (next) => changes.push(next.generation));
      await pool.ready();
      const reporter = new GenerationReporter({ subject: pool, consumer: 'orders-api', sink, periodSeconds: 3_600 }).start();
      const load = queryLoad(pool, 8);
      const usersAfter: string[][] = [];
      const original = h.current();
      try {
        await until('load to be running', () => load.ok >= 50);
        // Act
        for (let i = 1; i <= 3; i++) {
          await h.rotate();
          const current = h.current();
          await until(`the pool to use generation ${current.generation}`, () => pool.loadedGeneration === current.generation, 20_000);
          // The next rotation's setSecret overwrites the previous user's password only once no
          // session of it is left (revocation guard): the pool must have let go of it.
          await until('the old user to be drained', () => pool.retiringCount === 0, 20_000);
          const seen = load.ok;
          await until('queries on the new credential', () => load.ok >= seen + 20);
          usersAfter.push([...new Set((await sessionsOf(h.db.dbname)).map((s) => s.usename))]);
        }
        await load.stop();
        await reporter.stop();
        const current = h.current();
        const sessions = await sessionsOf(h.db.dbname);
        const connections = pool.connections();

        // Assess
        expect(load.failures).toEqual([]);
        expect(load.ok).toBeGreaterThan(200);
        expect(current.generation).toBe(original.generation + 3);
        expect(pool.credential?.username).toBe(current.username);
        expect(current.username).toBe(`${original.username}_clone`);
        expect(usersAfter).toEqual([[current.username], [original.username], [current.username]]);
        // Every server session is one of the pool's, and each was opened with the newest credential.
        expect(new Set(sessions.map((s) => s.usename))).toEqual(new Set([current.username]));
        expect(new Set(sessions.map((s) => s.pid))).toEqual(new Set(connections.map((c) => c.processId)));
        expect(new Set(connections.map((c) => c.generation))).toEqual(new Set([current.generation]));
        expect(changes).toEqual([original.generation, original.generation + 1, original.generation + 2, original.generation + 3]);
        // Reported at start, at each change and at stop: the generation moves exactly with the pool.
        expect(sink.values(LOADED_GENERATION)).toEqual([...changes, current.generation]);
        expectNoSecretsInOutput(h.passwords(), errors);
      } finally {
        await load.stop();
        await reporter.stop();
        await pool.end();
      }
    });
  });
});
