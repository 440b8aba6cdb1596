/**
 * Re-drive: EventBridge invokes the function with `{ "converge": "redrive", "SecretId": arn }` when
 * the gate's alarm returns to OK, and `converge finish --force` invokes it directly. If a rotation
 * is waiting (a version labelled AWSPENDING that is not AWSCURRENT), it is completed for that token
 * through the normal entry checks, so completion never depends on Secrets Manager's retry budget.
 *
 * A re-drive acts only on real consumer evidence: it first evaluates the promotion gate once,
 * without waiting. If the fleet has not moved, it returns `held` at once (and reports the pending
 * generation, which puts the gate's alarm back into ALARM), instead of starting a second gate that
 * waits for minutes, counts a step failure and returns the alarm to OK when it stops emitting.
 * A force-finish override bound to the waiting token skips the probe.
 *
 * The waiting version is re-tested before it is promoted: a rotation can be left pending by a
 * failed setSecret as well as by a held finishSecret, and promoting a credential that does not log
 * in would break every consumer. testSecret is idempotent and read-only.
 */
import { DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import {
  ConvergencePendingError,
  RotationAbortedError,
  RotationStateError,
} from '../shared/errors';
import { awsCall } from './aws-call';
import type { RotationDependencies, RotationEvent } from './context';
import { checkEntry } from './entry-checks';
import { probePromotion } from './promotion-gate';
import { restoreLoginAfterAbandonedGuard } from './revocation-guard';
import { readPending } from './secrets';
import { waitingVersion, wasAborted } from './still-pending';

/**
 * - `promoted`: the waiting version was tested and finishSecret completed (or found it already done);
 * - `nothing-pending`: no version carries AWSPENDING without AWSCURRENT;
 * - `held`: the consumers have not moved; the rotation stays pending (nothing was changed);
 * - `aborted`: the rotation was aborted or superseded while it was being completed (nothing was changed).
 *
 * `held` and `aborted` are returned rather than thrown on purpose: neither is a failure of the
 * function, and a thrown error would add Lambda's asynchronous retries on top.
 */
export type RedriveOutcome = 'promoted' | 'nothing-pending' | 'held' | 'aborted';

/**
 * Finds the waiting rotation of `secretId`, checks the consumer evidence once, then re-runs its
 * testSecret and finishSecret.
 *
 * @throws any error of testSecret or finishSecret other than the gate holding or an abort
 *
 * @example
 * await redrive(deps, secretArn, (event) => runStep(deps, event));
 */
export async function redrive(
  deps: RotationDependencies,
  secretId: string,
  runStep: (event: RotationEvent) => Promise<void>,
): Promise<RedriveOutcome> {
  const logger = deps.logger;
  const description = await awsCall('DescribeSecret', () =>
    deps.secretsManager.send(new DescribeSecretCommand({ SecretId: secretId })),
  );
  const arn = description.ARN ?? secretId;
  const token = waitingVersion(description);
  if (!token) {
    logger.info('redrive: no rotation is waiting; nothing to do', { secretId: arn });
    // A rotation that was aborted after its guard died in the LOGIN-off window left AWSPREVIOUS
    // without LOGIN: give it back (best effort; the next rotation's setSecret restores it too).
    try {
      if (await restoreLoginAfterAbandonedGuard({ ...deps, secretArn: arn })) {
        logger.warn(
          'redrive: restored LOGIN of the previous user, which a revocation guard that died had taken away',
          {
            secretId: arn,
          },
        );
      }
    } catch (err) {
      logger.warn(
        'redrive: could not check the previous user for a LOGIN left off by a guard that died',
        {
          secretId: arn,
          errorName: (err as Error).name,
          errorMessage: (err as Error).message,
        },
      );
    }
    return 'nothing-pending';
  }
  const finish: RotationEvent = { Step: 'finishSecret', SecretId: arn, ClientRequestToken: token };
  const ctx = await checkEntry(deps, finish);
  if (!ctx) return 'promoted';
  if (!ctx.overrides.forceFinish) {
    const pending = await readPending(ctx);
    const probe = await probePromotion(ctx, pending);
    if (!probe.admit) {
      logger.info('redrive: the consumers have not moved; the rotation stays pending', {
        secretId: arn,
        token,
        blocking: probe.blocking,
        replicasNotInSync: probe.replicasNotInSync,
        evaluationError: probe.error?.message,
      });
      return 'held';
    }
  }
  logger.info('redrive: completing the waiting rotation (testSecret, then finishSecret)', {
    secretId: arn,
    token,
  });
  try {
    await runStep({ Step: 'testSecret', SecretId: arn, ClientRequestToken: token });
    await runStep(finish);
  } catch (err) {
    if (
      err instanceof RotationAbortedError ||
      (err instanceof RotationStateError && (await wasAborted(ctx)))
    ) {
      logger.warn('redrive: the rotation was aborted meanwhile; nothing was promoted', {
        secretId: arn,
        token,
        reason: (err as Error).message,
      });
      return 'aborted';
    }
    if (!(err instanceof ConvergencePendingError)) throw err;
    logger.warn('redrive: the promotion gate still holds; the rotation stays pending', {
      secretId: arn,
      token,
      blocking: err.blocking,
      replicasNotInSync: err.replicasNotInSync,
    });
    return 'held';
  }
  logger.info('redrive: rotation completed', { secretId: arn, token });
  return 'promoted';
}
