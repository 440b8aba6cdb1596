/**
 * `converge rotate <secret> [--emergency]`: a manual RotateSecret, exactly what
 * `aws secretsmanager rotate-secret` does, plus the emergency override tag when asked.
 */
import { RotateSecretCommand, TagResourceCommand } from '@aws-sdk/client-secrets-manager';
import { TAG_EMERGENCY } from '../../lambda/rotation/overrides';
import { ConvergeError } from '../../lambda/shared/errors';
import type { CliClients } from '../clients';
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
export async function rotate(clients: CliClients, secretId: string, options: { emergency?: boolean } = {}): Promise<RotateResult> {
  const state = await readSecretState(clients, secretId);
  if (!state.rotationLambdaArn) {
    throw new ConvergeError(`secret ${state.name} has no rotation function: deploy the converge construct for it first`);
  }
  if (state.pending) {
    throw new ConvergeError(
      `a rotation of ${state.name} is already waiting (version ${state.pending.versionId}, generation ${state.pending.generation ?? '?'}): ` +
        'see `converge status`, then wait, `converge finish --force` or `converge abort`',
    );
  }
  if (options.emergency) {
    await clients.sm.send(new TagResourceCommand({ SecretId: state.arn, Tags: [{ Key: TAG_EMERGENCY, Value: 'true' }] }));
  }
  const out = await clients.sm.send(new RotateSecretCommand({ SecretId: state.arn }));
  return { secret: state.name, versionId: out.VersionId, emergency: options.emergency ?? false };
}
