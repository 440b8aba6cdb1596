import { GetMetricDataCommand, InternalServiceFault } from '@aws-sdk/client-cloudwatch';
import { UpdateSecretVersionStageCommand } from '@aws-sdk/client-secrets-manager';
import { AwsCallError, ConvergencePendingError } from '../../../lambda/shared/errors';
import { expectNoSecretsInOutput } from '../../support/captured-output';
import { AWSCURRENT, AWSPENDING, createRotationHarness, type RotationHarness } from '../../support/rotation-harness';
import { LiveConsumer, VIRTUAL_T0, gateEnv, virtualCloudWatch } from './fleet';

/** Which version holds which stage, without values. */
function stages(h: RotationHarness): Record<string, string[]> {
  return Object.fromEntries(Object.entries(h.model.snapshot(h.secretArn)).map(([id, v]) => [id, v.stages]));
}

describe('Promotion gate: finishSecret against real consumers, real PostgreSQL and the CloudWatch model', () => {
  const world = virtualCloudWatch();
  const harnesses: RotationHarness[] = [];
  const consumers: LiveConsumer[] = [];
  const errors: unknown[] = [];

  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.stop()));
  });

  afterAll(() => expectNoSecretsInOutput(harnesses.flatMap((h) => h.passwords()), errors));

  async function setup(prefix: string, maxWaitSeconds?: number) {
    const h = await createRotationHarness({
      prefix,
      env: gateEnv([{ name: 'orders-api', mode: 'live' }, { name: 'billing-worker', mode: 'live' }], { maxWaitSeconds }),
      deps: { clock: world.clock },
    });
    harnesses.push(h);
    const api = await LiveConsumer.start(h, 'orders-api', world.clock);
    const worker = await LiveConsumer.start(h, 'billing-worker', world.clock);
    consumers.push(api, worker);
    return { h, api, worker };
  }

  it('holds while either consumer reports the old generation, promotes after both moved, with zero failed queries', async () => {
    // Prepare: orders-api adopts the pending credential at the gate's first pause, billing-worker at its fourth
    const { h, api, worker } = await setup('gpro');
    const seen: { sleep: number; current: number; api?: number; worker?: number }[] = [];
    world.clock.onSleep = async (n) => {
      seen.push({ sleep: n, current: h.current().generation, api: api.generation, worker: worker.generation });
      if (n === 1) await api.pool.refreshNow();
      if (n === 4) await worker.pool.refreshNow();
      await Promise.all([api.reporter.report(), worker.reporter.report()]);
    };
    // Act
    await h.rotate();
    // Assess
    expect(h.current().generation).toBe(1);
    expect(api.generation).toBe(1);
    expect(worker.generation).toBe(1);
    // Never promoted while a consumer was on generation 0: AWSCURRENT stayed at 0 at every pause.
    expect(seen.every((s) => s.current === 0)).toBe(true);
    expect(seen.filter((s) => s.worker === 0).length).toBeGreaterThanOrEqual(4);
    // The worker's last report of generation 0 (pause 3, T0+60 s, minute bucket [T0+60 s, T0+120 s)) had
    // to leave its 60 s freshness window: promotion at the first pause at or after T0+180 s, i.e. the 9th,
    // although both had reported generation 1 since pause 4.
    expect(world.clock.now()).toBe(VIRTUAL_T0 + 180_000);
    expect(world.clock.sleeps).toBe(9);
    for (const c of [api, worker]) {
      await c.load.stop();
      expect({ consumer: c.name, failed: c.load.failed, errors: c.load.errors }).toEqual({ consumer: c.name, failed: 0, errors: [] });
      expect(c.load.ok).toBeGreaterThan(0);
    }
  });

  it('throws ConvergencePendingError after its bounded wait with nothing changed; the re-drive completes the rotation once the fleet converged', async () => {
    // Prepare: the worker does not move during the gate's 120 s
    const { h, api, worker } = await setup('gred', 120);
    world.clock.onSleep = async (n) => {
      if (n === 1) await api.pool.refreshNow();
      await Promise.all([api.reporter.report(), worker.reporter.report()]);
    };
    const before = stages(h);
    // Act
    const held = await h.rotate().catch((e: unknown) => e);
    errors.push(held);
    // Assess: held, naming the worker, and the secret is as it was
    expect(held).toBeInstanceOf(ConvergencePendingError);
    expect((held as ConvergencePendingError).blocking).toEqual([{ consumer: 'billing-worker', reason: 'stale', lastGeneration: 0 }]);
    expect(world.clock.sleeps).toBe(6);
    const token = Object.entries(stages(h)).find(([, s]) => s.includes(AWSPENDING))![0];
    const after = stages(h);
    expect(Object.fromEntries(Object.entries(after).filter(([id]) => id !== token))).toEqual(before);
    expect(after[token]).toEqual([AWSPENDING]);
    expect(h.current().generation).toBe(0);

    // Act: a re-drive while the worker still lags holds again, and still changes nothing
    const early = await h.handler({ converge: 'redrive', SecretId: h.secretArn });
    // Assess
    expect(early).toBe('held');
    expect(stages(h)).toEqual(after);

    // Prepare: the worker adopts; time passes with both reporting the new generation until the old
    // reports have left the 60-second freshness window (a re-drive acts on the evidence present when
    // it runs: it does not wait)
    world.clock.onSleep = undefined;
    await worker.pool.refreshNow();
    for (let i = 0; i < 8; i++) {
      world.clock.advance(20_000);
      await Promise.all([api.reporter.report(), worker.reporter.report()]);
    }
    // Act
    const outcome = await h.handler({ converge: 'redrive', SecretId: h.secretArn });
    // Assess
    expect(outcome).toBe('promoted');
    expect(stages(h)[token]).toContain(AWSCURRENT);
    expect(h.current().generation).toBe(1);
    expect(await h.handler({ converge: 'redrive', SecretId: h.secretArn })).toBe('nothing-pending');
    for (const c of [api, worker]) {
      await c.load.stop();
      expect(c.load.failed).toBe(0);
    }
  });

  it('does not promote when CloudWatch fails during the gate: typed error, AWSCURRENT untouched', async () => {
    // Prepare: both consumers move, but GetMetricData fails
    const { h, api, worker } = await setup('gcwf', 40);
    world.cw.on(GetMetricDataCommand).rejects(new InternalServiceFault({ message: 'Internal failure', $metadata: { httpStatusCode: 500 } }));
    world.clock.onSleep = async () => {
      await Promise.all([api.pool.refreshNow(), worker.pool.refreshNow()]);
      await Promise.all([api.reporter.report(), worker.reporter.report()]);
    };
    const before = stages(h);
    const currentBefore = h.current();
    h.sm.resetHistory();
    // Act
    const err = await h.rotate().catch((e: unknown) => e);
    errors.push(err);
    // Assess
    expect(err).toBeInstanceOf(ConvergencePendingError);
    expect((err as ConvergencePendingError).blocking.map((b) => b.reason)).toEqual(['unverified', 'unverified']);
    expect((err as Error).cause).toBeInstanceOf(AwsCallError);
    expect(h.sm).not.toHaveReceivedCommand(UpdateSecretVersionStageCommand);
    expect(h.current()).toEqual(currentBefore);
    const after = stages(h);
    for (const [id, s] of Object.entries(before)) expect(after[id]).toEqual(s);
    expect(api.generation).toBe(1);
    expect(worker.generation).toBe(1);
  });
});
