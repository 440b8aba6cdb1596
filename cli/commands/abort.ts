/**
 * `converge abort <secret>`: remove a stuck AWSPENDING so the secret can rotate again. AWSCURRENT is
 * untouched, the aborted version keeps its generation burnt (createSecret's high-water tag), and
 * override tags are cleared.
 */
import { UntagResourceCommand, UpdateSecretVersionStageCommand } from '@aws-sdk/client-secrets-manager';
import { TAG_EMERGENCY, TAG_FORCE_FINISH } from '../../lambda/rotation/overrides';
import { AWSPENDING } from '../../lambda/shared/secret';
import type { CliClients } from '../clients';
import { readSecretState } from './secret-state';

export interface AbortResult {
  readonly secret: string;
  /** The version that lost AWSPENDING, or undefined when nothing was waiting. */
  readonly abortedVersionId?: string;
  readonly burntGeneration?: number;
}

/**
 * @example
 * await abort(clients, 'orders-app');
 */
export async function abort(clients: CliClients, secretId: string): Promise<AbortResult> {
  const state = await readSecretState(clients, secretId);
  if (!state.pending) return { secret: state.name };
  await clients.sm.send(
    new UpdateSecretVersionStageCommand({
      SecretId: state.arn,
      VersionStage: AWSPENDING,
      RemoveFromVersionId: state.pending.versionId,
    }),
  );
  if (state.overrides.emergency || state.overrides.forceFinish) {
    await clients.sm.send(new UntagResourceCommand({ SecretId: state.arn, TagKeys: [TAG_EMERGENCY, TAG_FORCE_FINISH] }));
  }
  return { secret: state.name, abortedVersionId: state.pending.versionId, burntGeneration: state.pending.generation };
}
