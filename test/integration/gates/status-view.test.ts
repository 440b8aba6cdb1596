/**
 * `converge status` answers in one look (issue 12): through the real rotation handler, real
 * PostgreSQL and the local AWS models, with virtual time shared by the function, the CloudWatch
 * model and status. Each test sets up one situation an on-call engineer meets and checks what
 * status says: the rotation's state, each consumer's state with since when, and the next action.
 */
import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { Client } from 'pg';
import { status, watchStatus, type StatusReport } from '../../../cli/commands/status';
import { formatStatus } from '../../../cli/format';
import { installLambdaModel, LambdaModel } from '../../../cli/local/lambda-model';
import { runCli } from '../../../cli/main';
import { formatApplicationName } from '../../../lambda/shared/application-name';
import { expectNoSecretsInOutput } from '../../support/captured-output';
import { cliClients, connectAs } from '../../support/probes';
import {
  AWSPREVIOUS,
  createRotationHarness,
  type RotationHarness,
} from '../../support/rotation-harness';
import { gateEnv, LiveConsumer, RestartOnlyConsumer, virtualCloudWatch } from './fleet';

const lambda = new LambdaModel();
const lambdaStub = installLambdaModel(lambda);
const clients = cliClients();

describe('converge status: the rotation state, consumers with since when, and the next action', () => {
  const world = virtualCloudWatch();
  const harnesses: RotationHarness[] = [];
  const stops: (() => Promise<unknown>)[] = [];
  const outputs: string[] = [];

  afterEach(async () => {
    await Promise.all(stops.splice(0).map((s) => s()));
  });

  afterAll(() => {
    lambdaStub.restore();
    expectNoSecretsInOutput(harnesses.flatMap((h) => h.passwords()));
    for (const h of harnesses)
      for (const p of h.passwords()) for (const o of outputs) expect(o).not.toContain(p);
  });

  async function setup(
    prefix: string,
    consumers: { name: string; mode: string; maxStalenessSeconds?: number }[],
    gate: { maxWaitSeconds?: number } = {},
  ) {
    const env = gateEnv(consumers, gate);
    const h = await createRotationHarness({ prefix, env, deps: { clock: world.clock } });
    lambda.register(h.lambdaArn, (e) => h.handler(e as never), env);
    harnesses.push(h);
    return h;
  }

  async function live(h: RotationHarness, name: string): Promise<LiveConsumer> {
    const c = await LiveConsumer.start(h, name, world.clock);
    stops.push(() => c.stop());
    return c;
  }

  /** A session opened the way the consumer library names it (cv1 application_name). */
  async function processSession(
    h: RotationHarness,
    stage: string,
    consumer: string,
    host: string,
    pid: number,
  ): Promise<Client> {
    const s = h.secret(stage);
    const c = await connectAs(
      h,
      s,
      formatApplicationName({ consumer, generation: s.generation, host, pid }),
    );
    stops.push(() => c.end());
    return c;
  }

  async function statusNow(
    h: RotationHarness,
    options: { sessions?: boolean } = {},
  ): Promise<StatusReport> {
    const r = await status(clients, h.secretArn, {
      now: world.clock.now(),
      sessions: options.sessions,
      caBundlePath: h.config.caBundlePath,
    });
    outputs.push(JSON.stringify(r), formatStatus(r));
    return r;
  }

  it('a live consumer that never adopts: BLOCKING with stale since, rotation waiting at the gate with evaluations, next action restart with its processes', async () => {
    // Prepare: orders-api adopts the pending credential at every gate pause; billing never refreshes.
    // The gate polls every 20 s for at most 60 s per invocation, then holds (throws).
    const h = await setup(
      'stvb',
      [
        { name: 'orders-api', mode: 'live' },
        { name: 'billing', mode: 'live' },
      ],
      { maxWaitSeconds: 60 },
    );
    const api = await live(h, 'orders-api');
    const billing = await live(h, 'billing');
    const startedAt = world.clock.now();
    world.clock.onSleep = async () => {
      await api.pool.refreshNow();
      await Promise.all([api.reporter.report(), billing.reporter.report()]);
    };
    await expect(h.rotate()).rejects.toThrow(/billing/);
    // Two minutes on, both report again: orders-api's generation-0 data has left its window.
    world.clock.advance(120_000);
    await Promise.all([api.reporter.report(), billing.reporter.report()]);
    await processSession(h, 'AWSCURRENT', 'billing', 'host-b', 4242);
    // Act
    const r = await statusNow(h, { sessions: true });
    // Assess
    expect(r.rotation).toMatchObject({
      state: 'waiting-at-gate',
      versionId: h.pendingToken(),
      generation: 1,
    });
    expect(r.rotation.evaluations).toBeGreaterThanOrEqual(3);
    expect(r.rotation.since).toBeDefined();
    const b = r.consumers.find((c) => c.name === 'billing')!;
    expect(b).toMatchObject({
      state: 'BLOCKING',
      blocks: 'promotion',
      reason: 'stale',
      generation: 0,
      requiredGeneration: 1,
    });
    // billing has reported generation 0 since it started: its run below 1 starts at its first data point.
    expect(Date.parse(b.since!)).toBeLessThanOrEqual(startedAt);
    expect(r.consumers.find((c) => c.name === 'orders-api')).toMatchObject({
      state: 'OK',
      generation: 1,
    });
    expect(r.nextAction).toMatchObject({
      kind: 'restart',
      consumer: 'billing',
      // billing's own pool (this test process: the consumer library names its connections) and the
      // process on host-b; orders-api's pool in this process is on generation 1 and is not listed.
      processes: expect.arrayContaining([
        expect.objectContaining({ host: 'host-b', pid: 4242, generation: 0, sessions: 1 }),
        expect.objectContaining({ pid: process.pid, generation: 0 }),
      ]),
    });
    expect(r.nextAction.processes).toHaveLength(2);
    expect(r.health.exitCode).toBe(3);
    const text = formatStatus(r);
    expect(text.split('\n')[0]).toMatch(/^Next: restart billing: .*host-b pid 4242 \(generation 0\)/);
    expect(text.split('\n')[0]).toContain(`pid ${process.pid} (generation 0)`);
    expect(text.split('\n')[1]).toMatch(
      /^Why: {2}the promotion gate has held version \S+ \(generation 1\) for .* billing \(live\) is STALE since /,
    );
    expect(text).toMatch(
      /^ {2}billing\s+live\s+0\s+\d+s\s+BLOCKING promotion: stale\s+stale since \S+/m,
    );
  });

  it('during the first gate wait, before any invocation gave up: already waiting-at-gate with BLOCKING; the record keeps that first hold time', async () => {
    // Prepare: billing never adopts; the gate polls every 20 s for at most 60 s in one invocation
    const h = await setup(
      'stvw',
      [
        { name: 'orders-api', mode: 'live' },
        { name: 'billing', mode: 'live' },
      ],
      { maxWaitSeconds: 60 },
    );
    const api = await live(h, 'orders-api');
    const billing = await live(h, 'billing');
    let during: StatusReport | undefined;
    world.clock.onSleep = async () => {
      await api.pool.refreshNow();
      await Promise.all([api.reporter.report(), billing.reporter.report()]);
      // Act: status while the first finishSecret is still waiting (its first sleep)
      during ??= await statusNow(h);
    };
    await expect(h.rotate()).rejects.toThrow(/billing/);
    // Assess
    expect(during?.rotation).toMatchObject({ state: 'waiting-at-gate', evaluations: 1 });
    expect(during?.consumers.find((c) => c.name === 'billing')).toMatchObject({
      state: 'BLOCKING',
      blocks: 'promotion',
    });
    // (orders-api adopted in the same metric bucket as its last old report, so it may still be named first)
    expect(during?.nextAction.kind).toBe('restart');
    expect(during?.nextAction.why).toMatch(/billing \(live\) is STALE/);
    // ...and when the invocation gives up, the hold still started at its first evaluation
    const after = await statusNow(h);
    expect(after.rotation.since).toBe(during?.rotation.since);
    expect(after.rotation.evaluations).toBeGreaterThan(1);
  });

  it('a live consumer that stopped reporting: BLOCKING silent since its last data point; finish --force offered once it is silent for long', async () => {
    // Prepare: orders-api reports once (generation 0) and then never again
    const h = await setup('stvs', [{ name: 'orders-api', mode: 'live', maxStalenessSeconds: 60 }], {
      maxWaitSeconds: 0,
    });
    const api = await live(h, 'orders-api');
    const lastReport = world.clock.now();
    world.clock.advance(15 * 60_000);
    await expect(h.rotate()).rejects.toThrow(/orders-api \(silent/);
    void api;
    // Act
    const r = await statusNow(h);
    // Assess
    const c = r.consumers[0];
    expect(c).toMatchObject({
      name: 'orders-api',
      state: 'BLOCKING',
      blocks: 'promotion',
      reason: 'silent',
      lastSeenGeneration: 0,
    });
    expect(Date.parse(c.since!)).toBe(Math.floor(lastReport / 60_000) * 60_000);
    expect(r.rotation.state).toBe('waiting-at-gate');
    expect(r.nextAction.kind).toBe('restart');
    expect(r.nextAction.why).toContain('pass --sessions to list its processes');
    expect(r.nextAction.why).toContain(`If orders-api is gone for good`);
    expect(r.nextAction.why).toContain('converge finish');
  });

  it('a step that failed: step-failed with the step, the typed error name and message; next action abort', async () => {
    // Prepare: createSecret ran; then the master's password no longer works, so setSecret fails
    const h = await setup('stvf', []);
    const token = h.begin();
    await h.step('createSecret', token);
    const master = JSON.parse(h.model.getSecretValue({ SecretId: h.masterArn }).SecretString!);
    await new SecretsManagerClient({}).send(
      new PutSecretValueCommand({
        SecretId: h.masterArn,
        SecretString: JSON.stringify({ ...master, password: 'not-the-password-1A' }),
      }),
    );
    const failure = await h.step('setSecret', token).catch((e: Error) => e);
    expect(failure).toBeInstanceOf(Error);
    // Act
    const r = await statusNow(h);
    // Assess
    expect(r.rotation).toMatchObject({
      state: 'step-failed',
      versionId: token,
      failure: { step: 'setSecret', errorName: (failure as Error).name },
    });
    expect(r.rotation.failure!.message.length).toBeGreaterThan(0);
    expect(r.nextAction).toMatchObject({
      kind: 'abort',
      command: `converge abort ${h.model.describeSecret({ SecretId: h.secretArn }).Name}`,
    });
    expect(r.nextAction.why).toContain(
      `setSecret failed at ${r.rotation.failure!.at}: ${(failure as Error).name}`,
    );
    expect(formatStatus(r)).toMatch(
      /^Rotation {4}STEP FAILED: version \S+ \(generation 1\); setSecret failed at /m,
    );
    expect(JSON.stringify(r)).not.toContain('not-the-password-1A');
  });

  it('held by the revocation guard (a restart-only consumer nobody restarted): BLOCKING revocation, next action restart with its process on the old user', async () => {
    // Prepare: rotation 1 completes; billing (restart-only) keeps its generation-0 session and
    // reports 0, so rotation 2's guard refuses to overwrite its user
    const h = await setup('stvg', [
      { name: 'billing', mode: 'restart-only', maxStalenessSeconds: 300 },
    ]);
    const billing = new RestartOnlyConsumer(h, 'billing', world.clock);
    await billing.start();
    stops.push(() => billing.close());
    await h.rotate();
    await processSession(h, AWSPREVIOUS, 'billing', 'host-c', 777);
    await billing.reporter.report();
    await expect(h.rotate()).rejects.toThrow(/Revocation blocked/);
    // Act
    const r = await statusNow(h, { sessions: true });
    // Assess
    expect(r.rotation).toMatchObject({
      state: 'held-by-guard',
      failure: { step: 'setSecret', errorName: 'RevocationBlockedError' },
    });
    expect(r.rotation.guardSessions?.username).toBe(h.secret(AWSPREVIOUS).username);
    expect(r.health).toMatchObject({ state: 'holding', exitCode: 3 });
    expect(r.health.reasons[0]).toMatch(/the revocation guard refused its setSecret$/);
    expect(r.consumers[0]).toMatchObject({
      name: 'billing',
      state: 'BLOCKING',
      blocks: 'revocation',
      reason: 'stale',
      generation: 0,
      requiredGeneration: 1,
    });
    expect(r.nextAction).toMatchObject({
      kind: 'restart',
      consumer: 'billing',
      processes: [expect.objectContaining({ host: 'host-c', pid: 777, generation: 0 })],
    });
    expect(r.sessions?.map((u) => u.stages)).toEqual(
      expect.arrayContaining([['AWSCURRENT'], expect.arrayContaining([AWSPREVIOUS])]),
    );
  });

  it('idle and healthy: next action none, exit 0, no GetSecretValue without --sessions', async () => {
    // Prepare
    const h = await setup('stvh', [{ name: 'orders-api', mode: 'live' }]);
    const api = await live(h, 'orders-api');
    world.clock.onSleep = async () => {
      await api.pool.refreshNow();
      await api.reporter.report();
    };
    await h.rotate();
    world.clock.advance(120_000);
    await api.reporter.report();
    const reads = h.sm.commandCalls(GetSecretValueCommand).length;
    // Act
    const r = await statusNow(h);
    // Assess
    expect(h.sm.commandCalls(GetSecretValueCommand).length).toBe(reads);
    expect(r.rotation).toEqual({ state: 'idle' });
    expect(r.consumers[0]).toMatchObject({ state: 'OK', generation: 1 });
    expect(r.nextAction.kind).toBe('none');
    expect(r.health.exitCode).toBe(0);
    expect(formatStatus(r).split('\n')[0]).toBe('Next: nothing to do');
  });

  it('--watch refreshes until the rotation state changes, then returns the last report (injected sleep)', async () => {
    // Prepare: held at the gate by orders-api, which adopts during the second watch pause
    const h = await setup('stvw', [{ name: 'orders-api', mode: 'live', maxStalenessSeconds: 60 }], {
      maxWaitSeconds: 0,
    });
    const api = await live(h, 'orders-api');
    await expect(h.rotate()).rejects.toThrow(/orders-api/);
    const reports: StatusReport[] = [];
    const pauses: number[] = [];
    // Act
    const last = await watchStatus(
      clients,
      h.secretArn,
      {},
      {
        now: () => world.clock.now(),
        intervalSeconds: 5,
        onReport: (r) => reports.push(r),
        sleep: async (ms) => {
          pauses.push(ms);
          if (pauses.length === 2) {
            await api.pool.refreshNow();
            world.clock.advance(180_000);
            await api.reporter.report();
            await h.retry();
          }
        },
      },
    );
    // Assess
    expect(pauses).toEqual([5000, 5000]);
    expect(reports.map((r) => r.rotation.state)).toEqual([
      'waiting-at-gate',
      'waiting-at-gate',
      'idle',
    ]);
    expect(last.rotation.state).toBe('idle');
    expect(h.current().generation).toBe(1);
  });

  it('--watch stops cleanly on Ctrl-C (abort signal) with the last report, and refuses a bad interval before any AWS call', async () => {
    // Prepare
    const h = await setup('stvx', []);
    const stop = new AbortController();
    const reports: StatusReport[] = [];
    const calls = h.sm.calls().length;
    // Act
    const last = await watchStatus(
      clients,
      h.secretArn,
      {},
      {
        onReport: (r) => reports.push(r),
        signal: stop.signal,
        sleep: async () => stop.abort(),
      },
    );
    const usage = await runCli(['status', h.secretArn, '--watch', '0'], {
      out: () => undefined,
      err: () => undefined,
    });
    // Assess
    expect(reports).toHaveLength(1);
    expect(last).toBe(reports[0]);
    expect(last.nextAction.kind).toBe('none');
    expect(usage).toBe(2);
    // One DescribeSecret by the one refresh; none by the refused command.
    expect(h.sm.calls().length).toBe(calls + 1);
  });
});
