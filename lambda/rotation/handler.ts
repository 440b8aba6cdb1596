/**
 * The Lambda entry point: parse the event, build dependencies once per cold start, dispatch to
 * the step. Also accepts two events from EventBridge: the promotion gate's re-drive and the pending
 * check (lambda/rotation/pending-check.ts).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { RDSClient } from '@aws-sdk/client-rds';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConvergeError, ConvergencePendingError, RotationStateError } from '../shared/errors';
import {
  GATE_HOLD_ERRORS,
  ROTATION_STEP_FAILURES,
  secretNameDimension,
} from '../shared/metric-contract';
import { loadConfig } from './config';
import {
  systemClock,
  type RotationDependencies,
  type RotationEvent,
  type Step,
  type StepContext,
} from './context';
import { createSecret } from './create-secret';
import { checkEntry, parseEvent } from './entry-checks';
import { clearStepFailure, recordStepFailure } from './failure-record';
import { finishSecret } from './finish-secret';
import { emitFunctionMetric } from './function-metrics';
import { checkPending, type CheckEvent } from './pending-check';
import { redrive } from './redrive';
import { setSecret } from './set-secret';
import { testSecret } from './test-secret';

const STEP_FUNCTIONS: Record<Step, (ctx: StepContext) => Promise<void>> = {
  createSecret,
  setSecret,
  testSecret,
  finishSecret,
};

/** The re-drive event the gate's EventBridge rule sends: `{ "converge": "redrive", "SecretId": arn }`. */
export interface RedriveEvent {
  readonly converge: 'redrive';
  readonly SecretId: string;
}

/** The part of the Lambda context the handler uses. */
export interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

/**
 * Builds a handler. Every dependency can be injected; the rest are created once, here. The default
 * SDK clients use the standard configuration chain, so `AWS_ENDPOINT_URL` (or per-service
 * variables such as `AWS_ENDPOINT_URL_SECRETS_MANAGER`) points them at any compatible endpoint.
 *
 * @example
 * const handler = createRotationHandler({ config: loadConfig({ CONVERGE_CA_BUNDLE: '/ca.pem' }) });
 * await handler({ Step: 'createSecret', SecretId: arn, ClientRequestToken: token });
 */
export function createRotationHandler(deps: Partial<RotationDependencies> = {}) {
  const resolved: RotationDependencies = {
    secretsManager: deps.secretsManager ?? new SecretsManagerClient({}),
    rds: deps.rds ?? new RDSClient({}),
    cloudWatch: deps.cloudWatch ?? new CloudWatchClient({}),
    logger: deps.logger ?? new Logger({ serviceName: 'converge-rotation' }),
    config: deps.config ?? loadConfig(process.env),
    clock: deps.clock ?? systemClock,
    remainingTimeMs: deps.remainingTimeMs,
    writeMetric: deps.writeMetric,
  };
  return async function handler(
    event: RotationEvent | RedriveEvent | CheckEvent,
    context?: InvocationContext,
  ): Promise<unknown> {
    const invocation: RotationDependencies = context
      ? { ...resolved, remainingTimeMs: () => context.getRemainingTimeInMillis() }
      : resolved;
    if (isConvergeEvent(event, 'redrive')) {
      return redrive(invocation, event.SecretId, (e) => runStep(invocation, e));
    }
    if (isConvergeEvent(event, 'check')) {
      return checkPending(invocation, event.SecretId);
    }
    // Thrown to Lambda here (a re-drive returns its holds instead): count gate holds as such.
    return runStep(invocation, parseEvent(event), { gateHoldIsInvocationError: true });
  };
}

/** How {@link runStep} reports a failure. */
export interface RunStepOptions {
  /**
   * The error goes on to Lambda (which counts the invocation in its `Errors` metric): a gate hold
   * is then also counted as `GateHoldErrors`, which the RotationFailed alarm subtracts.
   *
   * @default false
   */
  readonly gateHoldIsInvocationError?: boolean;
}

/**
 * Runs one step with its entry checks, logging outcome and failure (never a secret value). A failure
 * other than a gate hold is also recorded on the secret (`converge:last-failure`, see
 * lambda/rotation/failure-record.ts), best effort.
 *
 * @example
 * await runStep(deps, { Step: 'createSecret', SecretId: arn, ClientRequestToken: token });
 */
export async function runStep(
  deps: RotationDependencies,
  event: RotationEvent,
  options: RunStepOptions = {},
): Promise<void> {
  const logger = deps.logger.createChild({
    persistentKeys: { secretId: event.SecretId, step: event.Step, token: event.ClientRequestToken },
  });
  const scoped: RotationDependencies = { ...deps, logger };
  let ctx: StepContext | undefined;
  try {
    ctx = await checkEntry(scoped, event);
    if (!ctx) return;
    if (ctx.overrides.emergency) {
      logger.warn(
        'EMERGENCY rotation requested by operator override: the revocation guard will not wait for consumers',
      );
    }
    await STEP_FUNCTIONS[event.Step](ctx);
    await clearStepFailure(scoped, ctx.secretArn, ctx.description, event);
  } catch (err) {
    const e = err as Error;
    logger.error(`${event.Step} failed`, {
      errorName: e.name,
      errorMessage: e.message,
      typed: err instanceof ConvergeError,
    });
    // For `converge status` (a gate hold is recorded by the gate itself, in converge:gate).
    if (!(err instanceof ConvergencePendingError)) {
      await recordStepFailure(scoped, ctx?.secretArn ?? event.SecretId, event, err);
    }
    // Entry-check failures count too (the RotationFailed alarm reads this metric).
    const scope = ctx ?? { ...scoped, secretName: secretNameDimension(event.SecretId) };
    emitFunctionMetric(scope, ROTATION_STEP_FAILURES, 1, 'Count');
    if (options.gateHoldIsInvocationError && err instanceof ConvergencePendingError) {
      emitFunctionMetric(scope, GATE_HOLD_ERRORS, 1, 'Count');
    }
    throw err;
  }
}

/** The kinds of converge's own events (EventBridge rules and the CLI send them). */
const CONVERGE_EVENTS = ['redrive', 'check'] as const;

/**
 * Whether `event` is converge's own event of `kind`. An event with a `converge` field that is not a
 * well-formed converge event is refused with a {@link RotationStateError} naming the field, rather
 * than being read as a Secrets Manager step.
 */
function isConvergeEvent<K extends (typeof CONVERGE_EVENTS)[number]>(
  event: unknown,
  kind: K,
): event is K extends 'redrive' ? RedriveEvent : CheckEvent {
  if (typeof event !== 'object' || event === null || !('converge' in event)) return false;
  const e = event as { converge?: unknown; SecretId?: unknown };
  if (!(CONVERGE_EVENTS as readonly unknown[]).includes(e.converge)) {
    throw new RotationStateError(
      `converge event field "converge" must be one of ${CONVERGE_EVENTS.join(', ')}, got ${JSON.stringify(e.converge)}`,
    );
  }
  if (typeof e.SecretId !== 'string' || e.SecretId.length === 0) {
    throw new RotationStateError(
      `converge ${String(e.converge)} event field "SecretId" must be a non-empty string`,
    );
  }
  return e.converge === kind;
}

/** The handler Lambda invokes. */
export const handler = createRotationHandler();
