import { DescribeSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import type { RotationEvent } from '../../../lambda/rotation/context';
import { redrive } from '../../../lambda/rotation/redrive';
import { AwsCallError, ConvergencePendingError, PrivilegeMismatchError } from '../../../lambda/shared/errors';
import { FakeClock, SECRET_ARN, SECRET_NAME, gateConfig, stepContext } from './gate-fixtures';

describe('Function: redrive', () => {
  const sm = mockClient(SecretsManagerClient);
  const deps = stepContext({ config: gateConfig([]), clock: new FakeClock() });

  beforeEach(() => sm.reset());
  afterAll(() => sm.restore());

  function stages(map: Record<string, string[]>) {
    sm.on(DescribeSecretCommand).resolves({ $metadata: {}, ARN: SECRET_ARN, Name: SECRET_NAME, VersionIdsToStages: map });
  }

  it('re-tests and finishes the version that carries AWSPENDING but not AWSCURRENT', async () => {
    // Prepare
    stages({ old: ['AWSPREVIOUS'], cur: ['AWSCURRENT'], waiting: ['AWSPENDING'] });
    const steps: RotationEvent[] = [];
    // Act
    const outcome = await redrive(deps, SECRET_NAME, async (e) => {
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
    ['a completed rotation (AWSPENDING left on AWSCURRENT)', { cur: ['AWSCURRENT', 'AWSPENDING'], old: ['AWSPREVIOUS'] }],
    ['no rotation at all', { cur: ['AWSCURRENT'] }],
  ])('does nothing for %s', async (_name, map) => {
    // Prepare
    stages(map);
    const steps: RotationEvent[] = [];
    // Act
    const outcome = await redrive(deps, SECRET_ARN, async (e) => {
      steps.push(e);
    });
    // Assess
    expect(outcome).toBe('nothing-pending');
    expect(steps).toEqual([]);
  });

  it('does not run finishSecret when the waiting credential fails testSecret', async () => {
    // Prepare
    stages({ cur: ['AWSCURRENT'], waiting: ['AWSPENDING'] });
    const steps: string[] = [];
    // Act
    const err = await redrive(deps, SECRET_ARN, async (e) => {
      steps.push(e.Step);
      if (e.Step === 'testSecret') throw new PrivilegeMismatchError('pending role lacks membership');
    }).catch((e: unknown) => e);
    // Assess
    expect(err).toBeInstanceOf(PrivilegeMismatchError);
    expect(steps).toEqual(['testSecret']);
  });

  it('reports held (not an error) when the gate still holds, so only the alarm loop retries', async () => {
    // Prepare
    stages({ cur: ['AWSCURRENT'], waiting: ['AWSPENDING'] });
    // Act
    const outcome = await redrive(deps, SECRET_ARN, async (e) => {
      if (e.Step === 'finishSecret') throw new ConvergencePendingError(7, [{ consumer: 'api', reason: 'stale', lastGeneration: 6 }]);
    });
    // Assess
    expect(outcome).toBe('held');
  });

  it('rethrows any other finishSecret failure', async () => {
    // Prepare
    stages({ cur: ['AWSCURRENT'], waiting: ['AWSPENDING'] });
    // Act
    const act = redrive(deps, SECRET_ARN, async (e) => {
      if (e.Step === 'finishSecret') throw new AwsCallError('UpdateSecretVersionStage', 'UpdateSecretVersionStage failed: InternalServiceError');
    });
    // Assess
    await expect(act).rejects.toBeInstanceOf(AwsCallError);
  });
});
