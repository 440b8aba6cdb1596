/**
 * Re-drive (DESIGN.md 4.4): when the gate's alarm reports that the fleet converged, EventBridge
 * invokes the function with `{ "converge": "redrive", "SecretId": arn }`. If a rotation is waiting
 * (a version labelled AWSPENDING that is not AWSCURRENT), finishSecret runs for its token through
 * the normal entry checks, so completion never depends on Secrets Manager's retry budget.
 */
import { DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import { AWSCURRENT, AWSPENDING } from '../shared/secret';
import { awsCall } from './aws-call';
import type { RotationDependencies, RotationEvent } from './context';

export type RedriveOutcome = 'promoted' | 'nothing-pending';

/**
 * Finds the waiting rotation of `secretId` and runs its finishSecret.
 *
 * @example
 * await redrive(deps, secretArn, (event) => runStep(deps, event));
 */
export async function redrive(
  deps: RotationDependencies,
  secretId: string,
  runStep: (event: RotationEvent) => Promise<void>,
): Promise<RedriveOutcome> {
  const description = await awsCall('DescribeSecret', () =>
    deps.secretsManager.send(new DescribeSecretCommand({ SecretId: secretId })),
  );
  const waiting = Object.entries(description.VersionIdsToStages ?? {}).find(
    ([, stages]) => stages.includes(AWSPENDING) && !stages.includes(AWSCURRENT),
  );
  if (!waiting) {
    deps.logger.info('redrive: no rotation is waiting; nothing to do', { secretId });
    return 'nothing-pending';
  }
  deps.logger.info('redrive: running finishSecret for the waiting rotation', { secretId, token: waiting[0] });
  await runStep({ Step: 'finishSecret', SecretId: description.ARN ?? secretId, ClientRequestToken: waiting[0] });
  return 'promoted';
}
