/**
 * `converge status`: every registered consumer judged against the rotation waiting now (the
 * promotion gate: live consumers must report the pending generation) and the next one (the
 * revocation guard: every consumer on exactly the current or pending generation), from the same
 * `LoadedGeneration` series the gates read (lambda/rotation/gates/read-generations.ts) and with the
 * gates' own decisions (lambda/rotation/gates/decision.ts), so status can never disagree with them.
 *
 * What it adds to the gates' verdicts is time: since when a consumer has been below the generation
 * it needs (the start of its continuous run of data points below it), since when it has been silent
 * (its last data point), and, for a consumer that already reports the new generation but whose
 * older data points are still inside its freshness window, how long until they leave it.
 */
import {
  decidePromotion,
  decideRevocation,
  type AcceptedGenerations,
  type ConsumerEvidence,
  type GenerationReadout,
} from '../../lambda/rotation/gates/decision';
import type { GenerationDatapoint } from '../../lambda/shared/metric-contract';
import type { ConsumerMode, ConsumerRegistration } from '../../lambda/shared/registry';

/** One process seen in `pg_stat_activity` (`status --sessions`), from its `cv1` application_name. */
export interface ProcessView {
  readonly host: string;
  readonly pid: number;
  /** Generation of the credential its sessions logged in with. */
  readonly generation: number;
  /** The database user of those sessions. */
  readonly user?: string;
  readonly sessions: number;
  /** Earliest `backend_start` of those sessions, ISO 8601. */
  readonly oldestBackendStart?: string;
}

/**
 * - `BLOCKING`: the waiting promotion gate needs it (or, with nothing waiting, or a rotation held
 *   by the revocation guard, that guard holds on it); `reason` says why.
 * - `STALE`: it reports a generation below one it will need (not blocking anything yet).
 * - `SILENT`: no data point inside its freshness window.
 * - `AHEAD`: a process reports a generation newer than current that is not the pending one (an
 *   aborted rotation's credential).
 * - `UNVERIFIED`: CloudWatch could not be read.
 * - `OK`.
 */
export type ConsumerState = 'BLOCKING' | 'STALE' | 'SILENT' | 'OK' | 'AHEAD' | 'UNVERIFIED';

export interface ConsumerView {
  readonly name: string;
  readonly mode: ConsumerMode;
  readonly maxStalenessSeconds: number;
  readonly state: ConsumerState;
  /** With `BLOCKING`: the gate that holds on it. */
  readonly blocks?: 'promotion' | 'revocation';
  /** With `BLOCKING`: why. */
  readonly reason?: 'stale' | 'silent' | 'ahead';
  /** The generation it has to report (the pending one for the promotion gate, else the current one). */
  readonly requiredGeneration?: number;
  /** Lowest generation reported in its freshness window (what the gates judge). */
  readonly generation?: number;
  /** Generation of its newest data point, fresh or not. */
  readonly lastSeenGeneration?: number;
  /**
   * Stale: the start of the continuous run of data points below the required generation, up to now.
   * Silent: the time of its last data point (undefined: none in the hour read). ISO 8601.
   */
  readonly since?: string;
  /** `since` is only a lower bound: the run began before the data read (the last hour). */
  readonly sinceBeforeRead?: boolean;
  /** Seconds since its newest data point. */
  readonly dataAgeSeconds?: number;
  /**
   * It already reports the required generation, but older data points are still inside its
   * freshness window: they leave it in this many seconds (then the gate sees it moved).
   */
  readonly windowClearsInSeconds?: number;
  /** With `--sessions`: its processes (every user), from the sessions' application_name. */
  readonly processes?: readonly ProcessView[];
}

/** What the consumers are judged against. */
export interface ConsumerRequirements {
  /** AWSCURRENT's generation. */
  readonly current: number;
  /** The waiting version's generation, when one waits and its generation is known. */
  readonly pending?: number;
  /** The last operator abort (`converge:aborted`), which the revocation guard takes into account. */
  readonly aborted?: AcceptedGenerations['aborted'];
  /**
   * `blocking`: the promotion gate is holding now, its blockers are BLOCKING; `pending`: a rotation
   * is in flight but the gate is not (yet) what holds it: live consumers behind the pending
   * generation are STALE; `none`.
   */
  readonly promotion: 'blocking' | 'pending' | 'none';
  /** The revocation guard is what matters now (nothing waits, or it holds the waiting rotation): its blockers are BLOCKING. */
  readonly revocationBlocks: boolean;
  /** How far back the series was read, seconds (for {@link ConsumerView.sinceBeforeRead}). */
  readonly lookbackSeconds: number;
}

/**
 * Judges every registered consumer. `readout` must carry the Maximum (read with
 * `REVOCATION_STATISTICS`).
 *
 * @example
 * const readout = await readGenerations(cw, { namespace, secretName, consumers: registry, now, lookbackSeconds: 3600, statistics: REVOCATION_STATISTICS });
 * const views = judgeConsumers(registry, readout, { current: 7, pending: 8, promotion: 'blocking', revocationBlocks: false, lookbackSeconds: 3600 });
 */
export function judgeConsumers(
  registry: readonly ConsumerRegistration[],
  readout: GenerationReadout,
  req: ConsumerRequirements,
): ConsumerView[] {
  const now = readout.now;
  const revocation = decideRevocation(registry, readout, {
    current: req.current,
    pending: req.pending,
  });
  const promotion =
    req.pending !== undefined && req.promotion !== 'none'
      ? decidePromotion(registry, readout, req.pending)
      : undefined;
  return revocation.consumers.map((e): ConsumerView => {
    const series = readout.series.get(e.consumer) ?? [];
    const base = {
      name: e.consumer,
      mode: e.mode,
      maxStalenessSeconds: e.maxStalenessSeconds,
      generation: e.generation,
      lastSeenGeneration: e.lastSeen?.generation,
      dataAgeSeconds: e.lastSeen
        ? Math.max(0, Math.round((now - e.lastSeen.timestamp) / 1000))
        : undefined,
    };
    const promo = promotion?.blocking.find((b) => b.consumer === e.consumer);
    const rev = revocation.blocking.find((b) => b.consumer === e.consumer);
    if (promo && (promo.reason === 'stale' || promo.reason === 'silent')) {
      const timing = timingOf(e, series, req.pending!, now, req.lookbackSeconds);
      if (req.promotion === 'blocking') {
        return {
          ...base,
          state: 'BLOCKING',
          blocks: 'promotion',
          reason: promo.reason,
          requiredGeneration: req.pending,
          ...timing,
        };
      }
      return {
        ...base,
        state: e.state === 'silent' ? 'SILENT' : 'STALE',
        requiredGeneration: req.pending,
        ...timing,
      };
    }
    if (rev && (rev.reason === 'stale' || rev.reason === 'silent' || rev.reason === 'ahead')) {
      const timing =
        rev.reason === 'ahead' ? {} : timingOf(e, series, req.current, now, req.lookbackSeconds);
      if (req.revocationBlocks) {
        return {
          ...base,
          state: 'BLOCKING',
          blocks: 'revocation',
          reason: rev.reason,
          requiredGeneration: req.current,
          ...timing,
        };
      }
      const state = rev.reason === 'silent' ? 'SILENT' : rev.reason === 'ahead' ? 'AHEAD' : 'STALE';
      return { ...base, state, requiredGeneration: req.current, ...timing };
    }
    return {
      ...base,
      state: 'OK',
      requiredGeneration: promotion && e.mode === 'live' ? req.pending : req.current,
    };
  });
}

/**
 * Every consumer `UNVERIFIED` (CloudWatch could not be read).
 *
 * @example
 * const views = unverifiedConsumers(registry);
 */
export function unverifiedConsumers(registry: readonly ConsumerRegistration[]): ConsumerView[] {
  return registry.map((c) => ({
    name: c.name,
    mode: c.mode,
    maxStalenessSeconds: c.maxStalenessSeconds,
    state: 'UNVERIFIED',
  }));
}

/**
 * The start of the continuous run of data points whose Minimum is below `required`, up to the
 * newest one (undefined when the newest is not below it), and whether that run reaches back to the
 * start of what was read (then the start is only a lower bound).
 *
 * @example
 * staleRunStart(series, 8, now - 3_600_000, 60); // { since: 1714557600000, beforeRead: false }
 */
export function staleRunStart(
  points: readonly GenerationDatapoint[],
  required: number,
  readStart: number,
  period: number,
): { since?: number; beforeRead: boolean } {
  const newestFirst = [...points].sort((a, b) => b.timestamp - a.timestamp);
  let since: number | undefined;
  for (const p of newestFirst) {
    if (p.minimum >= required) break;
    since = p.timestamp;
  }
  if (since === undefined) return { beforeRead: false };
  const oldest = newestFirst[newestFirst.length - 1];
  return { since, beforeRead: oldest.timestamp === since && since <= readStart + period * 1000 };
}

function timingOf(
  e: ConsumerEvidence,
  series: readonly GenerationDatapoint[],
  required: number,
  now: number,
  lookbackSeconds: number,
): Pick<ConsumerView, 'since' | 'sinceBeforeRead' | 'windowClearsInSeconds'> {
  if (e.state === 'silent') {
    return e.lastSeen
      ? { since: new Date(e.lastSeen.timestamp).toISOString() }
      : { sinceBeforeRead: true };
  }
  const run = staleRunStart(series, required, now - lookbackSeconds * 1000, e.period);
  if (run.since !== undefined) {
    return {
      since: new Date(run.since).toISOString(),
      ...(run.beforeRead ? { sinceBeforeRead: true } : {}),
    };
  }
  // The newest data already reports the required generation; the freshness window still holds
  // older data points below it. The newest of those leaves the window when its bucket ends
  // maxStaleness before now (see consumerGenerationStatus in lambda/shared/metric-contract.ts).
  const lastBelow = series
    .filter((p) => p.minimum < required)
    .reduce((t, p) => Math.max(t, p.timestamp), -Infinity);
  if (!Number.isFinite(lastBelow)) return {};
  const clears = lastBelow + e.period * 1000 + e.maxStalenessSeconds * 1000 - now;
  return { windowClearsInSeconds: Math.max(0, Math.ceil(clears / 1000)) };
}
