/**
 * The gates' decisions as pure functions of (registry, CloudWatch answer, generation(s), now), so
 * they are tested directly and shared by the promotion gate, the revocation guard and the CLI's
 * `status`.
 */
import type { StaleConsumer } from '../../shared/errors';
import {
  consumerGenerationStatus,
  type ConsumerGenerationStatus,
  type GenerationDatapoint,
  type GenerationStatistic,
} from '../../shared/metric-contract';
import type { ConsumerMode, ConsumerRegistration } from '../../shared/registry';

/** What one registered consumer's data says, with its mode. */
export interface ConsumerEvidence extends ConsumerGenerationStatus {
  readonly mode: ConsumerMode;
  readonly maxStalenessSeconds: number;
  /** The bucket size this consumer was judged with, seconds. */
  readonly period: number;
}

/** A gate's verdict and the evidence behind it. */
export interface GateDecision {
  /** True when nothing blocks. */
  readonly admit: boolean;
  /**
   * Promotion: the generation every live consumer had to reach. Revocation: AWSCURRENT's
   * generation (see {@link GateDecision.acceptedGenerations} for what was accepted exactly).
   */
  readonly requiredGeneration: number;
  /** Revocation only: the generations a consumer's processes may report (current, and pending when given). */
  readonly acceptedGenerations?: readonly number[];
  /** Consumers that block, named with their last generation (empty when admitted). */
  readonly blocking: readonly StaleConsumer[];
  /** Evidence for every consumer considered (blocking or not), for logs and the CLI. */
  readonly consumers: readonly ConsumerEvidence[];
}

/** A CloudWatch answer, folded per consumer (see `collectGenerationResults`). */
export interface GenerationReadout {
  readonly series: ReadonlyMap<string, readonly GenerationDatapoint[]>;
  /**
   * Bucket size per consumer, seconds: each consumer is read at the period that fits its own
   * maxStalenessSeconds (see `periodForStaleness`), and judged with it.
   */
  readonly periods: ReadonlyMap<string, number>;
  /** Statistics each bucket carries (`Minimum`, and `Maximum` for the revocation guard). */
  readonly statistics: readonly GenerationStatistic[];
  /** Evaluation time, milliseconds since the epoch. */
  readonly now: number;
}

/** The generations the revocation guard accepts from a consumer's processes. */
export interface AcceptedGenerations {
  /** AWSCURRENT's generation. */
  readonly current: number;
  /** This rotation's AWSPENDING generation, when a rotation is in progress (a live consumer may already use it). */
  readonly pending?: number;
}

/**
 * Promotion gate (promotion-gate.ts): every registered `live` consumer must be fresh and report a
 * generation >= the pending one. `scheduled` and `restart-only` consumers cannot pre-load
 * AWSPENDING, so waiting for them here could never end; the revocation guard waits for them instead.
 * Reads each bucket's Minimum only.
 *
 * @throws Error when the readout has no period for a live consumer (it was not part of the read)
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
  const evidence: ConsumerEvidence[] = [];
  const blocking: StaleConsumer[] = [];
  for (const c of registry.filter((r) => r.mode === 'live')) {
    const e = consumerEvidence(c, readout);
    evidence.push(e);
    const behind = silentOrBehind(e, pendingGeneration);
    if (behind) blocking.push(behind);
  }
  return {
    admit: blocking.length === 0,
    requiredGeneration: pendingGeneration,
    blocking,
    consumers: evidence,
  };
}

/**
 * Revocation guard, consumer part (revocation-guard.ts): before the AWSPREVIOUS user's password is
 * overwritten, every registered consumer, whatever its mode, must be fresh and every fresh bucket's
 * Minimum AND Maximum must be exactly `accepted.current` or `accepted.pending`.
 *
 * - Below current: `stale` (a process still on the previous user).
 * - Above current and not this rotation's pending generation: `ahead`. Generations are never reused,
 *   so that is an aborted rotation's burnt credential, and an aborted rotation's pending user is the
 *   very alternate user about to be re-passworded. The Maximum is what shows it: a consumer whose
 *   processes are split between current and a burnt generation has a Minimum of current.
 * - Silent blocks in every mode: silence cannot prove that a process still holding the old
 *   credential is gone (a crashed reporter, a job between runs that kept a connection).
 *   `maxStalenessSeconds` must therefore cover a scheduled job's interval; the emergency override
 *   is the way past a consumer that is really gone.
 *
 * Needs a readout with the Maximum (read with `REVOCATION_STATISTICS`). Limit: a process on a burnt
 * generation strictly BETWEEN current and pending is hidden when the same bucket also holds a
 * process on current and one on pending (Minimum current, Maximum pending).
 *
 * @throws Error when the readout carries no Maximum, or has no period for a consumer
 *
 * @example
 * const d = decideRevocation(config.consumers, readout, { current: current.generation, pending: pending?.generation });
 * if (!d.admit) throw new RevocationBlockedError(username, d.blocking, 0);
 */
export function decideRevocation(
  registry: readonly ConsumerRegistration[],
  readout: GenerationReadout,
  accepted: AcceptedGenerations,
): GateDecision {
  if (!readout.statistics.includes('Maximum')) {
    throw new Error(
      "the revocation guard needs each bucket's Maximum: read LoadedGeneration with REVOCATION_STATISTICS",
    );
  }
  const acceptedGenerations =
    accepted.pending === undefined || accepted.pending === accepted.current
      ? [accepted.current]
      : [accepted.current, accepted.pending];
  const evidence: ConsumerEvidence[] = [];
  const blocking: StaleConsumer[] = [];
  for (const c of registry) {
    const e = consumerEvidence(c, readout);
    evidence.push(e);
    const behind = silentOrBehind(e, accepted.current);
    if (behind) {
      blocking.push(behind);
      continue;
    }
    const unaccepted = (e.generations ?? []).filter((g) => !acceptedGenerations.includes(g));
    if (unaccepted.length > 0)
      blocking.push({ consumer: c.name, reason: 'ahead', lastGeneration: Math.max(...unaccepted) });
  }
  return {
    admit: blocking.length === 0,
    requiredGeneration: accepted.current,
    acceptedGenerations,
    blocking,
    consumers: evidence,
  };
}

/**
 * The blocking list when CloudWatch could not be read at all: every consumer is unverified (the
 * gates fail closed).
 *
 * @example
 * const blocking = unverifiedConsumers(config.consumers);
 */
export function unverifiedConsumers(registry: readonly ConsumerRegistration[]): StaleConsumer[] {
  return registry.map((c) => ({ consumer: c.name, reason: 'unverified' as const }));
}

function consumerEvidence(c: ConsumerRegistration, readout: GenerationReadout): ConsumerEvidence {
  const period = readout.periods.get(c.name);
  if (period === undefined)
    throw new Error(
      `the CloudWatch readout has no period for consumer "${c.name}": it was not part of the read`,
    );
  const status = consumerGenerationStatus(
    c.name,
    c.maxStalenessSeconds,
    readout.series.get(c.name) ?? [],
    period,
    readout.now,
  );
  return { ...status, mode: c.mode, maxStalenessSeconds: c.maxStalenessSeconds, period };
}

/** A consumer that is silent, or whose lowest fresh generation is below `required`; else undefined. */
function silentOrBehind(e: ConsumerEvidence, required: number): StaleConsumer | undefined {
  if (e.state === 'silent')
    return { consumer: e.consumer, reason: 'silent', lastGeneration: e.lastSeen?.generation };
  if (e.generation! < required)
    return { consumer: e.consumer, reason: 'stale', lastGeneration: e.generation };
  return undefined;
}
