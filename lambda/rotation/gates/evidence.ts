/**
 * The consumer half of both gates: read every consumer's reported generation (one GetMetricData
 * call per 500 consumers) and decide. A failed read never throws here: every consumer is then
 * `unverified` and the error is returned, so the gates fail closed.
 */
import type { StaleConsumer } from '../../shared/errors';
import { secretNameDimension } from '../../shared/metric-contract';
import type { ConsumerRegistration } from '../../shared/registry';
import type { StepContext } from '../context';
import { unverifiedConsumers, type GateDecision, type GenerationReadout } from './decision';
import { readGenerations } from './read-generations';

export interface ConsumerEvidenceResult {
  readonly decision?: GateDecision;
  readonly blocking: readonly StaleConsumer[];
  readonly error?: Error;
}

/**
 * @example
 * const { blocking, error } = await consumerEvidence(ctx, live, (r) => decidePromotion(live, r, pending.generation));
 */
export async function consumerEvidence(
  ctx: Pick<StepContext, 'cloudWatch' | 'config' | 'secretName' | 'clock'>,
  consumers: readonly ConsumerRegistration[],
  decide: (readout: GenerationReadout) => GateDecision,
): Promise<ConsumerEvidenceResult> {
  if (consumers.length === 0) return { blocking: [] };
  try {
    const readout = await readGenerations(ctx.cloudWatch, {
      namespace: ctx.config.metricNamespace,
      secretName: secretNameDimension(ctx.secretName),
      consumers,
      now: ctx.clock.now(),
      lookbackSeconds: ctx.config.gate.lookbackSeconds,
    });
    const decision = decide(readout);
    return { decision, blocking: decision.blocking };
  } catch (err) {
    return { blocking: unverifiedConsumers(consumers), error: err as Error };
  }
}
