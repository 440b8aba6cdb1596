import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  InternalServiceError,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { installSecretsManagerModel, type SecretsManagerStub } from '../../../cli/local/install';
import { SecretsManagerModel } from '../../../cli/local/secrets-manager-model';
import { RefreshingSecret, refreshingSnapshot } from '../../../consumer/refreshing-secret';
import { SecretsManagerSource } from '../../../consumer/secrets-manager-source';
import { AwsCallError, InvalidSecretError, SecretUnavailableError } from '../../../lambda/shared/errors';
import { expectNoSecretsInOutput } from '../../support/captured-output';
import { secretJson } from './secret-fixtures';

const G1 = { username: 'orders', password: 'pw-generation-one-7f3a', generation: 1 };
const G2 = { username: 'orders_clone', password: 'pw-generation-two-91bc', generation: 2 };

describe('Class: SecretsManagerSource', () => {
  let model: SecretsManagerModel;
  let sm: SecretsManagerStub;
  let arn: string;
  let firstVersion: string;

  beforeEach(() => {
    model = new SecretsManagerModel();
    sm = installSecretsManagerModel(model);
    const created = model.createSecret({ Name: 'orders-db', SecretString: secretJson(G1) });
    arn = created.ARN!;
    firstVersion = created.VersionId!;
  });

  afterEach(() => {
    sm.restore();
  });

  /** Writes G2 as AWSPENDING (what createSecret does); returns its version id. */
  function stagePending(): string {
    return model.putSecretValue({
      SecretId: arn,
      SecretString: secretJson(G2),
      VersionStages: ['AWSPENDING'],
      ClientRequestToken: 'token-2',
    }).VersionId!;
  }

  describe('Method: fetch', () => {
    it('describes the secret, then reads AWSCURRENT by VersionId', async () => {
      // Prepare
      const source = new SecretsManagerSource({ secretId: arn });
      // Act
      const snapshot = await source.fetch();
      // Assess
      expect(snapshot.current).toMatchObject({ username: 'orders', generation: 1, versionId: firstVersion });
      expect(snapshot.pending).toBeUndefined();
      expect(sm).toHaveReceivedCommandWith(DescribeSecretCommand, { SecretId: arn });
      expect(sm).toHaveReceivedCommandWith(GetSecretValueCommand, { SecretId: arn, VersionId: firstVersion });
      expect(source.secretName).toBe('orders-db');
    });

    it('reads no secret value again while no version changed', async () => {
      // Prepare
      const source = new SecretsManagerSource({ secretId: 'orders-db' });
      const first = await source.fetch();
      sm.resetHistory();
      // Act
      const second = await source.fetch();
      // Assess
      expect(second.current.versionId).toBe(first.current.versionId);
      expect(sm).toHaveReceivedCommandTimes(DescribeSecretCommand, 1);
      expect(sm).toHaveReceivedCommandTimes(GetSecretValueCommand, 0);
    });

    it('reads only the new version after a rotation', async () => {
      // Prepare
      const source = new SecretsManagerSource({ secretId: 'orders-db' });
      await source.fetch();
      const pendingId = stagePending();
      model.updateSecretVersionStage({
        SecretId: arn,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: pendingId,
        RemoveFromVersionId: firstVersion,
      });
      sm.resetHistory();
      // Act
      const snapshot = await source.fetch();
      // Assess
      expect(snapshot.current).toMatchObject({ username: 'orders_clone', generation: 2, versionId: pendingId });
      expect(sm).toHaveReceivedCommandTimes(GetSecretValueCommand, 1);
      expect(sm).toHaveReceivedCommandWith(GetSecretValueCommand, { VersionId: pendingId });
    });

    it('includes AWSPENDING for live consumers while a rotation is in progress', async () => {
      // Prepare
      const pendingId = stagePending();
      const source = new SecretsManagerSource({ secretId: arn, includePending: true });
      // Act
      const snapshot = await source.fetch();
      // Assess
      expect(snapshot.current.versionId).toBe(firstVersion);
      expect(snapshot.pending).toMatchObject({ username: 'orders_clone', generation: 2, versionId: pendingId });
    });

    it('does not read AWSPENDING unless asked to', async () => {
      // Prepare
      const pendingId = stagePending();
      const source = new SecretsManagerSource({ secretId: arn });
      // Act
      const snapshot = await source.fetch();
      // Assess
      expect(snapshot.pending).toBeUndefined();
      expect(sm).not.toHaveReceivedCommandWith(GetSecretValueCommand, { VersionId: pendingId });
    });

    it('treats AWSPENDING left on the AWSCURRENT version after finishSecret as no rotation in progress', async () => {
      // Prepare
      const pendingId = stagePending();
      model.updateSecretVersionStage({
        SecretId: arn,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: pendingId,
        RemoveFromVersionId: firstVersion,
      });
      const source = new SecretsManagerSource({ secretId: arn, includePending: true });
      // Act
      const snapshot = await source.fetch();
      // Assess
      expect(model.snapshot(arn)[pendingId].stages).toEqual(['AWSCURRENT', 'AWSPENDING']);
      expect(snapshot.current.versionId).toBe(pendingId);
      expect(snapshot.pending).toBeUndefined();
    });

    it('treats a pending version that has no value yet (before createSecret) as no rotation in progress', async () => {
      // Prepare: RotateSecret creates the AWSPENDING version without a value
      model.configureRotation(arn, 'arn:aws:lambda:us-east-1:123456789012:function:rotate');
      model.registerRotationFunction('arn:aws:lambda:us-east-1:123456789012:function:rotate', () => new Promise(() => undefined));
      model.rotateSecret({ SecretId: arn, ClientRequestToken: 'token-empty' });
      const source = new SecretsManagerSource({ secretId: arn, includePending: true });
      // Act
      const snapshot = await source.fetch();
      // Assess
      expect(snapshot.current.versionId).toBe(firstVersion);
      expect(snapshot.pending).toBeUndefined();
    });

    it('types a Secrets Manager failure as AwsCallError naming the operation', async () => {
      // Prepare
      sm.on(DescribeSecretCommand).rejects(new InternalServiceError({ message: 'We encountered an internal error', $metadata: { httpStatusCode: 500 } }));
      const source = new SecretsManagerSource({ secretId: arn });
      // Act
      const err = await source.fetch().catch((e: unknown) => e);
      // Assess
      expect(err).toBeInstanceOf(AwsCallError);
      expect((err as AwsCallError).operation).toBe('DescribeSecret');
      expect((err as Error).message).toBe('DescribeSecret for secret "orders-db" failed: InternalServiceError (HTTP 500)');
    });

    it('rejects an invalid secret naming the field, never its value', async () => {
      // Prepare
      const broken = JSON.stringify({ ...JSON.parse(secretJson(G2)), port: 'not-a-port' });
      model.putSecretValue({ SecretId: arn, SecretString: broken });
      const source = new SecretsManagerSource({ secretId: arn });
      // Act
      const err = await source.fetch().catch((e: unknown) => e);
      // Assess
      expect(err).toBeInstanceOf(InvalidSecretError);
      expect((err as InvalidSecretError).field).toBe('port');
      expectNoSecretsInOutput([G2.password], [err]);
    });

    it('refuses a secret without an AWSCURRENT version', async () => {
      // Prepare
      sm.on(DescribeSecretCommand).resolves({ Name: 'orders-db', VersionIdsToStages: { v9: ['AWSPREVIOUS'] } });
      const source = new SecretsManagerSource({ secretId: 'orders-db' });
      // Act / Assess
      await expect(source.fetch()).rejects.toThrow(SecretUnavailableError);
    });
  });

  describe('Integration with RefreshingSecret', () => {
    it('makes 1,000 concurrent get() calls at TTL expiry cause exactly one DescribeSecret and one GetSecretValue', async () => {
      // Prepare
      let now = 0;
      const secret = refreshingSnapshot(new SecretsManagerSource({ secretId: arn }), {
        ttlMs: 60_000,
        jitter: 0,
        clock: () => now,
        refreshInBackground: false,
      });
      await secret.get();
      const rotated = model.putSecretValue({ SecretId: arn, SecretString: secretJson(G2) }).VersionId!;
      now = 60_000;
      sm.resetHistory();
      // Act
      const snapshots = await Promise.all(Array.from({ length: 1_000 }, () => secret.get()));
      // Assess
      expect(sm).toHaveReceivedCommandTimes(DescribeSecretCommand, 1);
      expect(sm).toHaveReceivedCommandTimes(GetSecretValueCommand, 1);
      expect(new Set(snapshots.map((s) => s.current.versionId))).toEqual(new Set([rotated]));
      expect(secret).toBeInstanceOf(RefreshingSecret);
    });
  });
});

describe('Class: SecretsManagerSource (client injection)', () => {
  it('sends through the injected client and not the process default', async () => {
    // Prepare: only this instance is mocked; any other client would hit the closed test endpoint
    const client = new SecretsManagerClient({});
    const stub = mockClient(client);
    stub.on(DescribeSecretCommand).resolves({ Name: 'orders-db', VersionIdsToStages: { v1: ['AWSCURRENT'] } });
    stub.on(GetSecretValueCommand).resolves({ VersionId: 'v1', SecretString: secretJson(G1) });
    const source = new SecretsManagerSource({ secretId: 'orders-db', awsSdkV3Client: client });
    // Act
    const snapshot = await source.fetch();
    // Assess
    expect(snapshot.current.username).toBe('orders');
    expect(stub).toHaveReceivedCommandWith(GetSecretValueCommand, { VersionId: 'v1' });
    stub.restore();
  });

  it('refuses awsSdkV3Client and clientConfig together', () => {
    // Prepare
    const options = { secretId: 'orders-db', awsSdkV3Client: new SecretsManagerClient({}), clientConfig: {} };
    // Act / Assess
    expect(() => new SecretsManagerSource(options as never)).toThrow(/awsSdkV3Client or clientConfig, not both/);
  });
});
