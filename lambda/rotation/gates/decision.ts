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
import type { AbortRecord } from '../aborted';

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
  /**
   * Revocation only, when an abort record was given and applies: consumers whose data points of the
   * aborted generation were set aside because they predate the abort and the consumer reported
   * after it (see {@link decideRevocation}).
   */
  readonly abortedBefore?: readonly string[];
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
  /**
   * The last operator abort (the `converge:aborted` tag, lambda/rotation/aborted.ts). Data points of
   * its generation that a consumer published before it are not evidence of use once that consumer
   * has reported after it.
   */
  readonly aborted?: Pick<AbortRecord, 'generation' | 'at'>;
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
 * - After an operator abort (`accepted.aborted`, the `converge:aborted` tag): a live consumer that had
 *   adopted the aborted rotation's pending credential reported that generation until its next
 *   refresh. Buckets of the aborted generation that ENDED before the abort are set aside once the
 *   consumer has a fresh bucket that STARTED after it: the consumer reported after the abort, so it
 *   was alive to see it. A bucket of the aborted generation that straddles the abort or lies after
 *   it still blocks (a process kept the aborted credential), and so does a consumer with no bucket
 *   after the abort. What a process that went quiet still holds is the sessions check's to see
 *   (revocation-guard.ts counts the user's sessions whatever this decides).
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
  // An abort record counts only for a generation no rotation stands behind (never current or pending).
  const aborted =
    accepted.aborted &&
    accepted.aborted.generation > accepted.current &&
    !acceptedGenerations.includes(accepted.aborted.generation)
      ? accepted.aborted
      : undefined;
  const abortedBefore: string[] = [];
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
    const { unaccepted, setAside } = unacceptedGenerations(
      e,
      readout,
      acceptedGenerations,
      aborted,
    );
    if (setAside) abortedBefore.push(c.name);
    if (unaccepted.length > 0)
      blocking.push({ consumer: c.name, reason: 'ahead', lastGeneration: Math.max(...unaccepted) });
  }
  return {
    admit: blocking.length === 0,
    requiredGeneration: accepted.current,
    acceptedGenerations,
    blocking,
    consumers: evidence,
    ...(aborted ? { abortedBefore } : {}),
  };
}

/**
 * The generations outside `accepted` in a consumer's fresh buckets (Minimum and Maximum), leaving
 * out the aborted generation's buckets that ended before the abort when the consumer has a fresh
 * bucket that started after it. A bucket that straddles the abort counts: its points cannot be told
 * apart. `setAside` says whether anything was left out.
 */
function unacceptedGenerations(
  e: ConsumerEvidence,
  readout: GenerationReadout,
  accepted: readonly number[],
  aborted: Pick<AbortRecord, 'generation' | 'at'> | undefined,
): { unaccepted: number[]; setAside: boolean } {
  if (e.state !== 'fresh') return { unaccepted: [], setAside: false };
  const cutoff = readout.now - e.maxStalenessSeconds * 1000;
  const fresh = (readout.series.get(e.consumer) ?? []).filter(
    (p) => p.timestamp + e.period * 1000 > cutoff,
  );
  const reportedAfter = aborted !== undefined && fresh.some((p) => p.timestamp >= aborted.at);
  const unaccepted = new Set<number>();
  let setAside = false;
  for (const p of fresh) {
    const before = p.timestamp + e.period * 1000 <= (aborted?.at ?? Number.NEGATIVE_INFINITY);
    for (const g of p.maximum === undefined ? [p.minimum] : [p.minimum, p.maximum]) {
      if (accepted.includes(g)) continue;
      if (reportedAfter && before && g === aborted!.generation) setAside = true;
      else unaccepted.add(g);
    }
  }
  return { unaccepted: [...unaccepted].sort((a, b) => a - b), setAside };
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
