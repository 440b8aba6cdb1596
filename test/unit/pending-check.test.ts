import { Logger } from '@aws-lambda-powertools/logger';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CloudWatchModel } from '../../cli/local/cloudwatch-model';
import { installSecretsManagerModel } from '../../cli/local/install';
import { SecretsManagerModel } from '../../cli/local/secrets-manager-model';
import { createRotationHandler, loadConfig } from '../../lambda/rotation';
import { PENDING_AGE_SECONDS } from '../../lambda/shared/metric-contract';

const model = new SecretsManagerModel({ invokeRotation: false });
const sm = installSecretsManagerModel(model);

function setup(offsetMs: number) {
  const { ARN } = model.createSecret({
    Name: `app-${Math.random().toString(36).slice(2, 8)}`,
    SecretString: '{}',
  });
  const cw = new CloudWatchModel({ now: () => Date.now() + offsetMs });
  const handler = createRotationHandler({
    config: loadConfig({}),
    secretsManager: new SecretsManagerClient({}),
    clock: { now: () => Date.now() + offsetMs, sleep: async () => undefined },
    logger: new Logger({ logLevel: 'SILENT' }),
    writeMetric: (line) => void cw.putEmbeddedMetricLine(line),
  });
  const age = () =>
    cw.cells('SecretRotation', PENDING_AGE_SECONDS, [
      { Name: 'SecretName', Value: model.describeSecret({ SecretId: ARN! }).Name! },
    ]);
  return { arn: ARN!, cw, handler, age };
}

describe('the pending check', () => {
  test('publishes 0 when nothing waits, and the age of the waiting version when one does', async () => {
    // GIVEN
    const { arn, handler, age } = setup(90 * 60_000);

    // WHEN / THEN nothing waits
    expect(await handler({ converge: 'check', SecretId: arn })).toEqual({ pendingAgeSeconds: 0 });
    expect(age().map((c) => c.max)).toEqual([0]);

    // WHEN a rotation waits (created "90 minutes ago" for the function's clock)
    const token = model.stagePendingPlaceholder(arn);
    const result = (await handler({ converge: 'check', SecretId: arn })) as {
      pendingAgeSeconds: number;
    };

    // THEN
    expect(result).toEqual({ pendingAgeSeconds: expect.any(Number), pendingVersionId: token });
    expect(result.pendingAgeSeconds).toBeGreaterThanOrEqual(90 * 60 - 5);
    expect(result.pendingAgeSeconds).toBeLessThanOrEqual(90 * 60 + 5);
    expect(Math.max(...age().map((c) => c.max))).toBe(result.pendingAgeSeconds);
  });

  test('reads version metadata only: never a secret value, never a write', async () => {
    // GIVEN
    const { arn, handler } = setup(0);
    model.stagePendingPlaceholder(arn);
    sm.resetHistory();

    // WHEN
    await handler({ converge: 'check', SecretId: arn });

    // THEN
    expect(sm.calls().map((c) => c.args[0].constructor.name)).toEqual([
      'ListSecretVersionIdsCommand',
    ]);
  });

  test('a Secrets Manager failure fails the invocation with a typed error naming the call', async () => {
    const { handler } = setup(0);
    await expect(handler({ converge: 'check', SecretId: 'no-such-secret' })).rejects.toMatchObject({
      name: 'AwsCallError',
      message: expect.stringMatching(/ListSecretVersionIds failed: ResourceNotFoundException/),
    });
  });

  test.each([
    [{ converge: 'check' }, /converge check event field "SecretId" must be a non-empty string/],
    [{ converge: 'check', SecretId: '' }, /"SecretId" must be a non-empty string/],
    [{ converge: 'check', SecretId: 42 }, /"SecretId" must be a non-empty string/],
    [
      { converge: 'purge', SecretId: 'x' },
      /field "converge" must be one of redrive, check, got "purge"/,
    ],
    [{ converge: null }, /field "converge" must be one of redrive, check, got null/],
  ])(
    'a malformed converge event %j is refused with a typed error, and nothing is read or written',
    async (event, message) => {
      // GIVEN
      const { handler } = setup(0);
      sm.resetHistory();

      // WHEN / THEN
      await expect(handler(event as never)).rejects.toMatchObject({
        name: 'RotationStateError',
        message: expect.stringMatching(message),
      });
      expect(sm.calls()).toHaveLength(0);
    },
  );
});
