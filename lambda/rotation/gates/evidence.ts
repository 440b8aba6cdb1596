/**
 * The consumer half of both gates: read every consumer's reported generation (one GetMetricData
 * call for up to 500 consumers reading the Minimum, 250 reading Minimum and Maximum) and decide. A
 * failed read or decision never throws here: every consumer is then `unverified` and the error is
 * returned, so the gates fail closed.
 */
import type { StaleConsumer } from '../../shared/errors';
import { secretNameDimension, type GenerationStatistic } from '../../shared/metric-contract';
import type { ConsumerRegistration } from '../../shared/registry';
import type { StepContext } from '../context';
import { unverifiedConsumers, type GateDecision, type GenerationReadout } from './decision';
import { readGenerations } from './read-generations';

export interface ConsumerEvidenceResult {
  readonly decision?: GateDecision;
  readonly blocking: readonly StaleConsumer[];
  readonly error?: Error;
}

/** Options of {@link consumerEvidence}. */
export interface ConsumerEvidenceOptions {
  /**
   * Statistics read per bucket. The revocation guard needs `['Minimum', 'Maximum']`
   * (`REVOCATION_STATISTICS`): `decideRevocation` refuses a readout without the Maximum.
   *
   * @default PROMOTION_STATISTICS (Minimum only)
   */
  readonly statistics?: readonly GenerationStatistic[];
}

/**
 * @example
 * const { blocking, error } = await consumerEvidence(ctx, live, (r) => decidePromotion(live, r, pending.generation));
 * const guard = await consumerEvidence(ctx, all, (r) => decideRevocation(all, r, { current: 4, pending: 5 }), { statistics: ['Minimum', 'Maximum'] });
 */
export async function consumerEvidence(
  ctx: Pick<StepContext, 'cloudWatch' | 'config' | 'secretName' | 'clock'>,
  consumers: readonly ConsumerRegistration[],
  decide: (readout: GenerationReadout) => GateDecision,
  options: ConsumerEvidenceOptions = {},
): Promise<ConsumerEvidenceResult> {
  if (consumers.length === 0) return { blocking: [] };
  try {
    const readout = await readGenerations(ctx.cloudWatch, {
      namespace: ctx.config.metricNamespace,
      secretName: secretNameDimension(ctx.secretName),
      consumers,
      now: ctx.clock.now(),
      lookbackSeconds: ctx.config.gate.lookbackSeconds,
      statistics: options.statistics,
    });
    const decision = decide(readout);
    return { decision, blocking: decision.blocking };
  } catch (err) {
    return { blocking: unverifiedConsumers(consumers), error: err as Error };
  }
}
