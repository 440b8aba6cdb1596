import { GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { CloudWatchModel } from '../../../cli/local/cloudwatch-model';
import { installCloudWatchModel, type CloudWatchStub } from '../../../cli/local/install';
import type { RotationEvent } from '../../../lambda/rotation/context';
import { TAG_FORCE_FINISH } from '../../../lambda/rotation/overrides';
import { redrive } from '../../../lambda/rotation/redrive';
import {
  AwsCallError,
  ConvergencePendingError,
  PrivilegeMismatchError,
  RotationAbortedError,
} from '../../../lambda/shared/errors';
import { PENDING_GENERATION } from '../../../lambda/shared/metric-contract';
import {
  emfRecords,
  FakeClock,
  gateConfig,
  registry,
  report,
  SECRET_ARN,
  SECRET_NAME,
  stepContext,
} from './gate-fixtures';

const PENDING = JSON.stringify({
  engine: 'postgres',
  host: 'db.internal',
  port: 5432,
  username: 'app_clone',
  password: 'not-a-real-password-123',
  dbname: 'orders',
  masterarn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf',
  generation: 7,
});

describe('Function: redrive', () => {
  const sm = mockClient(SecretsManagerClient);
  let cw: CloudWatchStub;
  let model: CloudWatchModel;
  let clock: FakeClock;

  beforeAll(() => {
    cw = installCloudWatchModel(new CloudWatchModel());
  });

  beforeEach(() => {
    sm.reset();
    clock = new FakeClock();
    model = new CloudWatchModel({ now: () => clock.now() });
    cw.reset();
    cw.on(GetMetricDataCommand).callsFake(async (i) => model.getMetricData(i));
    sm.on(GetSecretValueCommand).resolves({ $metadata: {}, SecretString: PENDING });
  });

  afterAll(() => {
    sm.restore();
    cw.restore();
  });

  function stages(map: Record<string, string[]>, tags: { Key: string; Value: string }[] = []) {
    sm.on(DescribeSecretCommand).resolves({
      $metadata: {},
      ARN: SECRET_ARN,
      Name: SECRET_NAME,
      RotationEnabled: true,
      VersionIdsToStages: map,
      Tags: tags,
    });
  }

  function deps(consumers = registry([]), metrics?: string[]) {
    return stepContext({ config: gateConfig(consumers), clock, metrics });
  }

  it('re-tests and finishes the version that carries AWSPENDING but not AWSCURRENT when nothing holds it', async () => {
    // Prepare
    stages({ old: ['AWSPREVIOUS'], cur: ['AWSCURRENT'], waiting: ['AWSPENDING'] });
    const steps: RotationEvent[] = [];
    // Act
    const outcome = await redrive(deps(), SECRET_NAME, async (e) => {
      steps.push(e);
    });
    // Assess
    expect(outcome).toBe('promoted');
    expect(steps).toEqual([
      { Step: 'testSecret', SecretId: SECRET_ARN, ClientRequestToken: 'waiting' },
      { Step: 'finishSecret', SecretId: SECRET_ARN, ClientRequestToken: 'waiting' },
    ]);
  });

  it.each([
    [
      'a completed rotation (AWSPENDING left on AWSCURRENT)',
      { cur: ['AWSCURRENT', 'AWSPENDING'], old: ['AWSPREVIOUS'] },
    ],
    ['no rotation at all', { cur: ['AWSCURRENT'] }],
  ])('does nothing for %s', async (_name, map) => {
    // Prepare
    stages(map);
    const steps: RotationEvent[] = [];
    // Act
    const outcome = await redrive(deps(), SECRET_ARN, async (e) => {
      steps.push(e);
    });
    // Assess
    expect(outcome).toBe('nothing-pending');
    expect(steps).toEqual([]);
  });

  it('acts only on consumer evidence: a lagging live consumer gives "held" at once, with no step run, no wait and no failure metric', async () => {
    // Prepare: the live consumer still reports generation 6; the waiting rotation is generation 7
    stages({ cur: ['AWSCURRENT'], waiting: ['AWSPENDING'] });
    report(model, 'api', 6, clock.now() - 10_000);
    const metrics: string[] = [];
    const steps: string[] = [];
    // Act
    const outcome = await redrive(
      deps(registry([['api', 'live']]), metrics),
      SECRET_ARN,
      async (e) => {
        steps.push(e.Step);
      },
    );
    // Assess
    expect(outcome).toBe('held');
    expect(steps).toEqual([]);
    expect(clock.slept).toEqual([]);
    expect(
      emfRecords(metrics).map((r) =>
        Object.keys(r).find((k) => k !== '_aws' && k !== 'SecretName'),
      ),
    ).toEqual([PENDING_GENERATION]);
  });

  it('skips the probe when a force-finish override is bound to the waiting token', async () => {
    // Prepare
    stages({ cur: ['AWSCURRENT'], waiting: ['AWSPENDING'] }, [
      { Key: TAG_FORCE_FINISH, Value: 'waiting' },
    ]);
    const steps: string[] = [];
    // Act
    const outcome = await redrive(deps(registry([['api', 'live']])), SECRET_ARN, async (e) => {
      steps.push(e.Step);
    });
    // Assess
    expect(outcome).toBe('promoted');
    expect(steps).toEqual(['testSecret', 'finishSecret']);
  });

  it('does not run finishSecret when the waiting credential fails testSecret', async () => {
    // Prepare
    stages({ cur: ['AWSCURRENT'], waiting: ['AWSPENDING'] });
    const steps: string[] = [];
    // Act
    const err = await redrive(deps(), SECRET_ARN, async (e) => {
      steps.push(e.Step);
      if (e.Step === 'testSecret')
        throw new PrivilegeMismatchError('pending role lacks membership');
    }).catch((e: unknown) => e);
    // Assess
    expect(err).toBeInstanceOf(PrivilegeMismatchError);
    expect(steps).toEqual(['testSecret']);
  });

  it('reports held (not an error) when the gate in finishSecret still holds', async () => {
    // Prepare
    stages({ cur: ['AWSCURRENT'], waiting: ['AWSPENDING'] });
    // Act
    const outcome = await redrive(deps(), SECRET_ARN, async (e) => {
      if (e.Step === 'finishSecret')
        throw new ConvergencePendingError(7, [
          { consumer: 'api', reason: 'stale', lastGeneration: 6 },
        ]);
    });
    // Assess
    expect(outcome).toBe('held');
  });

  it('reports aborted (not an error) when the rotation was aborted while finishSecret waited', async () => {
    // Prepare
    stages({ cur: ['AWSCURRENT'], waiting: ['AWSPENDING'] });
    // Act
    const outcome = await redrive(deps(), SECRET_ARN, async (e) => {
      if (e.Step === 'finishSecret')
        throw new RotationAbortedError('version waiting lost AWSPENDING');
    });
    // Assess
    expect(outcome).toBe('aborted');
  });

  it('rethrows any other finishSecret failure', async () => {
    // Prepare
    stages({ cur: ['AWSCURRENT'], waiting: ['AWSPENDING'] });
    // Act
    const act = redrive(deps(), SECRET_ARN, async (e) => {
      if (e.Step === 'finishSecret')
        throw new AwsCallError(
          'UpdateSecretVersionStage',
          'UpdateSecretVersionStage failed: InternalServiceError',
        );
    });
    // Assess
    await expect(act).rejects.toBeInstanceOf(AwsCallError);
  });
});
