/**
 * Puts the in-memory AWS models behind the real SDK v3 clients with aws-sdk-client-mock, so code
 * under test (and the drill) constructs ordinary clients and sends ordinary commands.
 */
import {
  CloudWatchClient,
  type CloudWatchClientResolvedConfig,
  GetMetricDataCommand,
  ListMetricsCommand,
  PutMetricDataCommand,
  type ServiceInputTypes as CloudWatchServiceInputTypes,
  type ServiceOutputTypes as CloudWatchServiceOutputTypes,
} from '@aws-sdk/client-cloudwatch';
import {
  CancelRotateSecretCommand,
  CreateSecretCommand,
  DescribeSecretCommand,
  GetRandomPasswordCommand,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  RotateSecretCommand,
  SecretsManagerClient,
  type SecretsManagerClientResolvedConfig,
  type ServiceInputTypes,
  type ServiceOutputTypes,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateSecretCommand,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { mockClient, type AwsStub } from 'aws-sdk-client-mock';
import type { CloudWatchModel } from './cloudwatch-model';
import type { SecretsManagerModel } from './secrets-manager-model';

/** The aws-sdk-client-mock stub of SecretsManagerClient. */
export type SecretsManagerStub = AwsStub<
  ServiceInputTypes,
  ServiceOutputTypes,
  SecretsManagerClientResolvedConfig
>;

/**
 * Answers every SecretsManagerClient (this process, any instance) from `model`.
 * Returns the aws-sdk-client-mock stub so tests can assert received commands or inject failures.
 *
 * @example
 * const sm = installSecretsManagerModel(new SecretsManagerModel());
 * expect(sm).toHaveReceivedCommand(PutSecretValueCommand);
 */
export function installSecretsManagerModel(model: SecretsManagerModel) {
  const stub = mockClient(SecretsManagerClient);
  wireSecretsManager(stub, model);
  return stub;
}

/**
 * (Re)connects a Secrets Manager stub to the model, e.g. after `stub.reset()` or after a test
 * replaced one command's behaviour with a failure. `before` runs ahead of every answer (see
 * {@link BeforeCall}).
 *
 * @example
 * stub.reset(); wireSecretsManager(stub, model);
 */
export function wireSecretsManager(stub: SecretsManagerStub, model: SecretsManagerModel, before: BeforeCall = noHook): void {
  const on = stub.on.bind(stub);
  on(CreateSecretCommand).callsFake(async (i) => (await before('CreateSecret'), model.createSecret(i)));
  on(DescribeSecretCommand).callsFake(async (i) => (await before('DescribeSecret'), model.describeSecret(i)));
  on(GetSecretValueCommand).callsFake(async (i) => (await before('GetSecretValue'), model.getSecretValue(i)));
  on(PutSecretValueCommand).callsFake(async (i) => (await before('PutSecretValue'), model.putSecretValue(i)));
  on(UpdateSecretVersionStageCommand).callsFake(async (i) => (await before('UpdateSecretVersionStage'), model.updateSecretVersionStage(i)));
  on(GetRandomPasswordCommand).callsFake(async (i) => (await before('GetRandomPassword'), model.getRandomPassword(i)));
  on(RotateSecretCommand).callsFake(async (i) => (await before('RotateSecret'), model.rotateSecret(i)));
  on(CancelRotateSecretCommand).callsFake(async (i) => (await before('CancelRotateSecret'), model.cancelRotateSecret(i)));
  on(ListSecretVersionIdsCommand).callsFake(async (i) => (await before('ListSecretVersionIds'), model.listSecretVersionIds(i)));
  on(TagResourceCommand).callsFake(async (i) => (await before('TagResource'), model.tagResource(i)));
  on(UntagResourceCommand).callsFake(async (i) => (await before('UntagResource'), model.untagResource(i)));
  on(UpdateSecretCommand).callsFake(async (i) => (await before('UpdateSecret'), model.updateSecret(i)));
}

/**
 * Runs before the model answers a call, with the operation's name (e.g. `TagResource`): where a
 * test injects throttling, 5xx answers, timeouts or a crash of the caller. The call fails with
 * whatever it throws; a promise that never settles is a call that never returns.
 */
export type BeforeCall = (operation: string) => void | Promise<void>;

const noHook: BeforeCall = () => undefined;

/** The aws-sdk-client-mock stub of CloudWatchClient. */
export type CloudWatchStub = AwsStub<CloudWatchServiceInputTypes, CloudWatchServiceOutputTypes, CloudWatchClientResolvedConfig>;

/**
 * Answers every CloudWatchClient (this process, any instance) from `model`: PutMetricData,
 * GetMetricData and ListMetrics. Returns the aws-sdk-client-mock stub so tests can assert received
 * commands or inject failures (`stub.on(GetMetricDataCommand).rejects(...)`).
 *
 * @example
 * const cw = installCloudWatchModel(new CloudWatchModel({ now: () => clock.now() }));
 * expect(cw).toHaveReceivedCommandTimes(GetMetricDataCommand, 1);
 */
export function installCloudWatchModel(model: CloudWatchModel): CloudWatchStub {
  const stub = mockClient(CloudWatchClient);
  wireCloudWatch(stub, model);
  return stub;
}

/**
 * (Re)connects a CloudWatch stub to the model, e.g. after `stub.reset()` or after a test replaced
 * one command's behaviour with a failure.
 *
 * @example
 * stub.reset(); wireCloudWatch(stub, model);
 */
export function wireCloudWatch(stub: CloudWatchStub, model: CloudWatchModel, before: BeforeCall = noHook): void {
  stub.on(PutMetricDataCommand).callsFake(async (i) => (await before('PutMetricData'), model.putMetricData(i)));
  stub.on(GetMetricDataCommand).callsFake(async (i) => (await before('GetMetricData'), model.getMetricData(i)));
  stub.on(ListMetricsCommand).callsFake(async (i) => (await before('ListMetrics'), model.listMetrics(i)));
}
