/**
 * `converge finish <secret> --force`: promote a waiting rotation without the promotion gate.
 * The CLI tags the secret (`converge:force-finish`, its value the waiting version's token) and
 * invokes the rotation function's re-drive, so the promotion happens in one place (finishSecret)
 * and is logged there as FORCED.
 *
 * Success is reported only when the function answered `promoted` AND DescribeSecret then shows
 * AWSCURRENT on the waiting version. Whatever happened, the tag is removed before the command ends
 * (a tag left on a rotation that is still waiting would let the next re-drive promote it without the
 * gate), and a failure says what the function answered, where AWSCURRENT is, whether the rotation
 * is still waiting, and what became of the tag.
 */
import { TagResourceCommand } from '@aws-sdk/client-secrets-manager';
import { TAG_FORCE_FINISH } from '../../lambda/rotation/overrides';
import { ConvergeError } from '../../lambda/shared/errors';
import type { CliClients } from '../clients';
import { describeCliError } from '../errors';
import { removeTagIfBoundTo, untagCommand, type TagRemoval } from './override-tags';
import { invokeRedrive, type RedriveAnswer } from './redrive-call';
import { readSecretState, type SecretState, type VersionView } from './secret-state';

export interface FinishResult {
  readonly secret: string;
  readonly promotedVersionId: string;
  readonly generation?: number;
  readonly forced: true;
  /** The version that held AWSCURRENT before and is AWSPREVIOUS now. */
  readonly previousVersionId?: string;
  /** What became of the `converge:force-finish` tag the command set. */
  readonly tag: TagRemoval['outcome'];
}

/** What each non-`promoted` answer of the re-drive means (lambda/rotation/redrive.ts). */
const ANSWERS: Record<string, string> = {
  held: 'it did not see the force-finish override and the promotion gate holds',
  'nothing-pending': 'no rotation was waiting when it ran: it was aborted or completed meanwhile',
  aborted: 'the rotation was aborted or superseded while the function was completing it',
};

/**
 * @throws {@link ConvergeError} when nothing waits, or when the function did not promote the waiting
 * version (it answered something else, failed, could not be invoked, or AWSCURRENT did not move)
 *
 * @example
 * const r = await finish(clients, 'orders-app', { force: true });
 * console.log(`version ${r.promotedVersionId} is AWSCURRENT`);
 */
export async function finish(
  clients: CliClients,
  secretId: string,
  options: { force?: boolean },
): Promise<FinishResult> {
  if (!options.force) {
    throw new ConvergeError(
      'finish promotes without waiting for consumers; pass --force to confirm',
    );
  }
  const state = await readSecretState(clients, secretId);
  if (!state.pending)
    throw new ConvergeError(`no rotation of ${state.name} is waiting; nothing to finish`);
  if (!state.rotationLambdaArn)
    throw new ConvergeError(`secret ${state.name} has no rotation function`);
  const pending = state.pending;
  const token = pending.versionId;
  await clients.sm.send(
    new TagResourceCommand({
      SecretId: state.arn,
      Tags: [{ Key: TAG_FORCE_FINISH, Value: token }],
    }),
  );
  let answer: RedriveAnswer | undefined;
  let invokeError: unknown;
  try {
    answer = await invokeRedrive(clients, state.rotationLambdaArn, state.arn);
  } catch (err) {
    invokeError = err;
  }
  // Where the stages are now decides, not the function's word alone.
  let after: SecretState | undefined;
  let readError: unknown;
  try {
    after = await readSecretState(clients, state.arn);
  } catch (err) {
    readError = err;
  }
  const removal = await removeTagIfBoundTo(clients, state.arn, TAG_FORCE_FINISH, token);
  const moved = after?.current?.versionId === token;
  if (answer && !answer.functionError && answer.payload === 'promoted' && moved) {
    return {
      secret: state.name,
      promotedVersionId: token,
      generation: pending.generation,
      forced: true,
      previousVersionId: state.current?.versionId,
      tag: removal.outcome,
    };
  }
  const headline = whatTheFunctionDid(answer, invokeError, after, moved);
  const where = after
    ? whereThingsAre(after, pending, moved, answer?.payload === 'promoted')
    : `the secret could not be read afterwards (${describeCliError(readError)})`;
  const stillWaiting = after === undefined || after.pending?.versionId === token;
  throw new ConvergeError(
    `${headline}; ${where}; ${tagSentence(removal, state.arn, token, stillWaiting)}; see \`converge status ${state.name}\``,
  );
}

function whatTheFunctionDid(
  answer: RedriveAnswer | undefined,
  invokeError: unknown,
  after: SecretState | undefined,
  moved: boolean,
): string {
  const prefix = moved ? 'not confirmed' : 'nothing was promoted';
  if (!answer)
    return `${prefix}: the rotation function could not be invoked (${describeCliError(invokeError)})`;
  if (answer.functionError) {
    const detail = (answer.payload ?? {}) as { errorType?: string; errorMessage?: string };
    return `${prefix}: the rotation function failed: ${detail.errorType ?? answer.functionError}: ${detail.errorMessage ?? 'no detail'}`;
  }
  if (answer.payload === 'promoted') {
    return `the rotation function answered "promoted" but AWSCURRENT is still version ${versionText(after?.current)}, not the waiting one`;
  }
  const meaning = typeof answer.payload === 'string' ? ANSWERS[answer.payload] : undefined;
  return `${prefix}: the rotation function answered ${JSON.stringify(answer.payload)}${meaning ? ` (${meaning})` : ''}`;
}

function whereThingsAre(
  after: SecretState,
  pending: VersionView,
  moved: boolean,
  currentSaid: boolean,
): string {
  const current = currentSaid ? '' : `; AWSCURRENT is version ${versionText(after.current)}`;
  if (moved)
    return `yet version ${pending.versionId} is AWSCURRENT now (the function's answer did not say so)`;
  if (after.pending?.versionId === pending.versionId) {
    return `the rotation is still waiting (version ${pending.versionId}, generation ${pending.generation ?? '?'})${current}`;
  }
  return `version ${pending.versionId} is no longer waiting${current}`;
}

function tagSentence(
  removal: TagRemoval,
  arn: string,
  token: string,
  stillWaiting: boolean,
): string {
  switch (removal.outcome) {
    case 'removed':
      return `removed tag ${TAG_FORCE_FINISH}`;
    case 'absent':
      return `tag ${TAG_FORCE_FINISH} is gone`;
    case 'kept':
      return `tag ${TAG_FORCE_FINISH} now names another rotation and was left alone`;
    case 'failed':
      return (
        `could NOT remove tag ${TAG_FORCE_FINISH} (${removal.error}): ` +
        (stillWaiting
          ? `while it stays, the next re-drive promotes version ${token} without the gate; remove it now: `
          : `it names version ${token}, which no longer waits, so it has no effect; remove it with: `) +
        untagCommand(arn, TAG_FORCE_FINISH)
      );
  }
}

function versionText(v: VersionView | undefined): string {
  return v ? `${v.versionId} (generation ${v.generation ?? '?'})` : '? (none)';
}
