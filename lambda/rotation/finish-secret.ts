/**
 * finishSecret: after the promotion gate admits it, move AWSCURRENT to this rotation's version
 * (Secrets Manager then labels the old version AWSPREVIOUS).
 *
 * The gate may have waited for minutes, so the secret's stages are read again right before the move:
 * the version is promoted only if it still carries AWSPENDING and AWSCURRENT is still where it was
 * when the step started. An operator's `converge abort` (or anything else that moved a label) in the
 * meantime stops the step with {@link RotationAbortedError}, changing nothing. A version that is
 * already AWSCURRENT was promoted by a concurrent invocation for the same token (a re-drive racing
 * Secrets Manager's retry): that is success, not failure.
 *
 * Override tags: force-finish is removed before the move; after an emergency rotation's move, the
 * formerly current credential is revoked and then the emergency tag is removed (see emergency.ts).
 *
 * Records (lambda/rotation/records.ts): once the version is AWSCURRENT, the records of versions that
 * no longer have a stage, the gate's hold record and this rotation's last-failure record are removed
 * in one UntagResource call (best effort: a record left behind is pruned by the next promotion).
 */
import {
  DescribeSecretCommand,
  UntagResourceCommand,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { AuthenticationFailedError, RotationStateError } from '../shared/errors';
import { ROTATIONS_COMPLETED } from '../shared/metric-contract';
import { targetOf, withClient } from '../shared/pg-connection';
import { AWSCURRENT, type DbSecret } from '../shared/secret';
import { awsCall } from './aws-call';
import { pinnedConnectionOptions } from './connections';
import type { StepContext } from './context';
import { revokeFormerlyCurrent } from './emergency';
import { emitFunctionMetric } from './function-metrics';
import { removeOverride, TAG_FORCE_FINISH } from './overrides';
import { promotionGate } from './promotion-gate';
import { readLastFailure, staleVersionRecordKeys, TAG_GATE, TAG_LAST_FAILURE } from './records';
import { readPending } from './secrets';
import { currentVersion, stillPending } from './still-pending';

export async function finishSecret(ctx: StepContext): Promise<void> {
  const pending = await readPending(ctx);
  const startedFrom = currentVersion(ctx.description);
  if (ctx.overrides.forceFinish) {
    ctx.logger.warn('finishSecret: FORCED by operator override; the promotion gate is skipped', {
      override: TAG_FORCE_FINISH,
      generation: pending.generation,
    });
  }
  await promotionGate(ctx, pending);

  if ((await stillPending(ctx, pending.generation)) === 'promoted') {
    ctx.logger.info(
      'finishSecret: already promoted by a concurrent invocation for this token; nothing to do',
      {
        generation: pending.generation,
      },
    );
    await afterPromotion(ctx);
    return;
  }
  // Never promote a credential that does not work: Secrets Manager may deliver finishSecret before
  // setSecret ever succeeded (a retry out of order), and neither a force nor a gate without live
  // consumers proves the pending user can log in.
  await assertPendingLogsIn(ctx, pending);
  if (ctx.overrides.forceFinish) await removeOverride(ctx, ctx.secretArn, TAG_FORCE_FINISH);

  try {
    await awsCall('UpdateSecretVersionStage', () =>
      ctx.secretsManager.send(
        new UpdateSecretVersionStageCommand({
          SecretId: ctx.secretArn,
          VersionStage: AWSCURRENT,
          MoveToVersionId: ctx.token,
          RemoveFromVersionId: startedFrom,
        }),
      ),
    );
  } catch (err) {
    // Another invocation for the same token may have moved the label between our read and our move.
    const state = await stillPending(ctx, pending.generation).catch(() => 'unknown' as const);
    if (state !== 'promoted') throw err;
    ctx.logger.info(
      'finishSecret: a concurrent invocation promoted this token first; nothing to do',
      {
        generation: pending.generation,
      },
    );
    await afterPromotion(ctx);
    return;
  }
  emitFunctionMetric(ctx, ROTATIONS_COMPLETED, 1, 'Count');
  ctx.logger.info('finishSecret: promoted to AWSCURRENT', {
    username: pending.username,
    generation: pending.generation,
    previousVersion: startedFrom,
  });
  await afterPromotion(ctx);
}

/** What an emergency rotation owes once its version is AWSCURRENT, then the records' cleanup. */
async function afterPromotion(ctx: StepContext): Promise<void> {
  if (ctx.overrides.emergency) await revokeFormerlyCurrent(ctx, ctx.token);
  await pruneRecords(ctx);
}

/**
 * Removes the records a promotion makes obsolete: version records of versions without a stage, the
 * gate record, and a last-failure record of this rotation (it was overcome). Read after the move,
 * since the move is what takes the stage off the formerly previous version. Never throws.
 */
async function pruneRecords(ctx: StepContext): Promise<void> {
  try {
    const fresh = await awsCall('DescribeSecret', () =>
      ctx.secretsManager.send(new DescribeSecretCommand({ SecretId: ctx.secretArn })),
    );
    const keys = staleVersionRecordKeys(fresh);
    const present = new Set((fresh.Tags ?? []).map((t) => t.Key));
    if (present.has(TAG_GATE)) keys.push(TAG_GATE);
    if (readLastFailure(fresh)?.versionId === ctx.token) keys.push(TAG_LAST_FAILURE);
    if (keys.length === 0) return;
    await awsCall('UntagResource', () =>
      ctx.secretsManager.send(new UntagResourceCommand({ SecretId: ctx.secretArn, TagKeys: keys })),
    );
  } catch (err) {
    ctx.logger.warn('finishSecret: could not prune the records (the next promotion prunes them)', {
      errorName: (err as Error).name,
      errorMessage: (err as Error).message,
    });
  }
}

async function assertPendingLogsIn(ctx: StepContext, pending: DbSecret): Promise<void> {
  try {
    await withClient(targetOf(pending), pending, pinnedConnectionOptions(ctx), (c) =>
      c.query('SELECT 1'),
    );
  } catch (err) {
    if (!(err instanceof AuthenticationFailedError)) throw err;
    throw new RotationStateError(
      `finishSecret will not promote generation ${pending.generation}: its credential ("${pending.username}") does not log in, ` +
        'so setSecret has not completed for this version. Nothing was changed; the retry of setSecret (or converge abort) goes on from here.',
      { cause: err },
    );
  }
}
