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
 * - `nothing-pending`: no version carries AWSPENDING without AWSCURRENT.
 *
 * A rotation the gate still holds is not an outcome but an error: the ConvergencePendingError is
 * rethrown, so the invocation fails visibly and the asynchronous invocation's retries (and the next
 * alarm transition) try again.
 */
export type RedriveOutcome = 'promoted' | 'nothing-pending';

/**
 * Finds the waiting rotation of `secretId`, re-runs its testSecret, then its finishSecret.
 *
 * @throws {@link ConvergencePendingError} when the promotion gate still holds; any step error as is
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
    if (err instanceof ConvergencePendingError) {
      logger.warn('redrive: the promotion gate still holds; the rotation stays pending', {
        secretId: arn,
        token,
        blocking: err.blocking,
      });
    }
    throw err;
  }
  logger.info('redrive: rotation completed', { secretId: arn, token });
  return 'promoted';
}
