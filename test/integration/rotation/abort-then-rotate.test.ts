/**
 * The abort -> rotate trap (issue 12): a rotation held at the promotion gate after one live
 * consumer adopted the pending credential (another live consumer is stuck), `converge abort`, then
 * at once `converge rotate`, as the runbook advises. The consumer that had adopted the aborted
 * credential is healthy: it falls back at its next refresh. The next rotation must not fail with a
 * revocation-guard error that blames it; `rotate` waits for the fallback and says what it waits for.
 *
 * Real PostgreSQL, the real rotation handler, the real CLI and consumer library, and the local AWS
 * models, all on one virtual clock (test/integration/gates/fleet.ts).
 */
import { installLambdaModel, LambdaModel } from '../../../cli/local/lambda-model';
import { runCli } from '../../../cli/main';
import { ConvergencePendingError } from '../../../lambda/shared/errors';
import { leakCheckedHarnesses } from '../../support/probes';
import type { RotationHarness } from '../../support/rotation-harness';
import { gateEnv, LiveConsumer, virtualCloudWatch, type VirtualClock } from '../gates/fleet';

/** The CLI in process, on the test's virtual clock (its waits advance it and run the world). */
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

describe('converge abort, then converge rotate at once', () => {
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

  /** Every consumer refreshes (its TTL ran out) and reports, as each gate poll or CLI wait passes. */
  function everyoneRefreshes(consumers: LiveConsumer[]): () => Promise<void> {
    return async () => {
      for (const c of consumers) {
        await c.pool.refreshNow();
        await c.reporter.report();
      }
    };
  }

  /** Rotation 1 completes; rotation 2 is held at the promotion gate: api adopted it, worker is stuck. */
  async function heldAtTheGate(
    h: RotationHarness,
    api: LiveConsumer,
    worker: LiveConsumer,
  ): Promise<string> {
    world.clock.onSleep = everyoneRefreshes([api, worker]);
    await h.rotate();
    expect(h.current().generation).toBe(1);
    world.clock.onSleep = async () => {
      await api.pool.refreshNow();
      await api.reporter.report();
      await worker.reporter.report();
    };
    const token = h.begin();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const)
      await h.step(step, token);
    const held = await h.step('finishSecret', token).catch((e: unknown) => e);
    file.errors.push(held);
    expect(held).toBeInstanceOf(ConvergencePendingError);
    expect(api.generation).toBe(2);
    expect(worker.generation).toBe(1);
    return token;
  }

  it('the next rotation completes: the consumer that adopted the aborted credential falls back, and no query fails', async () => {
    // Prepare
    const { h, api, worker } = await setUp('trap');
    await heldAtTheGate(h, api, worker);
    const aborted = await cli(world.clock, 'abort', h.secretArn, '--yes');
    expect(aborted.code).toBe(0);
    // From now on every consumer refreshes on its TTL while time passes (the operator's wait included)
    world.clock.onSleep = everyoneRefreshes([api, worker]);
    // Act
    const rotated = await cli(world.clock, 'rotate', h.secretArn);
    const settled = await h.model.rotationSettled(h.secretArn);
    file.errors.push(settled?.error);
    // Assess
    expect(rotated.code).toBe(0);
    expect(settled?.error).toBeUndefined();
    expect(h.current().generation).toBe(3);
    expect(api.generation).toBe(3);
    expect(worker.generation).toBe(3);
    expect(api.load.errors).toEqual([]);
    expect(worker.load.errors).toEqual([]);
  });
});
