import {
  CancelRotateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  RotateSecretCommand,
  SecretsManagerClient,
  TagResourceCommand,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { installSecretsManagerModel } from '../../cli/local/install';
import { SecretsManagerModel, type RotationEvent } from '../../cli/local/secrets-manager-model';

describe('Class: SecretsManagerModel (documented Secrets Manager behaviour behind the real SDK client)', () => {
  const model = new SecretsManagerModel();
  const stub = installSecretsManagerModel(model);
  const client = new SecretsManagerClient({});
  afterAll(() => stub.restore());

  it('moving AWSCURRENT labels the old version AWSPREVIOUS', async () => {
    // Prepare
    const { ARN, VersionId: v1 } = model.createSecret({ Name: `s-${Date.now()}`, SecretString: '{"v":1}' });
    await client.send(new PutSecretValueCommand({ SecretId: ARN, ClientRequestToken: 'v2-token-000000000000000000000000', SecretString: '{"v":2}', VersionStages: ['AWSPENDING'] }));
    // Act
    await client.send(new UpdateSecretVersionStageCommand({ SecretId: ARN, VersionStage: 'AWSCURRENT', MoveToVersionId: 'v2-token-000000000000000000000000', RemoveFromVersionId: v1 }));
    // Assess
    const d = await client.send(new DescribeSecretCommand({ SecretId: ARN }));
    expect(d.VersionIdsToStages).toEqual({ [v1!]: ['AWSPREVIOUS'], 'v2-token-000000000000000000000000': ['AWSPENDING', 'AWSCURRENT'] });
  });

  it('moving a label requires naming the version that holds it', async () => {
    const { ARN } = model.createSecret({ Name: `t-${Date.now()}`, SecretString: '{}' });
    await client.send(new PutSecretValueCommand({ SecretId: ARN, ClientRequestToken: 'tok-b', SecretString: '{"b":1}', VersionStages: ['AWSPENDING'] }));
    await expect(
      client.send(new UpdateSecretVersionStageCommand({ SecretId: ARN, VersionStage: 'AWSCURRENT', MoveToVersionId: 'tok-b' })),
    ).rejects.toThrow(/you must explicitly reference that version in RemoveFromVersionId/);
  });

  it('PutSecretValue is idempotent per token and refuses a different value for the same token', async () => {
    const { ARN } = model.createSecret({ Name: `u-${Date.now()}`, SecretString: '{}' });
    const put = (value: string) =>
      client.send(new PutSecretValueCommand({ SecretId: ARN, ClientRequestToken: 'same-token', SecretString: value, VersionStages: ['AWSPENDING'] }));
    await put('{"a":1}');
    await expect(put('{"a":1}')).resolves.toMatchObject({ VersionId: 'same-token' });
    await expect(put('{"a":2}')).rejects.toBeInstanceOf(ResourceExistsException);
  });

  it('GetSecretValue of a version without a value, or with a stage it lacks, is ResourceNotFoundException', async () => {
    const { ARN } = model.createSecret({ Name: `w-${Date.now()}`, SecretString: '{}' });
    const token = model.stagePendingPlaceholder(ARN!);
    await expect(client.send(new GetSecretValueCommand({ SecretId: ARN, VersionId: token, VersionStage: 'AWSPENDING' }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
    await expect(client.send(new GetSecretValueCommand({ SecretId: 'no-such-secret' }))).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it('RotateSecret stages an empty AWSPENDING version, invokes the four steps, and refuses while one is incomplete', async () => {
    // Prepare
    const { ARN } = model.createSecret({ Name: `r-${Date.now()}`, SecretString: '{}' });
    const seen: RotationEvent[] = [];
    model.registerRotationFunction('arn:fn', async (e) => {
      seen.push(e);
      if (e.Step === 'createSecret') {
        const d = model.describeSecret({ SecretId: ARN });
        expect(d.VersionIdsToStages?.[e.ClientRequestToken]).toEqual(['AWSPENDING']);
        throw new Error('stop after createSecret');
      }
    });
    // Act
    const out = await client.send(new RotateSecretCommand({ SecretId: ARN, RotationLambdaARN: 'arn:fn' }));
    const record = await model.rotationSettled(ARN!);
    // Assess
    expect(seen.map((e) => e.Step)).toEqual(['createSecret']);
    expect(record?.error?.message).toBe('stop after createSecret');
    expect(out.VersionId).toBe(seen[0].ClientRequestToken);
    await expect(client.send(new RotateSecretCommand({ SecretId: ARN }))).rejects.toThrow(/previous rotation isn’t complete/);
  });

  it('CancelRotateSecret turns automatic rotation off, stops the rotation in progress, leaves its labels and names its version; RotateSecret turns rotation back on', async () => {
    // Prepare: a rotation whose createSecret is still running when the operator cancels
    const { ARN } = model.createSecret({ Name: `c-${Date.now()}`, SecretString: '{}' });
    const steps: string[] = [];
    let release!: () => void;
    const createSecretRunning = new Promise<void>((started) => {
      model.registerRotationFunction('arn:fn-cancel', async (e) => {
        steps.push(e.Step);
        if (e.Step === 'createSecret') {
          started();
          await new Promise<void>((r) => (release = r));
        }
      });
    });
    const { VersionId: token } = await client.send(new RotateSecretCommand({ SecretId: ARN, RotationLambdaARN: 'arn:fn-cancel' }));
    await createSecretRunning;
    expect((await client.send(new DescribeSecretCommand({ SecretId: ARN }))).RotationEnabled).toBe(true);
    // Act
    const cancelled = await client.send(new CancelRotateSecretCommand({ SecretId: ARN }));
    release();
    const record = await model.rotationSettled(ARN!);
    // Assess
    expect(cancelled.VersionId).toBe(token);
    expect(steps).toEqual(['createSecret']);
    expect(record).toMatchObject({ cancelled: true });
    expect(record?.error?.message).toMatch(/cancelled \(CancelRotateSecret\) before setSecret/);
    const paused = await client.send(new DescribeSecretCommand({ SecretId: ARN }));
    expect(paused.RotationEnabled).toBe(false);
    expect(paused.VersionIdsToStages?.[token!]).toEqual(['AWSPENDING']);
    // ...and RotateSecret (once the partial version lost AWSPENDING) turns rotation back on
    model.updateSecretVersionStage({ SecretId: ARN, VersionStage: 'AWSPENDING', RemoveFromVersionId: token });
    model.registerRotationFunction('arn:fn-cancel', async () => undefined);
    await client.send(new RotateSecretCommand({ SecretId: ARN }));
    await model.rotationSettled(ARN!);
    expect((await client.send(new DescribeSecretCommand({ SecretId: ARN }))).RotationEnabled).toBe(true);
  });

  it('GetRandomPassword honours length and excluded characters and includes each class', async () => {
    const pw = model.getRandomPassword({ PasswordLength: 40, ExcludeCharacters: '/@"\'\\' }).RandomPassword!;
    expect(pw).toHaveLength(40);
    expect(pw).not.toMatch(/[/@"'\\]/);
    expect(pw).toMatch(/[a-z]/);
    expect(pw).toMatch(/[A-Z]/);
    expect(pw).toMatch(/[0-9]/);
  });

  describe('TagResource validates tags like the service (ValidationException, nothing changed)', () => {
    const tagsOf = async (arn: string) =>
      Object.fromEntries(((await client.send(new DescribeSecretCommand({ SecretId: arn }))).Tags ?? []).map((t) => [t.Key, t.Value]));

    it.each([
      ['an empty key', { Key: '', Value: 'v' }],
      ['a 129-character key', { Key: 'k'.repeat(129), Value: 'v' }],
      ['a 257-character value', { Key: 'k', Value: 'v'.repeat(257) }],
      ['a value with a double quote', { Key: 'k', Value: 'say "hi"' }],
      ['a value with a newline', { Key: 'k', Value: 'a\nb' }],
      ['a key with a comma', { Key: 'a,b', Value: 'v' }],
    ])('refuses %s', async (_what, tag) => {
      // Prepare
      const { ARN } = model.createSecret({ Name: `tag-${Math.random()}`, SecretString: '{}', Tags: [{ Key: 'team', Value: 'payments' }] });
      // Act
      const act = client.send(new TagResourceCommand({ SecretId: ARN, Tags: [{ Key: 'ok', Value: 'fine' }, tag] }));
      // Assess
      await expect(act).rejects.toMatchObject({ name: 'ValidationException' });
      await expect(act).rejects.toThrow(/tags\.2\.member/);
      expect(await tagsOf(ARN!)).toEqual({ team: 'payments' });
    });

    it('accepts the limits exactly: 128-character key, 256-character value, letters of any script, spaces and _.:/=+-@', async () => {
      const { ARN } = model.createSecret({ Name: `tag-${Math.random()}`, SecretString: '{}' });
      const tags = [
        { Key: 'k'.repeat(128), Value: 'v'.repeat(256) },
        { Key: 'converge:version:abc', Value: 'Ünïcødé 用户 _.:/=+-@ 42' },
        { Key: 'empty', Value: '' },
      ];
      await client.send(new TagResourceCommand({ SecretId: ARN, Tags: tags }));
      expect(await tagsOf(ARN!)).toEqual(Object.fromEntries(tags.map((t) => [t.Key, t.Value])));
    });

    it('refuses a 51st tag but accepts overwriting one of 50', async () => {
      // Prepare
      const { ARN } = model.createSecret({ Name: `tag-${Math.random()}`, SecretString: '{}' });
      await client.send(new TagResourceCommand({ SecretId: ARN, Tags: Array.from({ length: 50 }, (_, i) => ({ Key: `k${i}`, Value: 'v' })) }));
      // Act + Assess
      await expect(client.send(new TagResourceCommand({ SecretId: ARN, Tags: [{ Key: 'k50', Value: 'v' }] }))).rejects.toMatchObject({
        name: 'ValidationException',
      });
      await client.send(new TagResourceCommand({ SecretId: ARN, Tags: [{ Key: 'k0', Value: 'changed' }] }));
      const tags = await tagsOf(ARN!);
      expect(Object.keys(tags)).toHaveLength(50);
      expect(tags.k0).toBe('changed');
    });
  });
});
