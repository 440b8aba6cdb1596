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
 * replaced one command's behaviour with a failure.
 *
 * @example
 * stub.reset(); wireSecretsManager(stub, model);
 */
export function wireSecretsManager(stub: SecretsManagerStub, model: SecretsManagerModel): void {
  const on = stub.on.bind(stub);
  on(CreateSecretCommand).callsFake(async (i) => model.createSecret(i));
  on(DescribeSecretCommand).callsFake(async (i) => model.describeSecret(i));
  on(GetSecretValueCommand).callsFake(async (i) => model.getSecretValue(i));
  on(PutSecretValueCommand).callsFake(async (i) => model.putSecretValue(i));
  on(UpdateSecretVersionStageCommand).callsFake(async (i) => model.updateSecretVersionStage(i));
  on(GetRandomPasswordCommand).callsFake(async (i) => model.getRandomPassword(i));
  on(RotateSecretCommand).callsFake(async (i) => model.rotateSecret(i));
  on(CancelRotateSecretCommand).callsFake(async (i) => model.cancelRotateSecret(i));
  on(ListSecretVersionIdsCommand).callsFake(async (i) => model.listSecretVersionIds(i));
  on(TagResourceCommand).callsFake(async (i) => model.tagResource(i));
  on(UntagResourceCommand).callsFake(async (i) => model.untagResource(i));
  on(UpdateSecretCommand).callsFake(async (i) => model.updateSecret(i));
}

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
export function wireCloudWatch(stub: CloudWatchStub, model: CloudWatchModel): void {
  stub.on(PutMetricDataCommand).callsFake(async (i) => model.putMetricData(i));
  stub.on(GetMetricDataCommand).callsFake(async (i) => model.getMetricData(i));
  stub.on(ListMetricsCommand).callsFake(async (i) => model.listMetrics(i));
}
