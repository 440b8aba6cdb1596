/**
 * `converge abort <secret>`: remove a stuck AWSPENDING so the secret can rotate again. AWSCURRENT is
 * untouched, the aborted version keeps its generation burnt (createSecret's high-water tag), and
 * override tags are cleared. A finishSecret waiting at the promotion gate re-reads the stages before
 * it moves AWSCURRENT, so it does not promote the aborted version.
 *
 * Abort reads no secret value (no GetSecretValue): what it shows comes from DescribeSecret alone,
 * the version ids and stages, and the generation from the `converge:generation` tag.
 *
 * It records itself in the tag `converge:aborted` (`<versionId> <generation> <atISO>`,
 * lambda/rotation/aborted.ts): a live consumer that had adopted the aborted credential reported its
 * generation until its next refresh, and the next rotation's revocation guard sets those earlier
 * data points aside once the consumer reports after the abort. Without the record (it could not be
 * written) nothing is set aside: the next rotation waits until those points leave the consumer's
 * freshness window.
 */
import {
  TagResourceCommand,
  UntagResourceCommand,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { encodeAbortRecord, TAG_ABORTED } from '../../lambda/rotation/aborted';
import { owedEmergencyRevocation } from '../../lambda/rotation/emergency';
import { OVERRIDE_TAGS, TAG_EMERGENCY, tagValue } from '../../lambda/rotation/overrides';
import { ConvergeError } from '../../lambda/shared/errors';
import { AWSPENDING } from '../../lambda/shared/secret';
import type { CliClients } from '../clients';
import type { Confirm } from '../confirm';
import { NotConfirmedError } from '../errors';
import { invokeRedrive } from './redrive-call';
import { readSecretState, type SecretState } from './secret-state';

export interface AbortResult {
  readonly secret: string;
  /** The version that lost AWSPENDING, or undefined when nothing was waiting. */
  readonly abortedVersionId?: string;
  /**
   * The `converge:generation` tag: the highest generation createSecret issued. createSecret tags it
   * before it stages the value, so the aborted version holds this generation if createSecret staged
   * it; either way it is never issued again (the next rotation issues a higher one).
   */
  readonly highWaterGeneration?: number;
  /** The version holding AWSCURRENT, which the abort did not touch. */
  readonly currentVersionId?: string;
  /** Override tags removed (by key). */
  readonly tagsRemoved?: readonly string[];
  /** Override tags left in place, and why. */
  readonly tagsKept?: readonly { key: string; reason: string }[];
  /** The re-drive's answer (`nothing-pending` normally), or why it could not run. */
  readonly redrive?: string;
  /** Whether the function re-checked the previous user afterwards (a re-drive with nothing waiting). */
  readonly previousUserCheck?: string;
  /** The `converge:aborted` tag written (`key=value`), or why none was (see lambda/rotation/aborted.ts). */
  readonly abortRecord?: string;
}

/** Options of {@link abort}. */
export interface AbortOptions {
  /** Asked before anything changes (the CLI passes one unless `--yes`). */
  readonly confirm?: Confirm;
  /**
   * The time the abort record carries, milliseconds since the epoch (tests pass their virtual clock).
   *
   * @default Date.now
   */
  readonly now?: () => number;
}

/**
 * @throws {@link NotConfirmedError} when `options.confirm` answers false (nothing was changed)
 *
 * @example
 * const r = await abort(clients, 'orders-app');
 * console.log(`version ${r.abortedVersionId} is no longer AWSPENDING`);
 */
export async function abort(
  clients: CliClients,
  secretId: string,
  options: AbortOptions = {},
): Promise<AbortResult> {
  let state = await readSecretState(clients, secretId, { decrypt: false });
  if (!state.pending) return { secret: state.name };
  if (options.confirm) {
    const waiting = state.pending.versionId;
    if (!(await options.confirm(state.name, plan(state))))
      throw new NotConfirmedError('abort', state.name);
    // The operator took their time: act only on the rotation they confirmed.
    state = await readSecretState(clients, state.arn, { decrypt: false });
    if (state.pending?.versionId !== waiting) {
      throw new ConvergeError(
        `the waiting rotation of ${state.name} changed while you confirmed (version ${waiting} no longer waits` +
          `${state.pending ? `; version ${state.pending.versionId} does now` : ''}). Nothing was changed; run abort again if needed.`,
      );
    }
  }
  const pending = state.pending!;
  await clients.sm.send(
    new UpdateSecretVersionStageCommand({
      SecretId: state.arn,
      VersionStage: AWSPENDING,
      RemoveFromVersionId: pending.versionId,
    }),
  );
  const abortRecord = await recordAbort(clients, state, (options.now ?? Date.now)());
  const { remove, keep } = overrideTags(state);
  if (remove.length > 0)
    await clients.sm.send(new UntagResourceCommand({ SecretId: state.arn, TagKeys: remove }));
  const redrive = await redriveAfterAbort(clients, state.arn, state.rotationLambdaArn);
  return {
    secret: state.name,
    abortedVersionId: pending.versionId,
    highWaterGeneration: state.highWaterGeneration,
    currentVersionId: state.current?.versionId,
    tagsRemoved: remove,
    tagsKept: keep,
    abortRecord,
    ...redrive,
  };
}

/**
 * Writes `converge:aborted` for the version that just lost AWSPENDING. Best effort: the abort is
 * done either way, and without the record the next rotation only waits longer.
 */
async function recordAbort(clients: CliClients, state: SecretState, at: number): Promise<string> {
  const generation = state.highWaterGeneration;
  // No createSecret ever ran: the version has no value, so no consumer can have adopted it.
  if (generation === undefined) return 'not written: the aborted version holds no credential';
  try {
    const value = encodeAbortRecord({ versionId: state.pending!.versionId, generation, at });
    await clients.sm.send(
      new TagResourceCommand({ SecretId: state.arn, Tags: [{ Key: TAG_ABORTED, Value: value }] }),
    );
    return `${TAG_ABORTED}=${value}`;
  } catch (err) {
    return (
      `NOT written (${(err as Error).name}): data points of generation ${generation} that consumers published ` +
      'before the abort hold the next rotation until they leave their freshness window'
    );
  }
}

/**
 * Override tags go, whichever rotation they were bound to: none of them can apply any more. The
 * one exception is an emergency revocation still owed by a completed rotation (the function
 * completes it at its next invocation; see lambda/rotation/emergency.ts).
 */
function overrideTags(state: SecretState): {
  remove: string[];
  keep: { key: string; reason: string }[];
} {
  const owed = owedEmergencyRevocation(state.description);
  const present = OVERRIDE_TAGS.filter((key) => tagValue(state.description, key) !== undefined);
  return {
    remove: present.filter((key) => !(key === TAG_EMERGENCY && owed)),
    keep: present
      .filter((key) => key === TAG_EMERGENCY && owed)
      .map((key) => ({
        key,
        reason: `the emergency revocation of completed rotation ${owed} is still owed; the function completes it at its next invocation`,
      })),
  };
}

/** What the abort is about to change, for the confirmation. */
function plan(state: SecretState): string[] {
  const { remove, keep } = overrideTags(state);
  return [
    `remove AWSPENDING from version ${state.pending!.versionId} (${generationText(state)})`,
    `leave AWSCURRENT on version ${state.current?.versionId ?? '?'}`,
    remove.length > 0
      ? `remove tags ${remove.join(', ')}`
      : 'remove no tag (no override tag is set)',
    ...keep.map((k) => `keep tag ${k.key}: ${k.reason}`),
    `record the abort in tag ${TAG_ABORTED} (version, generation, time), so that the next rotation does not wait ` +
      'for data points consumers published before it',
    'invoke the rotation function once (a re-drive with nothing waiting: it re-checks the previous user)',
  ];
}

/**
 * The aborted version's generation as far as it can be known without decrypting it: createSecret
 * writes the high-water tag before it stages the value, so a version it staged holds the tag's
 * generation; a version whose createSecret never got that far holds no value at all.
 *
 * @example
 * generationText({ highWaterGeneration: 8 }); // 'generation 8 if its createSecret ran (converge:generation tag); 8 is never issued again'
 */
export function generationText(state: Pick<SecretState, 'highWaterGeneration'>): string {
  const n = state.highWaterGeneration;
  if (n === undefined)
    return 'no value: no createSecret has written the converge:generation tag yet';
  return `generation ${n} if its createSecret ran (converge:generation tag); ${n} is never issued again`;
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
): Promise<{ redrive: string; previousUserCheck: string }> {
  if (!functionArn) {
    const skipped = 'skipped: the secret has no rotation function';
    return { redrive: skipped, previousUserCheck: skipped };
  }
  const again = 'run `converge abort` again';
  try {
    const { payload, functionError } = await invokeRedrive(clients, functionArn, arn);
    if (functionError) {
      const detail = (payload ?? {}) as { errorType?: string; errorMessage?: string };
      const failed = `failed (${functionError}: ${detail.errorType ?? 'Error'}: ${detail.errorMessage ?? 'no detail'}): ${again}`;
      return { redrive: failed, previousUserCheck: `failed (${functionError}): ${again}` };
    }
    const answered = `the function answered ${JSON.stringify(payload)}`;
    // Only a re-drive that found nothing waiting re-checks the previous user (lambda/rotation/redrive.ts).
    return payload === 'nothing-pending'
      ? { redrive: answered, previousUserCheck: 'done' }
      : {
          redrive: `${answered} (a new rotation was waiting by then)`,
          previousUserCheck:
            "not done: a new rotation was waiting; its setSecret restores the previous user's LOGIN",
        };
  } catch (err) {
    const failed = `failed (${(err as Error).name}): ${again}`;
    return { redrive: failed, previousUserCheck: failed };
  }
}
