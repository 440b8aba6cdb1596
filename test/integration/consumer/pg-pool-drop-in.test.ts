/**
 * RotatingPgPool as a `pg.Pool`: what libraries that check `instanceof pg.Pool` or read `options`
 * see, that the base class never opens a connection of its own, and the `error` event of an idle
 * client (emitted as pg.Pool emits it, but never for connections the pool is closing itself).
 */
import { DatabaseError, Pool, type PoolClient } from 'pg';
import { withAdmin } from '../../../cli/local/postgres';
import { RotatingPgPool } from '../../../consumer/rotating-pg-pool';
import { SecretsManagerSource } from '../../../consumer/secrets-manager-source';
import { ConvergeError } from '../../../lambda/shared/errors';
import { expectNoSecretsInOutput } from '../../support/captured-output';
import { consumerWorld, tlsOptions, until, type ConsumerWorld } from './fixtures';

const pools: RotatingPgPool[] = [];
const worlds: ConsumerWorld[] = [];
const errorsSeen: unknown[] = [];

async function world(prefix: string): Promise<ConsumerWorld> {
  const w = await consumerWorld(prefix);
  worlds.push(w);
  return w;
}

/** A pool on `w` that records its `error` events (with their client) and connections. */
function observed(w: ConsumerWorld, max = 4) {
  const pool = new RotatingPgPool({
    source: new SecretsManagerSource({ secretId: w.secretArn }),
    refresh: { ttlMs: 3_600_000, refreshInBackground: false },
    max,
    ...tlsOptions(w),
  });
  pools.push(pool);
  const errors: { err: Error; client: PoolClient }[] = [];
  const opened: PoolClient[] = [];
  pool.on('error', (err, client) => {
    errorsSeen.push(err);
    errors.push({ err, client });
  });
  pool.on('connect', (client) => opened.push(client));
  return { pool, errors, opened };
}

/** Opens `n` connections at once and returns them all to the pool (idle). */
async function idleConnections(pool: RotatingPgPool, n: number): Promise<void> {
  const clients = await Promise.all(Array.from({ length: n }, () => pool.connect()));
  for (const c of clients) c.release();
}

/** Terminates backends as the database's master (it holds pg_signal_backend), waiting for them to exit. */
async function terminate(w: ConsumerWorld, pids: number[]): Promise<void> {
  await withAdmin(w.db.server, w.db.dbname, w.db.master, (m) =>
    m.query('SELECT pg_terminate_backend(pid, 5000) FROM unnest($1::int[]) AS pid', [pids]),
  );
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => (p.ending ? undefined : p.end())));
});

afterAll(() => {
  expectNoSecretsInOutput(
    worlds.flatMap((w) => w.passwords),
    errorsSeen,
  );
});

describe('Class: RotatingPgPool as pg.Pool', () => {
  describe('Type and options', () => {
    it('is an instance of pg.Pool whose options describe it without a password', async () => {
      // Prepare
      const w = await world('dropin_opts');
      const { pool } = observed(w, 7);
      // Act
      await pool.query('SELECT 1');
      // Assess
      expect(pool).toBeInstanceOf(Pool);
      expect(pool.options).toMatchObject({
        max: 7,
        idleTimeoutMillis: 10_000,
        maxLifetimeSeconds: 0,
        connectionTimeoutMillis: 3_000,
        host: 'localhost',
        port: w.db.server.port,
        database: w.db.dbname,
        user: w.first.username,
      });
      expect('password' in pool.options).toBe(false);
      expect(JSON.stringify(pool.options)).not.toContain(w.first.password);
      // No client class to open side connections with: those would have no password either.
      expect((pool as unknown as { Client?: unknown }).Client).toBeUndefined();
    });

    it('follows the adopted user in options after a username change', async () => {
      // Prepare
      const w = await world('dropin_optuser');
      const { pool } = observed(w);
      await pool.query('SELECT 1');
      const clone = await w.createUser(`${w.first.username}_clone`, 2);
      w.putCurrent(clone);
      // Act
      await pool.refreshNow();
      // Assess
      expect(pool.options.user).toBe(clone.username);
      expect(pool.options.max).toBe(4);
    });

    it('reports pg.Pool counts and ending/ended from the rotating pool, not the base', async () => {
      // Prepare
      const w = await world('dropin_counts');
      const { pool } = observed(w);
      await idleConnections(pool, 3);
      const held = await pool.connect();
      // Act
      const during = {
        total: pool.totalCount,
        idle: pool.idleCount,
        waiting: pool.waitingCount,
        ending: pool.ending,
        ended: pool.ended,
      };
      held.release();
      const ended = pool.end();
      const whileEnding = { ending: pool.ending, ended: pool.ended };
      await ended;
      // Assess
      expect(during).toEqual({ total: 3, idle: 2, waiting: 0, ending: false, ended: false });
      expect(whileEnding).toEqual({ ending: true, ended: false });
      expect({ total: pool.totalCount, ending: pool.ending, ended: pool.ended }).toEqual({
        total: 0,
        ending: true,
        ended: true,
      });
    });

    it('never opens a connection through the pg.Pool base, and refuses a submittable in query()', async () => {
      // Prepare
      const w = await world('dropin_base');
      const { pool, opened } = observed(w);
      await pool.ready();
      const submittable = { submit: () => undefined };
      // Act
      const baseConnect = () => (Pool.prototype.connect as () => unknown).call(pool);
      const streamQuery = () => pool.query(submittable);
      const nothingOpened = { opened: opened.length, sessions: (await w.sessions()).length };
      // pg.Pool's own query() checks a client out with this.connect(): the rotating one.
      const viaBaseQuery = await (
        Pool.prototype.query as (text: string) => Promise<{ rows: { u: string }[] }>
      ).call(pool, 'SELECT current_user AS u');
      // Assess
      expect(baseConnect).toThrow(ConvergeError);
      expect(streamQuery).toThrow(/does not take a submittable.*pool\.connect\(\)/);
      expect(nothingOpened).toEqual({ opened: 0, sessions: 0 });
      expect(viaBaseQuery.rows[0].u).toBe(w.first.username);
      expect((await w.sessions()).map((s) => s.pid)).toEqual(
        pool.connections().map((c) => c.processId),
      );
      expect(pool.idleCount).toBe(1);
    });
  });

  describe('Event: error', () => {
    it('emits exactly one error, with its client and SQLSTATE 57P01, when the backend of an idle client is terminated', async () => {
      // Prepare
      const w = await world('dropin_err');
      const { pool, errors, opened } = observed(w);
      await idleConnections(pool, 2);
      const [victim, survivor] = pool.connections();
      const victimClient = opened.find(
        (c) => (c as unknown as { processID: number }).processID === victim.processId,
      );
      // Act
      await terminate(w, [victim.processId!]);
      await until('the error event', () => errors.length > 0);
      await until('the failed client to be removed', () => pool.totalCount === 1);
      const after = (await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]
        .pid;
      // Assess
      expect(errors).toHaveLength(1);
      expect(errors[0].client).toBe(victimClient);
      expect(errors[0].err).toBeInstanceOf(DatabaseError);
      expect(errors[0].err).toMatchObject({ code: '57P01' });
      expect(errors[0].err.message).toMatch(/terminating connection/);
      // The pool goes on with its other connection.
      expect(after).toBe(survivor.processId);
      expect(pool.connections().map((c) => c.processId)).toEqual([survivor.processId]);
    });

    it('emits no error when the pool is ended while the server is fine', async () => {
      // Prepare
      const w = await world('dropin_end');
      const { pool, errors } = observed(w);
      await idleConnections(pool, 3);
      const held = await pool.connect();
      // Act
      const ended = pool.end();
      held.release();
      await ended;
      // Assess
      expect(errors).toEqual([]);
      expect(await w.sessions()).toEqual([]);
    });

    it('emits no error when the connections of the old user close after a username change', async () => {
      // Prepare
      const w = await world('dropin_retire');
      const { pool, errors } = observed(w);
      await idleConnections(pool, 3);
      const held = await pool.connect();
      await held.query('BEGIN');
      const clone = await w.createUser(`${w.first.username}_clone`, 2);
      w.putCurrent(clone);
      // Act
      await pool.refreshNow();
      await pool.query('SELECT 1');
      await held.query('COMMIT');
      held.release();
      await until('the old user to be drained', () => pool.retiringCount === 0);
      const users = (await w.sessions()).map((s) => s.usename);
      // Assess
      expect(errors).toEqual([]);
      expect(new Set(users)).toEqual(new Set([clone.username]));
    });

    it('emits no error for a failure that a connection reports after the pool began closing it', async () => {
      // Prepare: an idle connection of the old user, closed by the retirement after a username change
      const w = await world('dropin_late');
      const { pool, errors, opened } = observed(w);
      await idleConnections(pool, 1);
      const [oldClient] = opened;
      const clone = await w.createUser(`${w.first.username}_clone`, 2);
      w.putCurrent(clone);
      await pool.refreshNow();
      await until('the old user to be drained', () => pool.retiringCount === 0);
      // Act: what a server shutting down sends to a connection that is closing (pg-pool keeps its
      // idle listener on a client it removes, so the report reaches the pool)
      const late = new DatabaseError(
        'terminating connection due to administrator command',
        0,
        'error',
      );
      late.code = '57P01';
      oldClient.emit('error', late);
      // Assess
      expect(errors).toEqual([]);
      expect(await pool.query('SELECT 1')).toMatchObject({ rowCount: 1 });
    });
  });
});
