import { DescribeSecretCommand, InternalServiceError } from '@aws-sdk/client-secrets-manager';
import { wireSecretsManager } from '../../../cli/local/install';
import { MemorySink, GenerationReporter } from '../../../consumer/reporter';
import { RotatingPgPool } from '../../../consumer/rotating-pg-pool';
import { SecretsManagerSource } from '../../../consumer/secrets-manager-source';
import {
  AuthenticationFailedError,
  CredentialRejectedError,
  PoolEndedError,
  SecretUnavailableError,
} from '../../../lambda/shared/errors';
import { LOADED_GENERATION } from '../../../lambda/shared/metric-contract';
import { expectNoSecretsInOutput } from '../../support/captured-output';
import { consumerWorld, queryLoad, tlsOptions, until, type ConsumerWorld } from './fixtures';

const pools: RotatingPgPool[] = [];
const worlds: ConsumerWorld[] = [];
const errorsSeen: unknown[] = [];

function track(pool: RotatingPgPool): RotatingPgPool {
  pools.push(pool);
  pool.on('error', (err) => errorsSeen.push(err));
  pool.on('reloadFailure', (err) => errorsSeen.push(err));
  pool.on('pendingRejected', (_c, err) => errorsSeen.push(err));
  return pool;
}

async function world(prefix: string, options: { viaProxy?: boolean } = {}): Promise<ConsumerWorld> {
  const w = await consumerWorld(prefix, options);
  worlds.push(w);
  return w;
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => (p.ending ? undefined : p.end())));
  await Promise.all(worlds.map((w) => w.proxy?.close()));
});

afterAll(() => {
  // No password of any generation may have reached a log line or an error message.
  expectNoSecretsInOutput(
    worlds.flatMap((w) => w.passwords),
    errorsSeen,
  );
});

async function currentUser(pool: RotatingPgPool): Promise<string> {
  return (await pool.query<{ u: string }>('SELECT current_user AS u')).rows[0].u;
}

/**
 * A live pool in use (one query done) and a pending version whose alternate user setSecret has
 * already created, so the pool's next refresh adopts it.
 */
async function pendingThatLogsIn(prefix: string, password: string) {
  const w = await world(prefix);
  const pool = track(
    new RotatingPgPool({
      source: new SecretsManagerSource({ secretId: w.secretArn, includePending: true }),
      refresh: { ttlMs: 3_600_000, refreshInBackground: false },
      ...tlsOptions(w),
    }),
  );
  await pool.query('SELECT 1');
  const cloneName = `${w.first.username}_clone`;
  w.passwords.push(password);
  const pendingId = w.putPending({ username: cloneName, password, generation: 2 });
  await w.createUser(cloneName, 2, password);
  return { w, pool, cloneName, pendingId };
}

describe('Class: RotatingPgPool', () => {
  describe('Method: query', () => {
    it('runs queries over verified TLS as the secret user, and end() closes every connection', async () => {
      // Prepare
      const w = await world('cpool_basic');
      const pool = track(new RotatingPgPool({ source: new SecretsManagerSource({ secretId: w.secretArn }), ...tlsOptions(w) }));
      // Act
      const r = await pool.query<{ u: string; ssl: boolean }>(
        'SELECT current_user AS u, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
      );
      const during = await w.sessions();
      await pool.end();
      const after = await w.sessions();
      // Assess
      expect(r.rows[0]).toEqual({ u: w.first.username, ssl: true });
      expect(during.map((s) => s.usename)).toEqual([w.first.username]);
      expect(after).toEqual([]);
      expect(pool.ended).toBe(true);
      await expect(pool.query('SELECT 1')).rejects.toThrow(PoolEndedError);
    });

    it('keeps a pooled connection usable after an SQL error', async () => {
      // Prepare
      const w = await world('cpool_sqlerr');
      const pool = track(
        new RotatingPgPool({ source: new SecretsManagerSource({ secretId: w.secretArn }), max: 1, ...tlsOptions(w) }),
      );
      const pidBefore = (await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      // Act
      const err = await pool.query('SELECT * FROM no_such_table').catch((e: unknown) => e);
      const pidAfter = (await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      // Assess
      expect((err as { code?: string }).code).toBe('42P01');
      expect(pidAfter).toBe(pidBefore);
    });
  });

  describe('Method: connect', () => {
    it('supports the callback forms of connect, query and end, as pg.Pool does', async () => {
      // Prepare
      const w = await world('cpool_cb');
      const pool = track(new RotatingPgPool({ source: new SecretsManagerSource({ secretId: w.secretArn }), ...tlsOptions(w) }));
      // Act
      const viaQuery = await new Promise<number>((resolve, reject) =>
        pool.query<{ n: number }>('SELECT $1::int AS n', [41], (err, r) => (err ? reject(err) : resolve(r.rows[0].n))),
      );
      const viaConnect = await new Promise<number>((resolve, reject) =>
        pool.connect((err, client, done) => {
          if (err || !client) return reject(err);
          client.query<{ n: number }>('SELECT 42 AS n').then(
            (r) => {
              done();
              resolve(r.rows[0].n);
            },
            (e: Error) => {
              done(e);
              reject(e);
            },
          );
        }),
      );
      await new Promise<void>((resolve) => pool.end(resolve));
      // Assess
      expect([viaQuery, viaConnect]).toEqual([41, 42]);
      expect(pool.ended).toBe(true);
    });

    it('times out a request waiting for a client, and fails waiting requests with PoolEndedError at end()', async () => {
      // Prepare
      const w = await world('cpool_wait');
      const pool = track(
        new RotatingPgPool({
          source: new SecretsManagerSource({ secretId: w.secretArn }),
          max: 1,
          acquireTimeoutMillis: 200,
          ...tlsOptions(w),
        }),
      );
      const held = await pool.connect();
      // Act
      const timedOut = await pool.connect().catch((e: unknown) => e);
      const waiting = pool.connect().catch((e: unknown) => e);
      const waitingCount = pool.waitingCount;
      const ended = pool.end();
      held.release();
      await ended;
      // Assess
      expect((timedOut as { code?: string }).code).toBe('ETIMEDOUT');
      expect(waitingCount).toBe(1);
      expect(await waiting).toBeInstanceOf(PoolEndedError);
    });

    it('refuses to start without a credential, with SecretUnavailableError naming the secret', async () => {
      // Prepare
      const pool = track(new RotatingPgPool({ source: new SecretsManagerSource({ secretId: 'no-such-secret' }) }));
      // Act
      const err = await pool.query('SELECT 1').catch((e: unknown) => e);
      // Assess
      expect(err).toBeInstanceOf(SecretUnavailableError);
      expect((err as Error).message).toContain('secret "no-such-secret"');
      expect(((err as Error).cause as Error).name).toBe('AwsCallError');
    });
  });

  describe('Option: maxLifetimeSeconds', () => {
    it('recycles a connection that outlived it, but never while it is checked out', async () => {
      // Prepare
      const w = await world('cpool_life');
      const pool = track(
        new RotatingPgPool({
          source: new SecretsManagerSource({ secretId: w.secretArn }),
          maxLifetimeSeconds: 1,
          ...tlsOptions(w),
        }),
      );
      const client = await pool.connect();
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      // Act: hold the client past its lifetime, then use and release it
      await until('the connection to outlive maxLifetimeSeconds', () => pool.expiredCount === 1, 5_000);
      const stillUsable = (await client.query<{ n: number }>('SELECT 1 AS n')).rows[0].n;
      const ageWhileOpen = pool.poolAgeSecondsMax();
      client.release();
      await until('the expired connection to close', async () => !(await w.sessions()).some((s) => s.pid === pid), 5_000);
      const nextPid = (await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      // Assess
      expect(stillUsable).toBe(1);
      expect(ageWhileOpen).toBeGreaterThanOrEqual(1);
      expect(nextPid).not.toBe(pid);
    });
  });

  describe('Username swap', () => {
    it('lets a checked-out client finish its transaction across a username swap, then retires its connection', async () => {
      // Prepare
      const w = await world('cpool_tx');
      const pool = track(
        new RotatingPgPool({
          source: new SecretsManagerSource({ secretId: w.secretArn }),
          refresh: { ttlMs: 3_600_000, refreshInBackground: false },
          ...tlsOptions(w),
        }),
      );
      const client = await pool.connect();
      await client.query('BEGIN');
      await client.query("INSERT INTO items (note) VALUES ('in-flight')");
      const clone = await w.createUser(`${w.first.username}_clone`, 2);
      w.putCurrent(clone);
      // Act
      await pool.refreshNow();
      const newUser = await currentUser(pool);
      await client.query("INSERT INTO items (note) VALUES ('in-flight')");
      const oldUserInTx = (await client.query<{ u: string }>('SELECT current_user AS u')).rows[0].u;
      await client.query('COMMIT');
      client.release();
      await until('the retired inner pool to drain', () => pool.retiringCount === 0);
      const committed = await pool.query<{ n: string }>("SELECT count(*) AS n FROM items WHERE note = 'in-flight'");
      const sessions = await w.sessions();
      // Assess
      expect(newUser).toBe(clone.username);
      expect(oldUserInTx).toBe(w.first.username);
      expect(committed.rows[0].n).toBe('2');
      expect(new Set(sessions.map((s) => s.usename))).toEqual(new Set([clone.username]));
    });

    it('swaps users three times under 8 concurrent query loops without a failed query', async () => {
      // Prepare
      const w = await world('cpool_load');
      const pool = track(
        new RotatingPgPool({
          source: new SecretsManagerSource({ secretId: w.secretArn }),
          refresh: { ttlMs: 3_600_000, refreshInBackground: false },
          max: 6,
          ...tlsOptions(w),
        }),
      );
      await pool.ready();
      const load = queryLoad(pool, 8);
      await until('load to be running', () => load.ok >= 50);
      const a = w.first.username;
      const b = `${a}_clone`;
      // Act: A(1) -> B(2) -> A(3) -> B(4), each step as a rotation makes it: set up the other user
      // (only once nothing uses it, as the revocation guard demands), promote it, let the pool follow
      const steps = [() => w.createUser(b, 2), () => w.changePassword(a, 3), () => w.changePassword(b, 4)];
      const usersAfterSwap: string[][] = [];
      for (const step of steps) {
        w.putCurrent(await step());
        await pool.refreshNow();
        const seen = load.ok;
        await until('queries on the new credential', () => load.ok >= seen + 20);
        await until('the old inner pool to drain', () => pool.retiringCount === 0);
        usersAfterSwap.push([...new Set((await w.sessions()).map((s) => s.usename))]);
      }
      await load.stop();
      // Assess
      expect(load.failures).toEqual([]);
      expect(load.ok).toBeGreaterThan(100);
      expect(usersAfterSwap).toEqual([[b], [a], [b]]);
      expect(pool.credential?.generation).toBe(4);
      expect(new Set(pool.connections().map((c) => c.generation))).toEqual(new Set([4]));
    });
  });

  describe('Authentication failure', () => {
    it('refreshes once and retries when PostgreSQL rejects the cached password (28P01)', async () => {
      // Prepare: the pool loaded generation 1; the password then changes in the database and the secret
      const w = await world('cpool_auth');
      const pool = track(
        new RotatingPgPool({
          source: new SecretsManagerSource({ secretId: w.secretArn }),
          refresh: { ttlMs: 3_600_000, refreshInBackground: false },
          ...tlsOptions(w),
        }),
      );
      await pool.ready();
      const next = await w.changePassword(w.first.username, 2);
      w.putCurrent(next);
      w.sm.resetHistory();
      // Act
      const user = await currentUser(pool);
      // Assess
      expect(user).toBe(w.first.username);
      expect(w.sm).toHaveReceivedCommandTimes(DescribeSecretCommand, 1);
      expect(pool.connections().map((c) => c.generation)).toEqual([2]);
    });

    it('gives up when a refresh brings no other credential, with AuthenticationFailedError that carries no password', async () => {
      // Prepare: the password changed in the database but the secret still holds the old one
      const w = await world('cpool_authfail');
      const pool = track(
        new RotatingPgPool({
          source: new SecretsManagerSource({ secretId: w.secretArn }),
          refresh: { ttlMs: 3_600_000, refreshInBackground: false },
          maxAuthRetries: 2,
          ...tlsOptions(w),
        }),
      );
      await pool.ready();
      await w.changePassword(w.first.username, 2);
      w.sm.resetHistory();
      // Act
      const err = await pool.query('SELECT 1').catch((e: unknown) => e);
      errorsSeen.push(err);
      // Assess
      expect(err).toBeInstanceOf(AuthenticationFailedError);
      expect((err as AuthenticationFailedError).code).toBe('28P01');
      expect((err as Error).message).toContain(w.first.username);
      // One refresh: it brought no other credential, so retrying again would be pointless
      expect(w.sm).toHaveReceivedCommandTimes(DescribeSecretCommand, 1);
      expect(pool.totalCount).toBe(0);
    });

    it('fails fast after a rejection: a burst of queries on a revoked credential makes at most `max` logins, then recovers once the secret holds a valid one', async () => {
      // Prepare: the credential is loaded, no connection is open, and every login goes through a counting proxy
      const w = await world('cpool_failfast', { viaProxy: true });
      const max = 4;
      const pool = track(
        new RotatingPgPool({
          source: new SecretsManagerSource({ secretId: w.secretArn }),
          max,
          // The background refresh keeps reading the secret; it finds the same credential until the secret changes.
          refresh: { ttlMs: 200, jitter: 0 },
          // Longer than the burst on any machine, so the bound below cannot depend on speed.
          authFailureBackoffMs: 60_000,
          ...tlsOptions(w),
        }),
      );
      await pool.ready();
      const valid = await w.changePassword(w.first.username, 2); // generation 1 is revoked in the database
      const loginsBefore = w.proxy!.connections;
      // Act 1: 8 loops of 25 queries each
      const errors: unknown[] = [];
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let i = 0; i < 25; i++) await pool.query('SELECT 1').catch((e: unknown) => errors.push(e));
        }),
      );
      const burstLogins = w.proxy!.connections - loginsBefore;
      errorsSeen.push(...errors);
      // Act 2: the secret now holds the valid credential; the next refresh adopts it
      w.putCurrent(valid);
      await until('a query to succeed again', () => pool.query('SELECT 1').then(() => true, () => false));
      const user = await currentUser(pool);
      // Assess: only the first wave of connects logged in; every query failed, with a typed error
      expect(burstLogins).toBeGreaterThanOrEqual(1);
      expect(burstLogins).toBeLessThanOrEqual(max);
      expect(errors).toHaveLength(200);
      expect(errors.every((e) => e instanceof CredentialRejectedError && e.code === '28P01')).toBe(true);
      const rejected = errors as CredentialRejectedError[];
      const attempted = rejected.filter((e) => e.loginAttempted);
      expect(attempted.length).toBe(burstLogins);
      const fast = rejected.find((e) => !e.loginAttempted)!;
      expect(fast).toBeInstanceOf(AuthenticationFailedError);
      expect(fast).toMatchObject({ secretName: pool.secretName, username: w.first.username, generation: 1 });
      expect(fast.message).toMatch(
        new RegExp(
          `^secret "${pool.secretName}": the credential of user "${w.first.username}" \\(generation 1\\) was rejected by PostgreSQL ` +
            `at localhost:${w.proxy!.port}/${w.db.dbname} \\(SQLSTATE 28P01\\) \\d+ ms ago; failing fast without a login attempt`,
        ),
      );
      expect(attempted[0].message).toContain(`secret "${pool.secretName}": PostgreSQL rejected the credential of user "${w.first.username}" (generation 1)`);
      expect(user).toBe(w.first.username);
      expect(pool.credential?.generation).toBe(2);
    });
  });

  describe('Secrets Manager outage', () => {
    it('keeps serving queries on the cached credential past the TTL, backs off, and adopts the new version on recovery', async () => {
      // Prepare
      const w = await world('cpool_outage');
      let now = 0;
      const pool = track(
        new RotatingPgPool({
          source: new SecretsManagerSource({ secretId: w.secretArn }),
          refresh: {
            ttlMs: 1_000,
            jitter: 0,
            backoffBaseMs: 1_000,
            backoffMaxMs: 16_000,
            clock: () => now,
            refreshInBackground: false,
          },
          ...tlsOptions(w),
        }),
      );
      await pool.ready();
      const outageCalls: number[] = [];
      const failures = [
        Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } }),
        new InternalServiceError({ message: 'Internal error', $metadata: { httpStatusCode: 500 } }),
        Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443'), { name: 'Error', code: 'ECONNREFUSED' }),
      ];
      w.sm.on(DescribeSecretCommand).callsFake(() => {
        outageCalls.push(now);
        throw failures[outageCalls.length % failures.length];
      });
      // Act: a query every 500 ms (on the refresh clock) for 60 s of outage, 60 times the TTL
      let queries = 0;
      for (now = 1_000; now <= 60_000; now += 500) {
        if ((await currentUser(pool)) === w.first.username) queries++;
        await new Promise((r) => setImmediate(r)); // let the background refresh settle
      }
      // Recovery: the store answers again and a rotation happened meanwhile
      w.sm.reset();
      wireSecretsManager(w.sm, w.model);
      const clone = await w.createUser(`${w.first.username}_clone`, 2);
      w.putCurrent(clone);
      let recoveredAfter = 0;
      for (; recoveredAfter < 40 && (await currentUser(pool)) !== clone.username; recoveredAfter++) {
        now += 500;
        await new Promise((r) => setImmediate(r));
      }
      // Assess
      expect(queries).toBe(119);
      const gaps = outageCalls.slice(1).map((t, i) => t - outageCalls[i]);
      expect(gaps.slice(0, 4)).toEqual([1_000, 2_000, 4_000, 8_000]);
      expect(outageCalls.length).toBeLessThanOrEqual(8);
      expect(pool.reloadFailureCount).toBe(outageCalls.length);
      expect(await currentUser(pool)).toBe(clone.username);
      expect(recoveredAfter).toBeLessThanOrEqual(33); // at most one capped backoff (16 s) of 500 ms steps
    });
  });

  describe('Live consumer (AWSPENDING)', () => {
    it('adopts a pending credential only once it logs in, falls back to AWSCURRENT on abort, and reports exactly those changes', async () => {
      // Prepare
      const w = await world('cpool_live');
      const pool = track(
        new RotatingPgPool({
          source: new SecretsManagerSource({ secretId: w.secretArn, includePending: true }),
          refresh: { ttlMs: 3_600_000, refreshInBackground: false },
          ...tlsOptions(w),
        }),
      );
      const sink = new MemorySink();
      const changes: number[] = [];
      pool.on('credentialChange', (next) => changes.push(next.generation));
      await pool.ready();
      const reporter = new GenerationReporter({ subject: pool, consumer: 'orders-api', sink, periodSeconds: 3_600 }).start();
      const rejected: string[] = [];
      pool.on('pendingRejected', (candidate) => rejected.push(candidate.username));
      const cloneName = `${w.first.username}_clone`;
      // Act 1: createSecret staged the pending version; the role does not exist yet (before setSecret)
      const pendingCred = { username: cloneName, password: 'pw-not-set-in-db-yet-0a1b2c', generation: 2 };
      w.passwords.push(pendingCred.password);
      const pendingId = w.putPending(pendingCred);
      await pool.refreshNow();
      const beforeSetSecret = await currentUser(pool);
      // Act 2: setSecret made it work
      await w.createUser(cloneName, 2, pendingCred.password);
      await pool.refreshNow();
      const afterSetSecret = await currentUser(pool);
      // Act 3: the operator aborts the rotation
      w.abort(pendingId);
      await pool.refreshNow();
      const afterAbort = await currentUser(pool);
      await reporter.stop();
      // Assess
      expect(beforeSetSecret).toBe(w.first.username);
      expect(rejected).toEqual([cloneName]);
      expect(afterSetSecret).toBe(cloneName);
      expect(afterAbort).toBe(w.first.username);
      expect(changes).toEqual([1, 2, 1]);
      // One report at start, one per change, one at stop: the generation moves exactly with the pool
      expect(sink.values(LOADED_GENERATION)).toEqual([1, 2, 1, 1]);
    });

    it('serves the first query after adopting the pending user on the connection that validated it (one login)', async () => {
      // Prepare
      const { w, pool, cloneName } = await pendingThatLogsIn('cpool_warm', 'pw-warm-validation-4d5e6f');
      // Act
      await pool.refreshNow();
      const adopted = (await w.sessions()).filter((s) => s.usename === cloneName);
      const served = (
        await pool.query<{ pid: number; u: string }>(
          'SELECT pg_backend_pid() AS pid, current_user AS u',
        )
      ).rows[0];
      const after = (await w.sessions()).filter((s) => s.usename === cloneName);
      // Assess: the validation's session is the pool's, and the query needed no second login
      expect(adopted).toHaveLength(1);
      expect(served).toEqual({ pid: adopted[0].pid, u: cloneName });
      expect(after.map((s) => s.pid)).toEqual([adopted[0].pid]);
    });

    it('leaves no session of a pending user whose validation was superseded by an abort', async () => {
      // Prepare
      const { w, pool, cloneName, pendingId } = await pendingThatLogsIn('cpool_warm_abort', 'pw-warm-abort-7a8b9c');
      await pool.refreshNow();
      // Act: the operator aborts; the pool falls back to AWSCURRENT
      w.abort(pendingId);
      await pool.refreshNow();
      const user = await currentUser(pool);
      await until('the pending user has no session', async () =>
        (await w.sessions()).every((s) => s.usename !== cloneName),
      );
      // Assess
      expect(user).toBe(w.first.username);
      expect(pool.retiringCount).toBe(0);
    });
  });
});
