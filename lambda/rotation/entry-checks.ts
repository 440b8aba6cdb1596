/**
 * Entry checks of every step, identical to Secrets Manager's contract: rotation is
 * enabled, the token is a version of the secret, a token already AWSCURRENT means the work is done,
 * and a token without AWSPENDING is an error.
 */
import { DescribeSecretCommand, ResourceNotFoundException } from '@aws-sdk/client-secrets-manager';
import { RotationStateError } from '../shared/errors';
import { AWSCURRENT, AWSPENDING } from '../shared/secret';
import { awsCall } from './aws-call';
import { STEPS, type RotationDependencies, type RotationEvent, type StepContext } from './context';
import { owedEmergencyRevocation, revokeFormerlyCurrent } from './emergency';
import {
  readOverrides,
  removeOverride,
  staleOverrides,
  TAG_FORCE_FINISH,
  tagValue,
} from './overrides';

/**
 * Validates the raw event's shape.
 *
 * @throws {@link RotationStateError} naming the missing or wrong field
 */
export function parseEvent(raw: unknown): RotationEvent {
  if (raw === null || typeof raw !== 'object')
    throw new RotationStateError('rotation event must be an object');
  const e = raw as Record<string, unknown>;
  if (typeof e.Step !== 'string' || !(STEPS as readonly string[]).includes(e.Step)) {
    throw new RotationStateError(
      `rotation event field "Step" must be one of ${STEPS.join(', ')}, got ${JSON.stringify(e.Step)}`,
    );
  }
  for (const field of ['SecretId', 'ClientRequestToken'] as const) {
    if (typeof e[field] !== 'string' || (e[field] as string).length === 0) {
      throw new RotationStateError(`rotation event field "${field}" must be a non-empty string`);
    }
  }
  if (e.RotationToken !== undefined && typeof e.RotationToken !== 'string') {
    throw new RotationStateError(
      'rotation event field "RotationToken" must be a string when present',
    );
  }
  return raw as RotationEvent;
}

/**
 * Runs the entry checks; returns the step context, or undefined when the token is already
 * AWSCURRENT (the rotation is complete and the step is a no-op).
 *
 * Before anything else, an emergency revocation that a completed rotation still owes is carried
 * out (see emergency.ts): whatever the invocation is for, the formerly current credential of an
 * emergency rotation stops working first. On the early-return path a force-finish tag bound to the
 * completed token is removed, so no override outlives its rotation.
 */
export async function checkEntry(
  deps: RotationDependencies,
  event: RotationEvent,
): Promise<StepContext | undefined> {
  let description;
  try {
    description = await deps.secretsManager.send(
      new DescribeSecretCommand({ SecretId: event.SecretId }),
    );
  } catch (err) {
    if (err instanceof ResourceNotFoundException) {
      throw new RotationStateError(`secret ${event.SecretId} was not found`, { cause: err });
    }
    return awsCall('DescribeSecret', () => Promise.reject(err));
  }
  const arn = description.ARN ?? event.SecretId;
  const secretName = description.Name ?? arn;
  if (!description.RotationEnabled) {
    throw new RotationStateError(`rotation is not enabled for secret ${arn}`);
  }
  const owed = owedEmergencyRevocation(description);
  if (owed) {
    deps.logger.warn('EMERGENCY: completing the revocation owed by rotation before anything else', {
      owedBy: owed,
    });
    await revokeFormerlyCurrent({ ...deps, secretArn: arn, secretName }, owed);
  }
  const stages = description.VersionIdsToStages?.[event.ClientRequestToken];
  if (!stages) {
    throw new RotationStateError(
      `token ${event.ClientRequestToken} is not a version of secret ${arn}`,
    );
  }
  if (stages.includes(AWSCURRENT)) {
    deps.logger.info(`${event.Step}: version is already AWSCURRENT; nothing to do`);
    if (tagValue(description, TAG_FORCE_FINISH) === event.ClientRequestToken) {
      await removeOverride(deps, arn, TAG_FORCE_FINISH);
    }
    return undefined;
  }
  if (!stages.includes(AWSPENDING)) {
    throw new RotationStateError(
      `version ${event.ClientRequestToken} of secret ${arn} is not staged AWSPENDING`,
    );
  }
  for (const stale of staleOverrides(description, event.ClientRequestToken)) {
    deps.logger.warn('ignoring an operator override tag bound to another rotation', {
      tag: stale.key,
      boundTo: stale.value,
      hint: 'overrides apply only to the rotation whose token is the tag value; converge abort removes stale ones',
    });
  }
  return {
    ...deps,
    event,
    secretArn: arn,
    secretName,
    token: event.ClientRequestToken,
    description,
    overrides: readOverrides(description, event.ClientRequestToken),
  };
}
