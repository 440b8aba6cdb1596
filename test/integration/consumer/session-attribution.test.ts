/**
 * The consumer library names every connection it opens in pg_stat_activity:
 * `cv1:<consumer>:<generation>:<host>:<pid>` (lambda/shared/application-name.ts), with the
 * generation of the credential that connection logged in with, so the revocation guard and
 * `converge status --sessions` can say which consumer and process hold a user.
 */
import { hostname } from 'node:os';
import type { PoolClient } from 'pg';
import { GenerationReporter, MemorySink } from '../../../consumer/reporter';
import { RotatingPgPool } from '../../../consumer/rotating-pg-pool';
import { SecretsManagerSource } from '../../../consumer/secrets-manager-source';
import { listSessions } from '../../../lambda/rotation/gates/sessions';
import { formatApplicationName } from '../../../lambda/shared/application-name';
import { asSuperuser } from '../../support/database';
import { consumerWorld, tlsOptions, until, type ConsumerWorld } from './fixtures';

const pools: RotatingPgPool[] = [];
const reporters: GenerationReporter[] = [];
const held: PoolClient[] = [];

afterEach(async () => {
  for (const c of held.splice(0)) c.release();
  await Promise.all(reporters.splice(0).map((r) => r.stop()));
  await Promise.all(pools.splice(0).map((p) => (p.ending ? undefined : p.end())));
});

function pool(
  w: ConsumerWorld,
  extra: Partial<ConstructorParameters<typeof RotatingPgPool>[0]> = {},
): RotatingPgPool {
  const p = new RotatingPgPool({
    source: new SecretsManagerSource({ secretId: w.secretArn, includePending: true }),
    refresh: { ttlMs: 3_600_000, refreshInBackground: false },
    ...tlsOptions(w),
    ...extra,
  });
  p.on('error', () => undefined);
  pools.push(p);
  return p;
}

/** The quick start of consumer/README.md: the pool is only given to a reporter, never told its consumer name. */
async function quickStart(w: ConsumerWorld, consumer: string): Promise<RotatingPgPool> {
  const p = pool(w);
  await p.ready();
  reporters.push(
    new GenerationReporter({
      subject: p,
      consumer,
      sink: new MemorySink(),
      periodSeconds: 3_600,
    }).start(),
  );
  return p;
}

/** A client checked out (so its connection stays open) and its backend pid. */
async function hold(p: RotatingPgPool): Promise<number> {
  const c = await p.connect();
  held.push(c);
  return (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
}

/** application_name of a backend, as PostgreSQL stores it. */
async function applicationNameOf(pid: number): Promise<string> {
  return asSuperuser('postgres', async (c) => {
    const r = await c.query<{ a: string }>(
      'SELECT application_name AS a FROM pg_stat_activity WHERE pid = $1',
      [pid],
    );
    return r.rows[0].a;
  });
}

const expected = (consumer: string, generation: number) =>
  formatApplicationName({ consumer, generation, host: hostname(), pid: process.pid });

describe('Session attribution: RotatingPgPool application_name', () => {
  it('names connections cv1:<consumer>:<generation>:<host>:<pid> in the quick start, and new connections carry the new generation after a username swap', async () => {
    // Prepare
    const w = await consumerWorld('attr_swap');
    const p = await quickStart(w, 'orders-api');
    const before = await hold(p);
    // Act: a rotation to the alternate user (generation 2)
    const clone = await w.createUser(`${w.first.username}_clone`, 2);
    w.putCurrent(clone);
    await p.refreshNow();
    const after = await hold(p);
    // Assess
    expect(await applicationNameOf(before)).toMatch(
      new RegExp(`^cv1:orders-api:1:[^:]+:${process.pid}$`),
    );
    expect(await applicationNameOf(before)).toBe(expected('orders-api', 1));
    expect(await applicationNameOf(after)).toBe(expected('orders-api', 2));
    // The rotation function's view: each session of the old user is attributed to the consumer and process
    const oldUser = await asSuperuser(w.db.dbname, (c) => listSessions(c, w.first.username));
    expect(oldUser.map((s) => s.attribution)).toEqual([
      { consumer: 'orders-api', generation: 1, host: expect.any(String), pid: process.pid },
    ]);
    expect(
      p
        .connections()
        .map((c) => [c.processId, c.generation, c.applicationName])
        .sort(),
    ).toEqual(
      [
        [before, 1, expected('orders-api', 1)],
        [after, 2, expected('orders-api', 2)],
      ].sort(),
    );
  });

  it('gives each connection of one user the generation of the password it logged in with (password-only rotation, one inner pool)', async () => {
    // Prepare
    const w = await consumerWorld('attr_pw');
    const p = await quickStart(w, 'billing:jobs');
    const first = await hold(p);
    // Act
    const changed = await w.changePassword(w.first.username, 3);
    w.putCurrent(changed);
    await p.refreshNow();
    const second = await hold(p);
    // Assess
    expect(await applicationNameOf(first)).toBe(expected('billing:jobs', 1));
    expect(await applicationNameOf(second)).toBe(expected('billing:jobs', 3));
  });

  it('names the connection that validated a pending credential with the pending generation', async () => {
    // Prepare
    const w = await consumerWorld('attr_pending');
    const p = await quickStart(w, 'orders-api');
    await p.query('SELECT 1');
    const cloneName = `${w.first.username}_clone`;
    const clone = await w.createUser(cloneName, 2);
    w.putPending(clone);
    // Act: the live consumer validates and adopts AWSPENDING
    await p.refreshNow();
    await until('the pending user to be adopted', () => p.loadedGeneration === 2);
    const pid = await hold(p);
    // Assess
    const sessions = await asSuperuser(w.db.dbname, (c) => listSessions(c, cloneName));
    expect(sessions.map((s) => s.pid)).toEqual([pid]);
    expect(sessions[0]!.applicationName).toBe(expected('orders-api', 2));
  });

  it('prefers the consumer option to the reporter, and keeps applicationName for a pool that does not know its consumer', async () => {
    // Prepare
    const w = await consumerWorld('attr_opt');
    const named = pool(w, { consumer: 'orders-api', applicationName: 'ignored' });
    reporters.push(
      new GenerationReporter({
        subject: named,
        consumer: 'other-name',
        sink: new MemorySink(),
        periodSeconds: 3_600,
      }).start(),
    );
    const anonymous = pool(w, { applicationName: 'legacy-batch' });
    // Act
    const a = await hold(named);
    const b = await hold(anonymous);
    // Assess
    expect(named.consumer).toBe('orders-api');
    expect(await applicationNameOf(a)).toBe(expected('orders-api', 1));
    expect(await applicationNameOf(b)).toBe('legacy-batch');
    expect(anonymous.connections()[0]!.applicationName).toBe('legacy-batch');
  });
});
