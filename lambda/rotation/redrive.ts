/**
 * Re-drive (DESIGN.md 4.4): when the gate's alarm reports that the fleet converged, EventBridge
 * invokes the function with `{ "converge": "redrive", "SecretId": arn }`. If a rotation is waiting
 * (a version labelled AWSPENDING that is not AWSCURRENT), it is completed for that token through
 * the normal entry checks, so completion never depends on Secrets Manager's retry budget.
 *
 * The waiting version is re-tested before it is promoted: a rotation can be left pending by a
 * failed setSecret (the revocation guard blocked, the database was down) as well as by a held
 * finishSecret, and promoting a credential that does not log in would break every consumer.
 * testSecret is idempotent and read-only, so running it again costs one login.
 */
import { DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import { ConvergencePendingError } from '../shared/errors';
import { AWSCURRENT, AWSPENDING } from '../shared/secret';
import { awsCall } from './aws-call';
import type { RotationDependencies, RotationEvent } from './context';

/**
 * - `promoted`: the waiting version was tested and finishSecret completed (or found it already done);
 * - `nothing-pending`: no version carries AWSPENDING without AWSCURRENT;
 * - `held`: the promotion gate waited its bound and still holds; the rotation stays pending.
 *
 * `held` is returned rather than thrown on purpose. The gate has already emitted `ConvergencePending`
 * and `PendingGeneration` (and finishSecret's failure metric), so the hold is visible; the gate's
 * alarm goes back to OK when the waiting ends and re-drives again, which is the retry loop. A thrown
 * error would add Lambda's asynchronous retries on top, i.e. a second gate polling the same token
 * at the same time. Any other error (the re-test failed, Secrets Manager failed) is thrown.
 */
export type RedriveOutcome = 'promoted' | 'nothing-pending' | 'held';

/**
 * Finds the waiting rotation of `secretId`, re-runs its testSecret, then its finishSecret.
 *
 * @throws any error of testSecret or finishSecret other than the gate holding
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
  const waiting = Object.entries(description.VersionIdsToStages ?? {}).find(
    ([, stages]) => stages.includes(AWSPENDING) && !stages.includes(AWSCURRENT),
  );
  if (!waiting) {
    logger.info('redrive: no rotation is waiting; nothing to do', { secretId: arn });
    return 'nothing-pending';
  }
  const token = waiting[0];
  logger.info('redrive: completing the waiting rotation (testSecret, then finishSecret)', { secretId: arn, token });
  await runStep({ Step: 'testSecret', SecretId: arn, ClientRequestToken: token });
  try {
    await runStep({ Step: 'finishSecret', SecretId: arn, ClientRequestToken: token });
  } catch (err) {
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
