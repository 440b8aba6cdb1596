/**
 * The abort -> rotate trap (issue 12): a rotation held at the promotion gate after one live
 * consumer adopted the pending credential (another live consumer is stuck), `converge abort`, then
 * at once `converge rotate`, as the runbook advises. The consumer that had adopted the aborted
 * credential is healthy: it falls back at its next refresh. The next rotation must not fail with a
 * revocation-guard error that blames it; `rotate` waits for the fallback and says what it waits for.
 *
 * Real PostgreSQL, the real rotation handler, the real CLI and consumer library, and the local AWS
 * models, all on one virtual clock (test/integration/gates/fleet.ts): the CLI's waits advance it and
 * let the world move on.
 */
import { installLambdaModel, LambdaModel } from '../../../cli/local/lambda-model';
import { runCli } from '../../../cli/main';
import { TAG_ABORTED } from '../../../lambda/rotation/aborted';
import { ConvergencePendingError, RevocationBlockedError } from '../../../lambda/shared/errors';
import { leakCheckedHarnesses, sessionCount } from '../../support/probes';
import { AWSPENDING, AWSPREVIOUS, type RotationHarness } from '../../support/rotation-harness';
import { gateEnv, LiveConsumer, virtualCloudWatch, type VirtualClock } from '../gates/fleet';

/** The CLI in process, on the test's virtual clock. */
async function cli(
  clock: VirtualClock,
  ...argv: string[]
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t), clock };
  const code = await runCli(argv, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** Waits (bounded) until `done` holds: for connections a drain closes, which take real milliseconds. */
async function eventually(done: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200 && !(await done()); i++) await new Promise((r) => setTimeout(r, 25));
}

describe('converge abort, then converge rotate', () => {
  const world = virtualCloudWatch();
  const lambda = new LambdaModel();
  const lambdaStub = installLambdaModel(lambda);
  const file = leakCheckedHarnesses();
  const fleet: LiveConsumer[] = [];

  afterEach(async () => {
    await Promise.all(fleet.splice(0).map((c) => c.stop()));
  });
  afterAll(() => lambdaStub.restore());

  /** Secret, function (also as the Lambda model's, for the CLI) and two live consumers under load. */
  async function setUp(
    prefix: string,
  ): Promise<{ h: RotationHarness; api: LiveConsumer; worker: LiveConsumer }> {
    const env = gateEnv([
      { name: 'orders-api', mode: 'live' },
      { name: 'billing-worker', mode: 'live' },
    ]);
    const h = await file.create({ prefix, env, deps: { clock: world.clock } });
    lambda.register(h.lambdaArn, (e) => h.handler(e as never), env);
    const api = await LiveConsumer.start(h, 'orders-api', world.clock);
    const worker = await LiveConsumer.start(h, 'billing-worker', world.clock);
    fleet.push(api, worker);
    return { h, api, worker };
  }

  /** Each consumer refreshes (its TTL ran out) if told to, and every consumer reports. */
  function worldMoves(refreshing: LiveConsumer[], reporting: LiveConsumer[]): () => Promise<void> {
    return async () => {
      for (const c of refreshing) await c.pool.refreshNow();
      for (const c of reporting) await c.reporter.report();
    };
  }

  /** Rotation 1 completes; rotation 2 is held at the promotion gate: api adopted it, worker is stuck. */
  async function heldAtTheGate(
    h: RotationHarness,
    api: LiveConsumer,
    worker: LiveConsumer,
  ): Promise<void> {
    world.clock.onSleep = worldMoves([api, worker], [api, worker]);
    await h.rotate();
    expect(h.current().generation).toBe(1);
    world.clock.onSleep = worldMoves([api], [api, worker]);
    const token = h.begin();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const)
      await h.step(step, token);
    const held = await h.step('finishSecret', token).catch((e: unknown) => e);
    file.errors.push(held);
    expect(held).toBeInstanceOf(ConvergencePendingError);
    expect(api.generation).toBe(2);
    expect(worker.generation).toBe(1);
  }

  /** Lets `seconds` of virtual time pass in steps of 10 s, the world moving as `step` says. */
  async function pass(seconds: number, step: () => Promise<void>): Promise<void> {
    for (let t = 0; t < seconds; t += 10) {
      world.clock.advance(10_000);
      await step();
    }
  }

  const pendingVersions = (h: RotationHarness) =>
    Object.entries(h.model.snapshot(h.secretArn)).filter(([, v]) => v.stages.includes(AWSPENDING));

  it('rotate waits for the consumer that adopted the aborted credential, says so, and the rotation completes with no failed query', async () => {
    // Prepare: held at the gate; the operator reads status for 30 s (everyone keeps reporting), then aborts
    const { h, api, worker } = await setUp('trap');
    await heldAtTheGate(h, api, worker);
    await pass(30, worldMoves([], [api, worker]));
    const aborted = await cli(world.clock, 'abort', h.secretArn, '--yes');
    // From now on every consumer refreshes on its TTL while time passes (the operator's wait included)
    world.clock.onSleep = worldMoves([api, worker], [api, worker]);
    const sleepsBefore = world.clock.sleeps;
    // Act
    const rotated = await cli(world.clock, 'rotate', h.secretArn);
    const settled = await h.model.rotationSettled(h.secretArn);
    file.errors.push(settled?.error);
    // Assess: the abort recorded itself; rotate named the one consumer it waited for, in plain words
    expect(aborted.code).toBe(0);
    expect(aborted.out).toMatch(new RegExp(`abort recorded: ${TAG_ABORTED}=\\S+ 2 \\S+Z`));
    expect(rotated.code).toBe(0);
    expect(rotated.err.split('\n')[0]).toMatch(
      /^rotate: \[0 s of 120 s\] the revocation guard would hold: waiting for orders-api to report generation 1 after the abort at \d\d:\d\d:\d\dZ \(it still reported 2, the aborted rotation's, in the 60 s from \d\d:\d\d:\d\dZ, and nothing since the abort; live consumers move within their refresh interval; once it has, that data leaves its 60 s freshness window at \d\d:\d\d:\d\dZ, in \d+ s\)$/,
    );
    expect(rotated.err).not.toContain('billing-worker');
    expect(rotated.err).toMatch(
      /rotate: the revocation guard would admit now \(after \d+ s\); starting the rotation$/,
    );
    expect(rotated.out).toMatch(
      /^rotation of \S+ started: version \S+ is AWSPENDING\n  waited \d+ s until the revocation guard would admit \(\d+ checks\)$/,
    );
    expect(world.clock.sleeps).toBeGreaterThan(sleepsBefore);
    // ... and the rotation went through both gates
    expect(settled?.error).toBeUndefined();
    expect(h.current().generation).toBe(3);
    expect([api.generation, worker.generation]).toEqual([3, 3]);
    expect(api.load.errors).toEqual([]);
    expect(worker.load.errors).toEqual([]);
  });

  it('after the abort the consumer drops the aborted user at its next refresh, and the guard does not wait for the data it published before the abort', async () => {
    // Prepare: held at the gate; the operator aborts at the start of a minute, after api's last report of 2
    const { h, api, worker } = await setUp('trapfb');
    await heldAtTheGate(h, api, worker);
    const abortedUser = h.secret(AWSPREVIOUS).username;
    world.clock.advance(50_000);
    await worldMoves([], [api, worker])();
    world.clock.advance(10_000);
    const aborted = await cli(world.clock, 'abort', h.secretArn, '--yes');
    expect(aborted.code).toBe(0);
    // Act: api's TTL runs out just after the abort
    world.clock.advance(5_000);
    await worldMoves([api, worker], [api, worker])();
    await eventually(
      async () => api.pool.retiringCount === 0 && (await sessionCount(h, abortedUser)) === 0,
    );
    // Assess: fallen back, reported, and no connection of the aborted user left open
    expect(api.generation).toBe(1);
    expect(api.pool.connections().map((c) => c.username)).not.toContain(abortedUser);
    expect(await sessionCount(h, abortedUser)).toBe(0);
    // Act: rotate at once
    world.clock.onSleep = worldMoves([api, worker], [api, worker]);
    const rotated = await cli(world.clock, 'rotate', h.secretArn);
    const settled = await h.model.rotationSettled(h.secretArn);
    file.errors.push(settled?.error);
    // Assess: no wait at all (api's points of 2 all predate the abort), and the function's guard agreed
    expect(rotated.code).toBe(0);
    expect(rotated.err).toBe('');
    expect(settled?.error).toBeUndefined();
    expect(h.current().generation).toBe(3);
    expect(api.load.errors).toEqual([]);
  });

  it('a consumer that keeps the aborted credential after the abort still blocks: rotate starts nothing (exit 3), and the function refuses too', async () => {
    // Prepare: api never refreshes after the abort, so it keeps using (and reporting) generation 2
    const { h, api, worker } = await setUp('trapat');
    await heldAtTheGate(h, api, worker);
    await cli(world.clock, 'abort', h.secretArn, '--yes');
    world.clock.onSleep = worldMoves([worker], [api, worker]);
    // Act
    const waited = await cli(world.clock, 'rotate', h.secretArn, '--wait', '30');
    const once = await cli(world.clock, 'rotate', h.secretArn, '--no-wait');
    // Assess: nothing started; the message names what blocks and that nothing changed
    for (const r of [waited, once]) {
      expect(r.code).toBe(3);
      expect(r.out).toBe('');
      expect(r.err).toMatch(
        /converge: rotation of \S+ NOT started: the revocation guard would hold.*waiting for orders-api to report generation 1 after the abort .*it still reported 2, the aborted rotation's.*Nothing was changed/,
      );
    }
    expect(waited.err).toContain('after 30 s of waiting');
    expect(waited.err.split('\n').filter((l) => l.startsWith('rotate: ['))).toHaveLength(6);
    expect(once.err.split('\n')).toHaveLength(1);
    expect(pendingVersions(h)).toEqual([]);
    // Act: someone starts the rotation anyway (the console, the schedule)
    const refused = await h.rotate().catch((e: unknown) => e);
    file.errors.push(refused);
    // Assess: the function's own guard holds on the data after the abort and on the sessions
    expect(refused).toBeInstanceOf(RevocationBlockedError);
    expect((refused as RevocationBlockedError).blocking).toEqual([
      { consumer: 'orders-api', reason: 'ahead', lastGeneration: 2 },
    ]);
    expect((refused as RevocationBlockedError).sessions).toBeGreaterThan(0);
    expect(h.current().generation).toBe(1);
  });

  it('a healthy fleet is not delayed: rotate checks once and starts at once', async () => {
    // Prepare: rotation 1 done, everyone on generation 1 and reporting until its old data aged out
    const { h, api, worker } = await setUp('traphy');
    world.clock.onSleep = worldMoves([api, worker], [api, worker]);
    await h.rotate();
    await pass(130, worldMoves([], [api, worker]));
    // Act
    const rotated = await cli(world.clock, 'rotate', h.secretArn);
    const settled = await h.model.rotationSettled(h.secretArn);
    file.errors.push(settled?.error);
    // Assess: no progress line (no wait), nothing about a wait in the output, and the rotation completed
    expect(rotated.code).toBe(0);
    expect(rotated.err).toBe('');
    expect(rotated.out).toMatch(/^rotation of \S+ started: version \S+ is AWSPENDING$/);
    expect(settled?.error).toBeUndefined();
    expect(h.current().generation).toBe(2);
  });
});
