/**
 * The pending check: how long the waiting rotation has been waiting, published as the
 * `PendingAgeSeconds` metric (0 when nothing waits). A schedule rule invokes the function with
 * `{ "converge": "check", "SecretId": arn }` every few minutes, and Secrets Manager's rotation failure
 * events invoke it too (lib/constructs/convergence-monitoring.ts). The RotationStuck alarm reads this
 * metric, so a rotation left pending is seen even when no invocation is running: the re-drive chain
 * broke, Lambda's asynchronous retries ran out, or a step failed and Secrets Manager gave up.
 *
 * The check reads version metadata only (ListSecretVersionIds: ids, stages, creation dates), never
 * a secret value, and changes nothing.
 */
import {
  ListSecretVersionIdsCommand,
  type ListSecretVersionIdsCommandOutput,
} from '@aws-sdk/client-secrets-manager';
import { PENDING_AGE_SECONDS, secretNameDimension } from '../shared/metric-contract';
import { AWSCURRENT, AWSPENDING } from '../shared/secret';
import { awsCall } from './aws-call';
import type { RotationDependencies } from './context';
import { emitFunctionMetric } from './function-metrics';

/** The event the check schedule sends. */
export interface CheckEvent {
  readonly converge: 'check';
  readonly SecretId: string;
}

/** What the check found; also the function's result, for a caller that invokes it directly. */
export interface PendingCheck {
  /** Seconds since the waiting version was created; 0 when nothing waits. */
  readonly pendingAgeSeconds: number;
  /** The waiting version's token, when one waits. */
  readonly pendingVersionId?: string;
}

/** Bound on ListSecretVersionIds pages (a secret has at most a handful of staged versions). */
const MAX_PAGES = 10;

/**
 * Reads the secret's staged versions and publishes the age of the waiting one.
 *
 * @throws {@link AwsCallError} when Secrets Manager cannot be read (the invocation fails, which the
 * RotationFailed alarm counts through the function's Lambda `Errors` metric)
 *
 * @example
 * const { pendingAgeSeconds } = await checkPending(deps, secretArn);
 */
export async function checkPending(
  deps: RotationDependencies,
  secretId: string,
): Promise<PendingCheck> {
  const versions: NonNullable<ListSecretVersionIdsCommandOutput['Versions']> = [];
  let name: string | undefined;
  let nextToken: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const out = await awsCall('ListSecretVersionIds', () =>
      deps.secretsManager.send(
        new ListSecretVersionIdsCommand({ SecretId: secretId, NextToken: nextToken }),
      ),
    );
    name ??= out.Name;
    versions.push(...(out.Versions ?? []));
    nextToken = out.NextToken;
    if (!nextToken) break;
  }
  const waiting = versions.find(
    (v) =>
      (v.VersionStages ?? []).includes(AWSPENDING) && !(v.VersionStages ?? []).includes(AWSCURRENT),
  );
  const created = waiting?.CreatedDate ? new Date(waiting.CreatedDate).getTime() : undefined;
  const pendingAgeSeconds =
    created === undefined ? 0 : Math.max(0, Math.round((deps.clock.now() - created) / 1000));
  emitFunctionMetric(
    { ...deps, secretName: secretNameDimension(name ?? secretId) },
    PENDING_AGE_SECONDS,
    pendingAgeSeconds,
    'Seconds',
  );
  if (waiting) {
    deps.logger.info('pending check: a rotation is waiting', {
      secretId,
      token: waiting.VersionId,
      pendingAgeSeconds,
    });
  }
  return waiting?.VersionId
    ? { pendingAgeSeconds, pendingVersionId: waiting.VersionId }
    : { pendingAgeSeconds };
}
