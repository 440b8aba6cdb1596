/**
 * `converge rotate <secret> [--emergency]`: a manual RotateSecret, exactly what
 * `aws secretsmanager rotate-secret` does, plus the emergency override when asked.
 *
 * The CLI chooses the rotation's token and passes it as `ClientRequestToken`; the emergency tag's
 * value is that token, so the override applies to this rotation only (lambda/rotation/overrides.ts).
 * If RotateSecret fails, the tag is removed again before the command exits.
 */
import { randomUUID } from 'node:crypto';
import { RotateSecretCommand, TagResourceCommand } from '@aws-sdk/client-secrets-manager';
import { TAG_EMERGENCY } from '../../lambda/rotation/overrides';
import { ConvergeError } from '../../lambda/shared/errors';
import type { CliClients } from '../clients';
import { removeTagIfBoundTo } from './override-tags';
import { readSecretState } from './secret-state';

export interface RotateResult {
  readonly secret: string;
  readonly versionId?: string;
  readonly emergency: boolean;
}

/**
 * @example
 * const { versionId } = await rotate(clients, 'orders-app', { emergency: false });
 */
export async function rotate(
  clients: CliClients,
  secretId: string,
  options: { emergency?: boolean } = {},
): Promise<RotateResult> {
  const state = await readSecretState(clients, secretId);
  if (!state.rotationLambdaArn) {
    throw new ConvergeError(
      `secret ${state.name} has no rotation function: deploy the converge construct for it first`,
    );
  }
  if (state.pending) {
    throw new ConvergeError(
      `a rotation of ${state.name} is already waiting (version ${state.pending.versionId}, generation ${state.pending.generation ?? '?'}): ` +
        'see `converge status`, then wait, `converge finish --force` or `converge abort`',
    );
  }
  const token = randomUUID();
  if (!options.emergency) {
    const out = await clients.sm.send(
      new RotateSecretCommand({ SecretId: state.arn, ClientRequestToken: token }),
    );
    return { secret: state.name, versionId: out.VersionId ?? token, emergency: false };
  }
  await clients.sm.send(
    new TagResourceCommand({ SecretId: state.arn, Tags: [{ Key: TAG_EMERGENCY, Value: token }] }),
  );
  let started = false;
  try {
    const out = await clients.sm.send(
      new RotateSecretCommand({ SecretId: state.arn, ClientRequestToken: token }),
    );
    started = true;
    return { secret: state.name, versionId: out.VersionId ?? token, emergency: true };
  } finally {
    if (!started) await removeTagIfBoundTo(clients, state.arn, TAG_EMERGENCY, token);
  }
}
