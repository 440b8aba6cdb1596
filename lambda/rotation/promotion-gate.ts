/**
 * Promotion gate: finishSecret calls {@link promotionGate} before it moves
 * AWSCURRENT. It returns when every registered `live` consumer reports the pending generation with
 * fresh data (and, with replica regions, when replication is InSync), and throws
 * ConvergencePendingError otherwise, with no side effect on the secret other than its hold record:
 * the `converge:gate` tag (lambda/rotation/records.ts) says since when the gate holds this version
 * and after how many evaluations, summed over invocations. It is written once per invocation that
 * holds (not per evaluation), best effort, and removed by finishSecret on promotion.
 *
 * It polls within the invocation: one GetMetricData call per evaluation for up to 500 consumers,
 * an evaluation every `gate.pollSeconds`, for at most `min(gate.maxWaitSeconds, time left in the
 * invocation - GATE_SAFETY_MARGIN_MS)`. CloudWatch failing is "not converged" (fail closed). The
 * operator's force-finish override skips the gate; the skipped verdict is still logged loudly.
 * After every pause it re-reads the secret's stages: an operator's abort ends the wait at once with
 * RotationAbortedError, and a concurrent promotion of the same token ends it as done.
 */
import {
  DescribeSecretCommand,
  TagResourceCommand,
  type DescribeSecretCommandOutput,
} from '@aws-sdk/client-secrets-manager';
import { AwsCallError, ConvergencePendingError, type StaleConsumer } from '../shared/errors';
import {
  CONVERGENCE_PENDING,
  GATE_WAIT_SECONDS,
  PENDING_GENERATION,
  REPORT_PERIOD_SECONDS,
  secretNameDimension,
} from '../shared/metric-contract';
import type { DbSecret } from '../shared/secret';
import { awsCall } from './aws-call';
import type { StepContext } from './context';
import { emitFunctionMetric } from './function-metrics';
import { decidePromotion, type GateDecision } from './gates/decision';
import { consumerEvidence } from './gates/evidence';
import { TAG_FORCE_FINISH } from './overrides';
import { encodeGateRecord, nextGateRecord, readGateRecord, TAG_GATE } from './records';
import { stillPending } from './still-pending';

/**
 * Time kept back from the invocation's remaining time when bounding the wait: enough for a last
 * evaluation (GetMetricData is bounded at 10 s), moving AWSCURRENT, clearing tags and logging.
 */
export const GATE_SAFETY_MARGIN_MS = 30_000;

/** One evaluation of the gate. */
export interface PromotionEvaluation {
  readonly admit: boolean;
  readonly blocking: readonly StaleConsumer[];
  /** Replica regions not InSync. */
  readonly replicasNotInSync: readonly string[];
  /** Consumer evidence when CloudWatch answered. */
  readonly decision?: GateDecision;
  /** Why the evaluation could not be completed (CloudWatch or DescribeSecret failed). */
  readonly error?: Error;
}

/**
 * @throws {@link ConvergencePendingError} when the fleet has not converged within the wait bound
 *
 * @example
 * await promotionGate(ctx, pending); // then move AWSCURRENT
 */
export async function promotionGate(ctx: StepContext, pending: DbSecret): Promise<void> {
  const log = ctx.logger;
  const live = ctx.config.consumers.filter((c) => c.mode === 'live');
  const scope = gateMetricScope(ctx);

  if (ctx.overrides.forceFinish) {
    // The operator decided; still say loudly what is being overridden (best effort, never blocking).
    const skipped = await evaluatePromotion(ctx, pending.generation);
    log.warn(
      'PROMOTION GATE OVERRIDDEN by operator (force-finish): promoting without convergence evidence',
      {
        override: TAG_FORCE_FINISH,
        pendingGeneration: pending.generation,
        wouldHaveAdmitted: skipped.admit,
        notConverged: skipped.blocking,
        replicasNotInSync: skipped.replicasNotInSync,
        evaluationError: skipped.error?.message,
      },
    );
    return;
  }

  const started = ctx.clock.now();
  const budgetMs = waitBudgetMs(ctx);
  const deadline = started + budgetMs;
  const pollMs = ctx.config.gate.pollSeconds * 1000;
  // Bounded in count as well as in (injected) time.
  const maxEvaluations = Math.floor(budgetMs / pollMs) + 2;
  const slowest = Math.max(0, ...live.map((c) => c.maxStalenessSeconds));
  if (live.length > 0 && budgetMs < (slowest + 2 * REPORT_PERIOD_SECONDS) * 1000) {
    // A consumer counts as moved only once its old reports left its freshness window, so a wait
    // shorter than that can only end in a hold (the alarm re-drive then finishes the rotation).
    log.warn(
      'promotion gate: the wait bound is shorter than the slowest live consumer needs to prove it moved',
      {
        maxWaitMs: budgetMs,
        neededMs: (slowest + 2 * REPORT_PERIOD_SECONDS) * 1000,
      },
    );
  }
  log.info('promotion gate: waiting for live consumers', {
    pendingGeneration: pending.generation,
    liveConsumers: live.length,
    maxWaitMs: budgetMs,
  });

  let last: PromotionEvaluation | undefined;
  let evaluations = 0;
  let firstHoldAt: Date | undefined;
  let recordedAt = 0;
  for (let evaluation = 1; evaluation <= maxEvaluations; evaluation++) {
    last = await evaluatePromotion(ctx, pending.generation);
    evaluations = evaluation;
    if (last.admit) {
      const waited = (ctx.clock.now() - started) / 1000;
      emitFunctionMetric(scope, GATE_WAIT_SECONDS, waited, 'Seconds');
      log.info('promotion gate: converged', {
        pendingGeneration: pending.generation,
        waitedSeconds: waited,
        evaluations: evaluation,
        consumers: last.decision?.consumers.map((c) => ({
          consumer: c.consumer,
          generation: c.generation,
        })),
      });
      return;
    }
    emitFunctionMetric(scope, PENDING_GENERATION, pending.generation, 'None');
    const left = deadline - ctx.clock.now();
    if (left <= 0 || evaluation === maxEvaluations) break;
    // The hold is on record from its first evaluation (and refreshed every minute), not only when
    // this invocation gives up: `converge status` shows the wait while it happens.
    if (firstHoldAt === undefined || ctx.clock.now() - recordedAt >= GATE_RECORD_REFRESH_MS) {
      recordedAt = ctx.clock.now();
      firstHoldAt ??= new Date(recordedAt);
      await recordGateHold(ctx, evaluation, firstHoldAt);
    }
    log.info('promotion gate: holding', {
      pendingGeneration: pending.generation,
      blocking: last.blocking,
      replicasNotInSync: last.replicasNotInSync,
      evaluationError: last.error?.message,
      nextEvaluationInMs: Math.min(pollMs, left),
    });
    await ctx.clock.sleep(Math.min(pollMs, left));
    // An operator may have aborted (or finished) the rotation while this invocation slept. A failed
    // read is not a verdict: the wait goes on, and finishSecret reads the stages again before it moves.
    const state = await stillPending(ctx, pending.generation).catch((err: unknown) => {
      if (err instanceof AwsCallError) return 'unknown' as const;
      throw err;
    });
    if (state === 'promoted') return;
  }

  emitFunctionMetric(scope, CONVERGENCE_PENDING, 1, 'Count');
  const waited = Math.round((ctx.clock.now() - started) / 1000);
  const error = new ConvergencePendingError(
    pending.generation,
    last?.blocking ?? [],
    `Waited ${waited} s (bound ${Math.round(budgetMs / 1000)} s); the alarm re-drive or the next retry completes it` +
      (last?.error ? `; last evaluation failed: ${last.error.message}` : ''),
    { cause: last?.error, replicasNotInSync: last?.replicasNotInSync },
  );
  log.warn('promotion gate: not converged, finishSecret held (nothing was changed)', {
    pendingGeneration: pending.generation,
    blocking: error.blocking,
    replicasNotInSync: error.replicasNotInSync,
    waitedSeconds: waited,
  });
  await recordGateHold(ctx, evaluations, firstHoldAt);
  throw error;
}

/** How often a gate that keeps holding refreshes its `converge:gate` record within one invocation. */
export const GATE_RECORD_REFRESH_MS = 60_000;

/**
 * Writes the `converge:gate` record after `evaluations` more evaluations held this version: the
 * first hold's time and the count carry on from the record the step started with (or, for this
 * version's first record, `firstHold`: when this invocation recorded its first hold). Best effort: a
 * failure is logged and the hold goes on as it would without the record.
 *
 * @example
 * await recordGateHold(ctx, 3);
 */
export async function recordGateHold(
  ctx: StepContext,
  evaluations: number,
  firstHold?: Date,
): Promise<void> {
  try {
    const next = nextGateRecord(
      readGateRecord(ctx.description),
      ctx.token,
      new Date(ctx.clock.now()),
      evaluations,
    );
    const record =
      firstHold && Date.parse(next.since) > firstHold.getTime()
        ? { ...next, since: firstHold.toISOString() }
        : next;
    await awsCall('TagResource', () =>
      ctx.secretsManager.send(
        new TagResourceCommand({
          SecretId: ctx.secretArn,
          Tags: [{ Key: TAG_GATE, Value: encodeGateRecord(record) }],
        }),
      ),
    );
  } catch (err) {
    ctx.logger.warn('promotion gate: could not record the hold in the converge:gate tag', {
      errorName: (err as Error).name,
      errorMessage: (err as Error).message,
    });
  }
}

/**
 * One evaluation without waiting (the re-drive's probe). When it does not admit, the pending
 * generation is reported as while the gate waits, so the ConvergenceLag alarm sees the rotation
 * still waiting, and the hold is counted in the `converge:gate` record.
 *
 * @example
 * if (!(await probePromotion(ctx, pending)).admit) return 'held';
 */
export async function probePromotion(
  ctx: StepContext,
  pending: DbSecret,
): Promise<PromotionEvaluation> {
  const evaluation = await evaluatePromotion(ctx, pending.generation);
  if (!evaluation.admit) {
    emitFunctionMetric(gateMetricScope(ctx), PENDING_GENERATION, pending.generation, 'None');
    await recordGateHold(ctx, 1);
  }
  return evaluation;
}

/** Where the gate's metrics go: the `SecretName` dimension is the secret's name. */
function gateMetricScope(ctx: StepContext) {
  return {
    config: ctx.config,
    secretName: secretNameDimension(ctx.secretName),
    clock: ctx.clock,
    writeMetric: ctx.writeMetric,
  };
}

/**
 * How long the gate may wait in this invocation: the configured maximum, cut to the time the
 * invocation has left minus {@link GATE_SAFETY_MARGIN_MS}; never negative.
 */
export function waitBudgetMs(ctx: Pick<StepContext, 'config' | 'remainingTimeMs'>): number {
  const configured = ctx.config.gate.maxWaitSeconds * 1000;
  const remaining = ctx.remainingTimeMs?.();
  const bound =
    remaining === undefined ? configured : Math.min(configured, remaining - GATE_SAFETY_MARGIN_MS);
  return Math.max(0, bound);
}

/**
 * One evaluation: consumer evidence from CloudWatch (one call for up to 500 live consumers) and,
 * when the secret has replicas, their replication status. Never throws: a failed read is an
 * evaluation that does not admit, with the error attached.
 *
 * @example
 * const e = await evaluatePromotion(ctx, pending.generation);
 */
export async function evaluatePromotion(
  ctx: StepContext,
  pendingGeneration: number,
): Promise<PromotionEvaluation> {
  const live = ctx.config.consumers.filter((c) => c.mode === 'live');
  const evidence = await consumerEvidence(ctx, live, (readout) =>
    decidePromotion(live, readout, pendingGeneration),
  );
  const { decision, blocking } = evidence;
  let error = evidence.error;
  let replicasNotInSync: string[] = [];
  if ((ctx.description.ReplicationStatus ?? []).length > 0) {
    try {
      const fresh = await awsCall('DescribeSecret', () =>
        ctx.secretsManager.send(new DescribeSecretCommand({ SecretId: ctx.secretArn })),
      );
      replicasNotInSync = notInSync(fresh);
    } catch (err) {
      error = error ?? (err as Error);
      replicasNotInSync = (ctx.description.ReplicationStatus ?? []).map(
        (r) => `${r.Region ?? '?'} (unknown)`,
      );
    }
  }
  return {
    admit: blocking.length === 0 && replicasNotInSync.length === 0 && error === undefined,
    blocking,
    replicasNotInSync,
    decision,
    error,
  };
}

function notInSync(description: DescribeSecretCommandOutput): string[] {
  return (description.ReplicationStatus ?? [])
    .filter((r) => r.Status !== 'InSync')
    .map((r) => `${r.Region ?? '?'} (${r.Status ?? 'unknown'})`);
}
