/**
 * The `converge:last-failure` record (lambda/rotation/records.ts): the handler's step runner writes
 * it when a step fails, so `converge status` can say which step failed, when, and with which typed
 * error, from DescribeSecret alone. Gate holds are not failures (they update `converge:gate`).
 *
 * Both functions are best effort and never throw: a tag that cannot be written is logged, and never
 * masks the step's own error. The record carries the error's name and its message sanitized to tag
 * characters; converge's typed errors never carry a secret value (lambda/shared/errors.ts).
 */
import {
  TagResourceCommand,
  UntagResourceCommand,
  type DescribeSecretCommandOutput,
} from '@aws-sdk/client-secrets-manager';
import type { RotationDependencies, RotationEvent } from './context';
import { encodeFailureRecord, readLastFailure, TAG_LAST_FAILURE } from './records';

/**
 * Records that `event`'s step failed with `error`.
 *
 * @example
 * catch (err) { await recordStepFailure(deps, ctx?.secretArn ?? event.SecretId, event, err); throw err; }
 */
export async function recordStepFailure(
  deps: Pick<RotationDependencies, 'secretsManager' | 'logger' | 'clock'>,
  secretId: string,
  event: RotationEvent,
  error: unknown,
): Promise<void> {
  try {
    const value = encodeFailureRecord({
      versionId: event.ClientRequestToken,
      step: event.Step,
      at: new Date(deps.clock.now()),
      error,
    });
    await deps.secretsManager.send(
      new TagResourceCommand({
        SecretId: secretId,
        Tags: [{ Key: TAG_LAST_FAILURE, Value: value }],
      }),
    );
  } catch (err) {
    deps.logger.warn('could not record the step failure in the converge:last-failure tag', {
      errorName: (err as Error).name,
      errorMessage: (err as Error).message,
    });
  }
}

/**
 * After `event`'s step succeeded: removes a last-failure record of the same step of the same
 * rotation (a retry overcame it). No call at all when the step started without such a record.
 *
 * @example
 * await clearStepFailure(ctx, ctx.secretArn, ctx.description, event);
 */
export async function clearStepFailure(
  deps: Pick<RotationDependencies, 'secretsManager' | 'logger'>,
  secretId: string,
  description: Pick<DescribeSecretCommandOutput, 'Tags'>,
  event: RotationEvent,
): Promise<void> {
  const failure = readLastFailure(description);
  if (failure?.versionId !== event.ClientRequestToken || failure.step !== event.Step) return;
  try {
    await deps.secretsManager.send(
      new UntagResourceCommand({ SecretId: secretId, TagKeys: [TAG_LAST_FAILURE] }),
    );
  } catch (err) {
    deps.logger.warn(
      'could not remove the converge:last-failure tag of a step that now succeeded',
      {
        errorName: (err as Error).name,
        errorMessage: (err as Error).message,
      },
    );
  }
}
