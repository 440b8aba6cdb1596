/**
 * `converge abort <secret>`: remove a stuck AWSPENDING so the secret can rotate again. AWSCURRENT is
 * untouched, the aborted version keeps its generation burnt (createSecret's high-water tag), and
 * override tags are cleared. A finishSecret waiting at the promotion gate re-reads the stages before
 * it moves AWSCURRENT, so it does not promote the aborted version.
 */
import {
  UntagResourceCommand,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { owedEmergencyRevocation } from '../../lambda/rotation/emergency';
import { OVERRIDE_TAGS, TAG_EMERGENCY, tagValue } from '../../lambda/rotation/overrides';
import { AWSPENDING } from '../../lambda/shared/secret';
import type { CliClients } from '../clients';
import { invokeRedrive } from './redrive-call';
import { readSecretState } from './secret-state';

export interface AbortResult {
  readonly secret: string;
  /** The version that lost AWSPENDING, or undefined when nothing was waiting. */
  readonly abortedVersionId?: string;
  readonly burntGeneration?: number;
  /** Whether the function re-checked the previous user afterwards (a re-drive with nothing waiting). */
  readonly previousUserCheck?: string;
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
  // Override tags go, whichever rotation they were bound to: none of them can apply any more. The
  // one exception is an emergency revocation still owed by a completed rotation (the function
  // completes it at its next invocation; see lambda/rotation/emergency.ts).
  const owed = owedEmergencyRevocation(state.description);
  const stale = OVERRIDE_TAGS.filter(
    (key) => tagValue(state.description, key) !== undefined && !(key === TAG_EMERGENCY && owed),
  );
  if (stale.length > 0)
    await clients.sm.send(new UntagResourceCommand({ SecretId: state.arn, TagKeys: stale }));
  return {
    secret: state.name,
    abortedVersionId: state.pending.versionId,
    burntGeneration: state.pending.generation,
    previousUserCheck: await redriveAfterAbort(clients, state.arn, state.rotationLambdaArn),
  };
}

/**
 * The re-drive with nothing waiting gives LOGIN back to the previous user if the aborted rotation's
 * revocation guard died in its LOGIN-off window (lambda/rotation/revocation-guard.ts). Best effort:
 * the abort itself is done either way.
 */
async function redriveAfterAbort(
  clients: CliClients,
  arn: string,
  functionArn: string | undefined,
): Promise<string> {
  if (!functionArn) return 'skipped: the secret has no rotation function';
  try {
    const { functionError } = await invokeRedrive(clients, functionArn, arn);
    return functionError ? `failed (${functionError}): run \`converge abort\` again` : 'done';
  } catch (err) {
    return `failed (${(err as Error).name}): run \`converge abort\` again`;
  }
}
