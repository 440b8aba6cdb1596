import { PutMetricDataCommand, CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { StatusReport } from '../../cli/commands/status';
import { CloudWatchModel } from '../../cli/local/cloudwatch-model';
import { installCloudWatchModel } from '../../cli/local/install';
import { installLambdaModel, LambdaModel } from '../../cli/local/lambda-model';
import { TAG_FORCE_FINISH } from '../../lambda/rotation';
import { DIMENSION_CONSUMER, DIMENSION_SECRET, LOADED_GENERATION, secretNameDimension } from '../../lambda/shared/metric-contract';
import { capturedOutput, expectNoSecretsInOutput } from '../support/captured-output';
import { cli, connectAs } from '../support/probes';
import { AWSPENDING, createRotationHarness, type RotationHarness } from '../support/rotation-harness';

const cwModel = new CloudWatchModel();
const cwStub = installCloudWatchModel(cwModel);
const lambda = new LambdaModel();
const lambdaStub = installLambdaModel(lambda);
const cw = new CloudWatchClient({});
const harnesses: RotationHarness[] = [];

afterAll(() => {
  cwStub.restore();
  lambdaStub.restore();
  expectNoSecretsInOutput(harnesses.flatMap((h) => h.passwords()));
});

/** A rotation function registered with the local Lambda model, with a consumer registry. */
async function setup(prefix: string, consumers: object[], env: Record<string, string> = {}): Promise<RotationHarness> {
  const fullEnv = { CONVERGE_CONSUMERS: JSON.stringify(consumers), CONVERGE_GATE_MAX_WAIT_SECONDS: '0', ...env };
  const h = await createRotationHarness({ prefix, env: fullEnv });
  lambda.register(h.lambdaArn, (e) => h.handler(e as never), fullEnv);
  harnesses.push(h);
  return h;
}

async function report(h: RotationHarness, consumer: string, generation: number, ageSeconds: number): Promise<void> {
  await cw.send(
    new PutMetricDataCommand({
      Namespace: 'SecretRotation',
      MetricData: [
        {
          MetricName: LOADED_GENERATION,
          Dimensions: [
            { Name: DIMENSION_SECRET, Value: secretNameDimension(h.model.describeSecret({ SecretId: h.secretArn }).Name!) },
            { Name: DIMENSION_CONSUMER, Value: consumer },
          ],
          Value: generation,
          Timestamp: new Date(Date.now() - ageSeconds * 1000),
        },
      ],
    }),
  );
}

describe('CLI: converge status', () => {
  it('names a paused consumer as stale/silent and shows what the gates would decide', async () => {
    // Prepare: two consumers; both reported generation 0; after one rotation only "api" moved,
    // "worker" was paused 20 minutes ago and has been silent since.
    const h = await setup('clis', [
      { name: 'api', mode: 'live', maxStalenessSeconds: 300 },
      { name: 'worker', mode: 'restart-only', maxStalenessSeconds: 300 },
    ]);
    await report(h, 'api', 0, 1200);
    await report(h, 'worker', 0, 1200);
    await report(h, 'api', 1, 30);
    await h.model.rotateSecret({ SecretId: h.secretArn });
    await h.model.rotationSettled(h.secretArn);
    // Act
    const text = await cli('status', h.secretArn);
    const json = await cli('status', h.secretArn, '--json');
    // Assess
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/worker\s+restart-only\s+0\s+\d+s\s+SILENT/);
    expect(text.out).toMatch(/api\s+live\s+1\s+\d+s\s+OK/);
    expect(text.out).toMatch(/revocation\s+HOLD \(needs generation 1\): worker: silent/);
    const r = JSON.parse(json.out) as StatusReport;
    expect(r.consumers.map((c) => [c.name, c.state])).toEqual([
      ['api', 'ok'],
      ['worker', 'silent'],
    ]);
    expect(r.registry.counts).toEqual({ live: 1, scheduled: 0, 'restart-only': 1 });
    expect(r.gates.revocation.verdict).toBe('hold');
    expect(r.gates.promotion.verdict).toBe('not-applicable');
    expect(JSON.stringify(r)).not.toContain(h.current().password);
  });

  it('shows a waiting rotation held by the promotion gate, naming the stale live consumer', async () => {
    // Prepare
    const h = await setup('clip', [{ name: 'api', mode: 'live', maxStalenessSeconds: 300 }]);
    await report(h, 'api', 0, 20);
    const token = h.begin();
    await h.step('createSecret', token);
    // Act
    const r = JSON.parse((await cli('status', h.secretArn, '--json')).out) as StatusReport;
    // Assess
    expect(r.rotationInProgress).toBe(true);
    expect(r.gates.promotion).toMatchObject({ verdict: 'hold', requiredGeneration: 1, reasons: ['api: stale (reports generation 0)'] });
  });

  it('--sessions counts the open sessions of the previous user as the master, and the revocation gate holds on them', async () => {
    // Prepare: rotation 1; a script still holds a session as the previous user
    const h = await setup('clises', []);
    await h.rotate();
    const previous = h.secret('AWSPREVIOUS');
    const script = await connectAs(h, previous, 'old-script');
    try {
      // Act
      const r = await cli('status', h.secretArn, '--sessions', '--ca-bundle', h.config.caBundlePath!, '--json');
      // Assess
      expect(r.code).toBe(0);
      const report = JSON.parse(r.out) as StatusReport;
      expect(report.oldUser).toEqual({ username: previous.username, sessions: 1 });
      expect(report.gates.revocation.verdict).toBe('hold');
    } finally {
      await script.end();
    }
  });

  it('reports a missing secret in one line, without a stack trace', async () => {
    const r = await cli('status', 'no-such-secret');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^converge: not found: /);
    expect(r.err.split('\n')).toHaveLength(1);
  });

  it('rejects an invalid --consumers registry with the received value', async () => {
    const h = await setup('clir', []);
    const r = await cli('status', h.secretArn, '--consumers', '[{"name":"a","mode":"sometimes"}]');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/mode must be one of live, scheduled, restart-only, got "sometimes"/);
  });
});

describe('CLI: converge abort and finish --force', () => {
  it('abort removes a stuck AWSPENDING and the secret rotates again, skipping the burnt generation', async () => {
    // Prepare: a rotation stuck after createSecret
    const h = await setup('clia', []);
    const stuck = h.begin();
    await h.step('createSecret', stuck);
    // Act
    const aborted = await cli('abort', h.secretArn);
    // Assess
    expect(aborted.code).toBe(0);
    expect(aborted.out).toMatch(/no longer AWSPENDING \(generation 1 stays unused\)/);
    expect(h.model.snapshot(h.secretArn)[stuck].stages).toEqual([]);
    await h.rotate();
    expect(h.current().generation).toBe(2);
    expect((await cli('abort', h.secretArn)).out).toMatch(/nothing to abort/);
  });

  it('finish --force promotes a rotation held by the gate, logs it as FORCED, and clears the override', async () => {
    // Prepare: a live consumer that never reports holds finishSecret
    const h = await setup('clif', [{ name: 'ghost', mode: 'live', maxStalenessSeconds: 60 }]);
    await expect(h.rotate()).rejects.toThrow(/ghost \(silent/);
    expect((await cli('finish', h.secretArn)).err).toMatch(/pass --force/);
    // Act
    const r = await cli('finish', h.secretArn, '--force');
    // Assess
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/is AWSCURRENT \(FORCED\); version \S+ is AWSPREVIOUS; tag converge:force-finish is gone \(the function removed it\)$/);
    expect(h.current().generation).toBe(1);
    expect(capturedOutput().some((l) => /FORCED by operator override/.test(l))).toBe(true);
    const tags = h.model.describeSecret({ SecretId: h.secretArn }).Tags ?? [];
    expect(tags.find((t) => t.Key === TAG_FORCE_FINISH)).toBeUndefined();
    expect(Object.values(h.model.snapshot(h.secretArn)).filter((v) => v.stages.includes(AWSPENDING) && !v.stages.includes('AWSCURRENT'))).toEqual([]);
  });

  it('rotate --emergency tags the secret and starts a rotation', async () => {
    const h = await setup('clie', []);
    const r = await cli('rotate', h.secretArn, '--emergency', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ emergency: true });
    await h.model.rotationSettled(h.secretArn);
    expect(h.current().generation).toBe(1);
    expect(capturedOutput().some((l) => /EMERGENCY rotation requested/.test(l))).toBe(true);
  });
});
