import { GetMetricDataCommand, InternalServiceFault, LimitExceededFault } from '@aws-sdk/client-cloudwatch';
import { DescribeSecretCommand, SecretsManagerClient, type StatusType } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { CloudWatchModel } from '../../../cli/local/cloudwatch-model';
import { installCloudWatchModel, wireCloudWatch, type CloudWatchStub } from '../../../cli/local/install';
import { GATE_SAFETY_MARGIN_MS, promotionGate } from '../../../lambda/rotation/promotion-gate';
import { AwsCallError, ConvergencePendingError, RotationAbortedError } from '../../../lambda/shared/errors';
import type { DbSecret } from '../../../lambda/shared/secret';
import { capturedOutput, clearCapturedOutput } from '../../support/captured-output';
import { FakeClock, SECRET_NAME, T0, emfRecords, gateConfig, registry, report, stepContext } from './gate-fixtures';

const pending = { generation: 5, username: 'app_clone' } as DbSecret;
/** The stages stepContext's rotation (token tok-2) starts from. */
const WAITING = { 'tok-1': ['AWSCURRENT'], 'tok-2': ['AWSPENDING'] };

describe('Function: promotionGate', () => {
  let clock: FakeClock;
  const model = new CloudWatchModel({ now: () => clock.now() });
  let cw: CloudWatchStub;
  const sm = mockClient(SecretsManagerClient);

  beforeAll(() => {
    cw = installCloudWatchModel(model);
  });

  afterAll(() => {
    cw.restore();
    sm.restore();
  });

  beforeEach(() => {
    clock = new FakeClock();
    model.clear();
    cw.reset();
    wireCloudWatch(cw, model);
    sm.reset();
    sm.on(DescribeSecretCommand).resolves({ $metadata: {}, VersionIdsToStages: WAITING });
    clearCapturedOutput();
  });

  it('promotes at once when every live consumer reports the pending generation, with one GetMetricData call', async () => {
    // Prepare
    const metrics: string[] = [];
    const config = gateConfig(registry([['api', 'live'], ['worker', 'live'], ['legacy', 'restart-only']]));
    report(model, 'api', 5, T0 - 30_000);
    report(model, 'worker', 6, T0 - 90_000);
    // Act
    await promotionGate(stepContext({ config, clock, metrics }), pending);
    // Assess
    expect(cw).toHaveReceivedCommandTimes(GetMetricDataCommand, 1);
    expect(clock.slept).toEqual([]);
    const [record] = emfRecords(metrics);
    expect(record).toMatchObject({ SecretName: SECRET_NAME, GateWaitSeconds: 0 });
    expect((record._aws as { CloudWatchMetrics: { Dimensions: string[][] }[] }).CloudWatchMetrics[0].Dimensions).toEqual([['SecretName']]);
  });

  it('does not promote while a consumer reports the old generation, and promotes after it moved', async () => {
    // Prepare: both report every 20 s; worker adopts generation 5 at T0 + 120 s
    const config = gateConfig(registry([['api', 'live', 60], ['worker', 'live', 60]]), { pollSeconds: 20, maxWaitSeconds: 600 });
    const switchAt = T0 + 120_000;
    const reportAll = (now: number) => {
      report(model, 'api', 5, now);
      report(model, 'worker', now >= switchAt ? 5 : 4, now);
    };
    reportAll(T0);
    clock.onSleep = reportAll;
    // Act
    await promotionGate(stepContext({ config, clock }), pending);
    // Assess: no promotion before the worker moved; the last old report had to leave the freshness window
    const promotedAt = clock.now();
    expect(promotedAt).toBeGreaterThan(switchAt);
    const lastOldReport = switchAt - 20_000;
    expect(promotedAt).toBeGreaterThanOrEqual(lastOldReport + 60_000);
    expect(cw).toHaveReceivedCommandTimes(GetMetricDataCommand, clock.slept.length + 1);
    expect(clock.totalSlept()).toBeLessThanOrEqual(600_000);
  });

  it('throws ConvergencePendingError naming a silent registered consumer', async () => {
    // Prepare
    const config = gateConfig(registry([['api', 'live'], ['ghost', 'live']]), { maxWaitSeconds: 0 });
    report(model, 'api', 5, T0);
    // Act
    const err = await promotionGate(stepContext({ config, clock }), pending).catch((e: unknown) => e);
    // Assess
    expect(err).toBeInstanceOf(ConvergencePendingError);
    expect((err as ConvergencePendingError).blocking).toEqual([{ consumer: 'ghost', reason: 'silent', lastGeneration: undefined }]);
    expect((err as Error).message).toContain('ghost (silent: no fresh data points)');
    expect((err as ConvergencePendingError).pendingGeneration).toBe(5);
  });

  it('names a stale consumer with the generation it still reports', async () => {
    // Prepare
    const config = gateConfig(registry([['api', 'live']]), { maxWaitSeconds: 0 });
    report(model, 'api', 4, T0);
    // Act
    const err = (await promotionGate(stepContext({ config, clock }), pending).catch((e: unknown) => e)) as ConvergencePendingError;
    // Assess
    expect(err.blocking).toEqual([{ consumer: 'api', reason: 'stale', lastGeneration: 4 }]);
    expect(err.message).toContain('api (last reported generation 4)');
  });

  it.each([
    ['the configured maximum', 95, undefined, 95_000],
    ['the invocation time left minus the safety margin', 600, 100_000, 100_000 - GATE_SAFETY_MARGIN_MS],
    ['zero when the invocation has less than the margin left', 600, GATE_SAFETY_MARGIN_MS - 1, 0],
  ])('never waits longer than %s (fake clock)', async (_name, maxWaitSeconds, remaining, bound) => {
    // Prepare: a consumer that never moves
    const config = gateConfig(registry([['api', 'live']]), { maxWaitSeconds, pollSeconds: 20 });
    report(model, 'api', 4, T0);
    clock.onSleep = (now) => report(model, 'api', 4, now);
    const start = clock.now();
    const remainingTimeMs = remaining === undefined ? undefined : () => remaining - (clock.now() - start);
    // Act
    const err = await promotionGate(stepContext({ config, clock, remainingTimeMs }), pending).catch((e: unknown) => e);
    // Assess
    expect(err).toBeInstanceOf(ConvergencePendingError);
    expect(clock.totalSlept()).toBeLessThanOrEqual(bound);
    expect(clock.totalSlept()).toBeGreaterThan(bound - 20_000);
    expect(cw).toHaveReceivedCommandTimes(GetMetricDataCommand, Math.ceil(bound / 20_000) + 1);
  });

  it('treats CloudWatch failing as not converged: typed error naming every live consumer as unverified', async () => {
    // Prepare
    const config = gateConfig(registry([['api', 'live'], ['worker', 'live']]), { maxWaitSeconds: 40, pollSeconds: 20 });
    cw.on(GetMetricDataCommand).rejects(new InternalServiceFault({ message: 'Internal error', $metadata: { httpStatusCode: 500 } }));
    const metrics: string[] = [];
    // Act
    const err = (await promotionGate(stepContext({ config, clock, metrics }), pending).catch((e: unknown) => e)) as ConvergencePendingError;
    // Assess
    expect(err).toBeInstanceOf(ConvergencePendingError);
    expect(err.blocking).toEqual([
      { consumer: 'api', reason: 'unverified' },
      { consumer: 'worker', reason: 'unverified' },
    ]);
    expect(err.cause).toBeInstanceOf(AwsCallError);
    expect(err.message).toMatch(/GetMetricData failed: InternalServiceFault/);
    expect(cw).toHaveReceivedCommandTimes(GetMetricDataCommand, 3);
    expect(emfRecords(metrics).map((r) => Object.keys(r).filter((k) => k !== '_aws' && k !== 'SecretName')[0])).toEqual([
      'PendingGeneration',
      'PendingGeneration',
      'PendingGeneration',
      'ConvergencePending',
    ]);
  });

  it('keeps polling through a transient CloudWatch failure and promotes once it answers', async () => {
    // Prepare
    const config = gateConfig(registry([['api', 'live']]), { maxWaitSeconds: 60, pollSeconds: 20 });
    report(model, 'api', 5, T0);
    cw.on(GetMetricDataCommand)
      .rejectsOnce(new LimitExceededFault({ message: 'Rate exceeded', $metadata: { httpStatusCode: 400 } }))
      .callsFake(async (input) => model.getMetricData(input));
    // Act
    await promotionGate(stepContext({ config, clock }), pending);
    // Assess
    expect(cw).toHaveReceivedCommandTimes(GetMetricDataCommand, 2);
    expect(clock.slept).toEqual([20_000]);
  });

  it('holds while a replica region is not InSync, then promotes', async () => {
    // Prepare
    const config = gateConfig(registry([['api', 'live']]), { maxWaitSeconds: 60, pollSeconds: 20 });
    report(model, 'api', 5, T0);
    const replication = (status: StatusType) => ({
      $metadata: {},
      VersionIdsToStages: WAITING,
      ReplicationStatus: [{ Region: 'eu-west-1', Status: status }],
    });
    sm.on(DescribeSecretCommand).resolvesOnce(replication('InProgress')).resolves(replication('InSync'));
    const ctx = stepContext({ config, clock, description: { ReplicationStatus: [{ Region: 'eu-west-1', Status: 'InProgress' }] } });
    // Act
    await promotionGate(ctx, pending);
    // Assess: evaluation, the stage re-check after the pause, evaluation
    expect(sm).toHaveReceivedCommandTimes(DescribeSecretCommand, 3);
    expect(clock.slept).toEqual([20_000]);
  });

  it('stops waiting with RotationAbortedError, changing nothing, when the rotation is aborted while it sleeps', async () => {
    // Prepare: the consumer lags; during the first pause an operator removes AWSPENDING
    const config = gateConfig(registry([['api', 'live', 60]]), { pollSeconds: 20, maxWaitSeconds: 600 });
    report(model, 'api', 4, T0);
    clock.onSleep = () => {
      sm.on(DescribeSecretCommand).resolves({ $metadata: {}, VersionIdsToStages: { 'tok-1': ['AWSCURRENT'], 'tok-2': [] } });
    };
    // Act
    const err = await promotionGate(stepContext({ config, clock }), pending).catch((e: unknown) => e);
    // Assess: it did not wait out its 600 s bound
    expect(err).toBeInstanceOf(RotationAbortedError);
    expect((err as Error).message).toContain('lost AWSPENDING');
    expect(clock.slept).toEqual([20_000]);
  });

  it('ends the wait as done when a concurrent invocation promoted the same token', async () => {
    // Prepare
    const config = gateConfig(registry([['api', 'live', 60]]), { pollSeconds: 20, maxWaitSeconds: 600 });
    report(model, 'api', 4, T0);
    clock.onSleep = () => {
      sm.on(DescribeSecretCommand).resolves({ $metadata: {}, VersionIdsToStages: { 'tok-1': ['AWSPREVIOUS'], 'tok-2': ['AWSCURRENT'] } });
    };
    // Act
    await promotionGate(stepContext({ config, clock }), pending);
    // Assess
    expect(clock.slept).toEqual([20_000]);
  });

  it('keeps waiting when re-reading the stages fails (the read is not a verdict)', async () => {
    // Prepare: the consumer moves after the first pause; the stage re-check fails once
    const config = gateConfig(registry([['api', 'live', 60]]), { pollSeconds: 20, maxWaitSeconds: 600 });
    report(model, 'api', 4, T0 - 120_000);
    sm.on(DescribeSecretCommand).rejectsOnce(new Error('ThrottlingException')).resolves({ $metadata: {}, VersionIdsToStages: WAITING });
    clock.onSleep = (now) => report(model, 'api', 5, now);
    // Act
    await promotionGate(stepContext({ config, clock }), pending);
    // Assess
    expect(clock.slept.length).toBeGreaterThanOrEqual(1);
  });

  it('names the replica in the error when replication never gets InSync', async () => {
    // Prepare
    const config = gateConfig([], { maxWaitSeconds: 0 });
    sm.on(DescribeSecretCommand).resolves({ $metadata: {}, ReplicationStatus: [{ Region: 'eu-west-1', Status: 'Failed' }] });
    const ctx = stepContext({ config, clock, description: { ReplicationStatus: [{ Region: 'eu-west-1', Status: 'Failed' }] } });
    // Act
    const err = (await promotionGate(ctx, pending).catch((e: unknown) => e)) as ConvergencePendingError;
    // Assess
    expect(err).toBeInstanceOf(ConvergencePendingError);
    expect(err.replicasNotInSync).toEqual(['eu-west-1 (Failed)']);
    expect(err.message).toBe('Promotion held: replication not InSync in eu-west-1 (Failed). Waited 0 s (bound 0 s); the alarm re-drive or the next retry completes it');
  });

  it('promotes without waiting under the force-finish override and logs loudly what it overrides', async () => {
    // Prepare
    const config = gateConfig(registry([['api', 'live']]));
    report(model, 'api', 4, T0);
    // Act
    await promotionGate(stepContext({ config, clock, overrides: { forceFinish: true } }), pending);
    // Assess
    expect(clock.slept).toEqual([]);
    const line = capturedOutput().find((l) => l.includes('PROMOTION GATE OVERRIDDEN'));
    const warning = JSON.parse(line ?? '{}') as { level?: string; notConverged?: unknown };
    expect(warning.level).toBe('WARN');
    expect(warning.notConverged).toEqual([{ consumer: 'api', reason: 'stale', lastGeneration: 4 }]);
  });

  it('reads 100 live consumers with a single GetMetricData call per evaluation', async () => {
    // Prepare
    const consumers = registry(Array.from({ length: 100 }, (_, i) => [`svc-${i}`, 'live'] as [string, 'live']));
    for (const c of consumers) report(model, c.name, 5, T0);
    // Act
    await promotionGate(stepContext({ config: gateConfig(consumers), clock }), pending);
    // Assess
    expect(cw).toHaveReceivedCommandTimes(GetMetricDataCommand, 1);
    expect(model.stats.queriesRequested).toBe(100);
  });
});
