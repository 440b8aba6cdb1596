/**
 * Entry checks of every step (DESIGN.md 4.1), identical to Secrets Manager's contract: rotation is
 * enabled, the token is a version of the secret, a token already AWSCURRENT means the work is done,
 * and a token without AWSPENDING is an error.
 */
import { DescribeSecretCommand, ResourceNotFoundException } from '@aws-sdk/client-secrets-manager';
import { RotationStateError } from '../shared/errors';
import { AWSCURRENT, AWSPENDING } from '../shared/secret';
import { awsCall } from './aws-call';
import { STEPS, type RotationDependencies, type RotationEvent, type StepContext } from './context';
import { readOverrides } from './overrides';

/**
 * Validates the raw event's shape.
 *
 * @throws {@link RotationStateError} naming the missing or wrong field
 */
export function parseEvent(raw: unknown): RotationEvent {
  if (raw === null || typeof raw !== 'object') throw new RotationStateError('rotation event must be an object');
  const e = raw as Record<string, unknown>;
  if (typeof e.Step !== 'string' || !(STEPS as readonly string[]).includes(e.Step)) {
    throw new RotationStateError(`rotation event field "Step" must be one of ${STEPS.join(', ')}, got ${JSON.stringify(e.Step)}`);
  }
  for (const field of ['SecretId', 'ClientRequestToken'] as const) {
    if (typeof e[field] !== 'string' || (e[field] as string).length === 0) {
      throw new RotationStateError(`rotation event field "${field}" must be a non-empty string`);
    }
  }
  if (e.RotationToken !== undefined && typeof e.RotationToken !== 'string') {
    throw new RotationStateError('rotation event field "RotationToken" must be a string when present');
  }
  return raw as RotationEvent;
}

/**
 * Runs the entry checks; returns the step context, or undefined when the token is already
 * AWSCURRENT (the rotation is complete and the step is a no-op).
 */
export async function checkEntry(deps: RotationDependencies, event: RotationEvent): Promise<StepContext | undefined> {
  let description;
  try {
    description = await deps.secretsManager.send(new DescribeSecretCommand({ SecretId: event.SecretId }));
  } catch (err) {
    if (err instanceof ResourceNotFoundException) {
      throw new RotationStateError(`secret ${event.SecretId} was not found`, { cause: err });
    }
    return awsCall('DescribeSecret', () => Promise.reject(err));
  }
  const arn = description.ARN ?? event.SecretId;
  if (!description.RotationEnabled) {
    throw new RotationStateError(`rotation is not enabled for secret ${arn}`);
  }
  const stages = description.VersionIdsToStages?.[event.ClientRequestToken];
  if (!stages) {
    throw new RotationStateError(`token ${event.ClientRequestToken} is not a version of secret ${arn}`);
  }
  if (stages.includes(AWSCURRENT)) {
    deps.logger.info(`${event.Step}: version is already AWSCURRENT; nothing to do`);
    return undefined;
  }
  if (!stages.includes(AWSPENDING)) {
    throw new RotationStateError(`version ${event.ClientRequestToken} of secret ${arn} is not staged AWSPENDING`);
  }
  return {
    ...deps,
    event,
    secretArn: arn,
    secretName: description.Name ?? arn,
    token: event.ClientRequestToken,
    description,
    overrides: readOverrides(description),
  };
}
