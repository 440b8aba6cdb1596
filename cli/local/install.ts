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
  for (const r of secretsManagerRoutes(model)) stub.on(r.command as never).callsFake(answer(r, before));
}

/**
 * Connects a **fresh** Secrets Manager stub (just created or `reset()`) to the model with one fake
 * on `send` that dispatches by command class: cheaper per call than {@link wireSecretsManager}'s
 * per-command matchers, which sinon tries on every call. A later `stub.on(Command)` still takes
 * precedence, but calling this again does not undo it (reset the stub instead). A command the model
 * does not answer fails with an error that names it.
 *
 * @example
 * stub.reset(); answerSecretsManager(stub, model);
 */
export function answerSecretsManager(stub: SecretsManagerStub, model: SecretsManagerModel, before: BeforeCall = noHook): void {
  answerFrom(stub, 'Secrets Manager', before, secretsManagerRoutes(model));
}

function secretsManagerRoutes(model: SecretsManagerModel): Route[] {
  return [
    route(CreateSecretCommand, 'CreateSecret', (i) => model.createSecret(i)),
    route(DescribeSecretCommand, 'DescribeSecret', (i) => model.describeSecret(i)),
    route(GetSecretValueCommand, 'GetSecretValue', (i) => model.getSecretValue(i)),
    route(PutSecretValueCommand, 'PutSecretValue', (i) => model.putSecretValue(i)),
    route(UpdateSecretVersionStageCommand, 'UpdateSecretVersionStage', (i) => model.updateSecretVersionStage(i)),
    route(GetRandomPasswordCommand, 'GetRandomPassword', (i) => model.getRandomPassword(i)),
    route(RotateSecretCommand, 'RotateSecret', (i) => model.rotateSecret(i)),
    route(CancelRotateSecretCommand, 'CancelRotateSecret', (i) => model.cancelRotateSecret(i)),
    route(ListSecretVersionIdsCommand, 'ListSecretVersionIds', (i) => model.listSecretVersionIds(i)),
    route(TagResourceCommand, 'TagResource', (i) => model.tagResource(i)),
    route(UntagResourceCommand, 'UntagResource', (i) => model.untagResource(i)),
    route(UpdateSecretCommand, 'UpdateSecret', (i) => model.updateSecret(i)),
  ];
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
  for (const r of cloudWatchRoutes(model)) stub.on(r.command as never).callsFake(answer(r, before));
}

/**
 * Connects a **fresh** CloudWatch stub to the model with one dispatching fake (see
 * {@link answerSecretsManager}).
 *
 * @example
 * stub.reset(); answerCloudWatch(stub, model);
 */
export function answerCloudWatch(stub: CloudWatchStub, model: CloudWatchModel, before: BeforeCall = noHook): void {
  answerFrom(stub, 'CloudWatch', before, cloudWatchRoutes(model));
}

function cloudWatchRoutes(model: CloudWatchModel): Route[] {
  return [
    route(PutMetricDataCommand, 'PutMetricData', (i) => model.putMetricData(i)),
    route(GetMetricDataCommand, 'GetMetricData', (i) => model.getMetricData(i)),
    route(ListMetricsCommand, 'ListMetrics', (i) => model.listMetrics(i)),
  ];
}

/** One operation a model answers: the SDK command class, the operation's name and the model's method. */
interface Route {
  readonly command: abstract new (...args: never[]) => unknown;
  readonly operation: string;
  readonly answer: (input: never) => unknown;
}

/** A route's answer with the `before` hook ahead of it. */
function answer(r: Route, before: BeforeCall) {
  return async (input: unknown) => {
    await before(r.operation);
    return (await r.answer(input as never)) as never;
  };
}

function route<I, O>(command: new (input: I) => { readonly input: I }, operation: string, answer: (input: I) => O): Route {
  return { command, operation, answer: answer as (input: never) => unknown };
}

/** What {@link answerFrom} needs of an aws-sdk-client-mock stub: its `send` sinon stub. */
interface AnswerableStub {
  readonly send: { callsFake(fn: (command: { constructor: unknown; input: unknown }) => Promise<never>): unknown };
}

/**
 * Makes the stub's `send` answer every command of `routes` from the model, by the command's class,
 * with one fake: per-command matchers (`stub.on(Command)`) would be tried on every call. A test may
 * still replace one command's behaviour with `stub.on(Command)`, which takes precedence. A command
 * no model answers fails with an error that names it.
 */
function answerFrom(stub: AnswerableStub, service: string, before: BeforeCall, routes: readonly Route[]): void {
  const table = new Map<unknown, Route>(routes.map((r) => [r.command, r]));
  stub.send.callsFake(async (command) => {
    const r = table.get(command.constructor);
    if (!r) {
      const name = (command.constructor as { name?: string }).name ?? 'this command';
      throw new Error(`the local ${service} model does not answer ${name}`);
    }
    return answer(r, before)(command.input);
  });
}
