/**
 * finishSecret: after the promotion gate admits it, move AWSCURRENT to this rotation's version
 * (Secrets Manager then labels the old version AWSPREVIOUS) and clear the operator override tags.
 */
import { UntagResourceCommand, UpdateSecretVersionStageCommand } from '@aws-sdk/client-secrets-manager';
import { ROTATIONS_COMPLETED } from '../shared/metric-contract';
import { AWSCURRENT } from '../shared/secret';
import { awsCall } from './aws-call';
import type { StepContext } from './context';
import { emitFunctionMetric } from './function-metrics';
import { TAG_EMERGENCY, TAG_FORCE_FINISH } from './overrides';
import { promotionGate } from './promotion-gate';
import { readPending } from './secrets';

export async function finishSecret(ctx: StepContext): Promise<void> {
  const pending = await readPending(ctx);
  const currentVersion = Object.entries(ctx.description.VersionIdsToStages ?? {}).find(([, stages]) =>
    stages.includes(AWSCURRENT),
  )?.[0];
  if (ctx.overrides.forceFinish) {
    ctx.logger.warn('finishSecret: FORCED by operator override; the promotion gate is skipped', {
      override: TAG_FORCE_FINISH,
      generation: pending.generation,
    });
  }
  await promotionGate(ctx, pending);
  await awsCall('UpdateSecretVersionStage', () =>
    ctx.secretsManager.send(
      new UpdateSecretVersionStageCommand({
        SecretId: ctx.secretArn,
        VersionStage: AWSCURRENT,
        MoveToVersionId: ctx.token,
        RemoveFromVersionId: currentVersion,
      }),
    ),
  );
  if (ctx.overrides.emergency || ctx.overrides.forceFinish) {
    await awsCall('UntagResource', () =>
      ctx.secretsManager.send(new UntagResourceCommand({ SecretId: ctx.secretArn, TagKeys: [TAG_EMERGENCY, TAG_FORCE_FINISH] })),
    );
  }
  emitFunctionMetric(ctx, ROTATIONS_COMPLETED, 1, 'Count');
  ctx.logger.info('finishSecret: promoted to AWSCURRENT', {
    username: pending.username,
    generation: pending.generation,
    previousVersion: currentVersion,
  });
}
