/**
 * The gates' decisions as pure functions of (registry, CloudWatch answer, generation, now), so
 * they are tested directly and shared by the promotion gate, the revocation guard and the CLI's
 * `status`.
 */
import type { StaleConsumer } from '../../shared/errors';
import { consumerGenerationStatus, type ConsumerGenerationStatus, type GenerationDatapoint } from '../../shared/metric-contract';
import type { ConsumerMode, ConsumerRegistration } from '../../shared/registry';

/** What one registered consumer's data says, with its mode. */
export interface ConsumerEvidence extends ConsumerGenerationStatus {
  readonly mode: ConsumerMode;
  readonly maxStalenessSeconds: number;
}

/** A gate's verdict and the evidence behind it. */
export interface GateDecision {
  /** True when nothing blocks. */
  readonly admit: boolean;
  /** The generation every consumer considered had to reach. */
  readonly requiredGeneration: number;
  /** Consumers that block, named with their last generation (empty when admitted). */
  readonly blocking: readonly StaleConsumer[];
  /** Evidence for every consumer considered (blocking or not), for logs and the CLI. */
  readonly consumers: readonly ConsumerEvidence[];
}

/** A CloudWatch answer, folded per consumer (see `collectGenerationResults`). */
export interface GenerationReadout {
  readonly series: ReadonlyMap<string, readonly GenerationDatapoint[]>;
  /** Period of the buckets, seconds. */
  readonly period: number;
  /** Evaluation time, milliseconds since the epoch. */
  readonly now: number;
}

/**
 * Promotion gate (DESIGN.md 4.4): every registered `live` consumer must be fresh and report a
 * generation >= the pending one. `scheduled` and `restart-only` consumers cannot pre-load
 * AWSPENDING, so waiting for them here could never end; the revocation guard waits for them instead.
 *
 * @example
 * const d = decidePromotion(config.consumers, readout, pending.generation);
 * if (!d.admit) throw new ConvergencePendingError(pending.generation, d.blocking);
 */
export function decidePromotion(
  registry: readonly ConsumerRegistration[],
  readout: GenerationReadout,
  pendingGeneration: number,
): GateDecision {
  return decide(registry.filter((c) => c.mode === 'live'), readout, pendingGeneration);
}

/**
 * Revocation guard, consumer part (DESIGN.md 4.5): every registered consumer, whatever its mode,
 * must be fresh and report a generation >= AWSCURRENT's before the AWSPREVIOUS user's password is
 * overwritten. A silent consumer blocks in every mode: silence cannot prove that a process still
 * holding the old credential is gone (a crashed reporter, a job between runs that kept a
 * connection). `maxStalenessSeconds` must therefore cover a scheduled job's interval; the
 * emergency override is the way past a consumer that is really gone.
 *
 * @example
 * const d = decideRevocation(config.consumers, readout, current.generation);
 */
export function decideRevocation(
  registry: readonly ConsumerRegistration[],
  readout: GenerationReadout,
  currentGeneration: number,
): GateDecision {
  return decide(registry, readout, currentGeneration);
}

/**
 * The blocking list when CloudWatch could not be read at all: every consumer is unverified (the
 * gates fail closed).
 */
export function unverifiedConsumers(registry: readonly ConsumerRegistration[]): StaleConsumer[] {
  return registry.map((c) => ({ consumer: c.name, reason: 'unverified' as const }));
}

function decide(consumers: readonly ConsumerRegistration[], readout: GenerationReadout, required: number): GateDecision {
  const evidence: ConsumerEvidence[] = [];
  const blocking: StaleConsumer[] = [];
  for (const c of consumers) {
    const status = consumerGenerationStatus(c.name, c.maxStalenessSeconds, readout.series.get(c.name) ?? [], readout.period, readout.now);
    evidence.push({ ...status, mode: c.mode, maxStalenessSeconds: c.maxStalenessSeconds });
    if (status.state === 'silent') {
      blocking.push({ consumer: c.name, reason: 'silent', lastGeneration: status.lastSeen?.generation });
    } else if (status.generation! < required) {
      blocking.push({ consumer: c.name, reason: 'stale', lastGeneration: status.generation });
    }
  }
  return { admit: blocking.length === 0, requiredGeneration: required, blocking, consumers: evidence };
}
