/**
 * The blast-radius calculation behind `converge blast-radius`: from the consumer registry (what is
 * declared) and what is observed (CloudWatch reports, open sessions), how long a rotation of this
 * secret needs the old and the new credential to be valid together, when it can expect promotion
 * and safe revocation, and what makes it fragile. A pure function of its input, so the numbers are
 * tested directly (test/unit/blast-radius-model.test.ts).
 *
 * ## The timeline it models (all times from setSecret, when the new credential starts to log in)
 *
 * For a consumer `c` the registry declares `S_c` (maxStalenessSeconds) and the metric contract fixes
 * `B_c`, the CloudWatch bucket its reports are read in (`periodForStaleness`, lambda/shared/metric-contract.ts).
 * Observed: `R_c`, its report interval (the median gap between its data points; `REPORT_PERIOD_SECONDS`
 * assumed when fewer than two were seen), and `L_c`, its connection lifetime (the oldest of its open
 * sessions, `now - backend_start`, or the largest `PoolAgeSecondsMax` it reported, whichever is larger;
 * PostgreSQL shows `backend_start` of another user's session only to a role with that user's
 * privileges or those of `pg_read_all_stats`).
 * Assumed: `F`, how often a live consumer refreshes the secret (the consumer library's default TTL,
 * 60 s, unless given).
 *
 * - **Live adoption path** `A_c = F + R_c + S_c + B_c`: the process sees AWSPENDING at its next
 *   refresh (F), its reports carry the new generation at most one report later (R), and the promotion
 *   gate counts it as moved only when the last bucket that held the old generation has left its
 *   freshness window (S + B: the gate takes the Minimum over every bucket overlapping `(now - S, now]`,
 *   see `consumerGenerationStatus`).
 * - **Scheduled run** `J_c = S_c + B_c`: a scheduled job loads AWSCURRENT when it runs, so it can move
 *   only after promotion; it runs within its interval, which `S_c` must cover (README, "The consumer
 *   registry"), and its last old report leaves the window S + B after its bucket started.
 * - **Connection lifetime** `L = max L_c`: a session opened with the old credential just before a
 *   process moved keeps it until it closes; the revocation guard holds while any session of the old
 *   user is open. (A `RotatingPgPool` drains its old connections when it swaps, so for it `L` is an
 *   upper bound.)
 * - **Restart-only** consumers move only when someone restarts them: no time bounds them.
 *
 * From these:
 *
 * - `overlap = max A (live) + L + max J (scheduled)`: how long both credentials must stay valid, the
 *   worst case where the three happen one after the other (a job run that started with the old
 *   credential just before promotion, on a connection as old as the oldest seen). A missing kind
 *   counts 0.
 * - `setSecret → promotion = max A + P`, P being the gate's poll interval (`CONVERGE_GATE_POLL_SECONDS`):
 *   the gate notices at its next evaluation. 0 without live consumers (nothing holds finishSecret).
 *   Longer than the gate's `CONVERGE_GATE_MAX_WAIT_SECONDS`: the first finishSecret ends held and the
 *   ConvergenceLag alarm's re-drive promotes (a warning says so).
 * - `setSecret → safe revocation = promotion + L + max J`: when the revocation guard of the next
 *   rotation can admit. Undefined (unbounded) while a restart-only consumer is registered.
 */
import type { GateConfig } from '../../lambda/rotation/config';
import { groupSessions } from '../../lambda/rotation/gates/session-groups';
import type { UserSession } from '../../lambda/rotation/gates/sessions';
import { attributedTo } from '../../lambda/shared/application-name';
import {
  REPORT_PERIOD_SECONDS,
  type GenerationDatapoint,
} from '../../lambda/shared/metric-contract';
import type { ConsumerMode, ConsumerRegistration } from '../../lambda/shared/registry';
import type { ProcessView as StatusProcessView } from './consumer-series';

/** How often a live consumer refreshes the secret unless told: the consumer library's default TTL (consumer/refreshing-secret.ts, `ttlMs`). */
export const ASSUMED_REFRESH_SECONDS = 60;

/** From this many registered consumers on, one credential is called a shared failure domain. */
export const SHARED_CREDENTIAL_CONSUMERS = 5;

/** A session of the secret's users as the master sees it, with the user it belongs to. */
export interface ObservedSession extends UserSession {
  /** The PostgreSQL user the session is logged in as. */
  readonly user: string;
}

/** What CloudWatch shows of one consumer over the lookback. */
export interface ConsumerSeries {
  /** Its `LoadedGeneration` buckets (any order): each bucket's start and Minimum. */
  readonly points: readonly GenerationDatapoint[];
  /** The bucket size it was read at, seconds. */
  readonly bucketSeconds: number;
  /** The largest `PoolAgeSecondsMax` it reported in the lookback, seconds; undefined when none. */
  readonly poolAgeSecondsMax?: number;
}

/** Everything {@link computeBlastRadius} needs; every time is milliseconds since the epoch. */
export interface BlastRadiusInput {
  readonly registry: readonly ConsumerRegistration[];
  /** Per registered consumer, what CloudWatch returned; undefined when CloudWatch could not be read. */
  readonly series?: ReadonlyMap<string, ConsumerSeries>;
  /** How far back the series were read, seconds (for the wording of "not seen"). */
  readonly lookbackSeconds: number;
  /** Open sessions of the secret's users (current and alternate); undefined when not read. */
  readonly sessions?: readonly ObservedSession[];
  /** The rotation function's gate settings. */
  readonly gate: GateConfig;
  /** How often live consumers refresh the secret, seconds. @default ASSUMED_REFRESH_SECONDS */
  readonly refreshSeconds?: number;
  /** Time between two scheduled rotations, seconds, when the secret's schedule is a fixed rate. */
  readonly rotationIntervalSeconds?: number;
  readonly now: number;
}

/** One process holding sessions, as `status` shows it, with the age of its oldest session. */
export interface ProcessView extends StatusProcessView {
  /** Seconds since its oldest session started. */
  readonly connectionAgeSeconds?: number;
}

/** A consumer's adoption path, its terms named. */
export type AdoptionPath =
  | {
      readonly kind: 'live';
      readonly refreshSeconds: number;
      readonly reportPeriodSeconds: number;
      readonly maxStalenessSeconds: number;
      readonly bucketSeconds: number;
      readonly totalSeconds: number;
    }
  | {
      readonly kind: 'scheduled';
      readonly maxStalenessSeconds: number;
      readonly bucketSeconds: number;
      readonly totalSeconds: number;
    }
  | { readonly kind: 'restart-only' };

export interface ConsumerRadius {
  readonly name: string;
  readonly mode: ConsumerMode;
  /** Declared. */
  readonly maxStalenessSeconds: number;
  /** Observed: seconds since its newest data point (bucket start); undefined when none in the lookback. */
  readonly reportingAgeSeconds?: number;
  /** Observed: the generation of its newest bucket (Minimum over its processes). */
  readonly reportedGeneration?: number;
  /** Its report interval, seconds, and whether it was observed or assumed. */
  readonly reportPeriodSeconds: number;
  readonly reportPeriodSource: 'observed' | 'assumed';
  /** Observed: processes holding sessions (with --sessions). */
  readonly processes?: readonly ProcessView[];
  /** Observed: the oldest of its sessions, seconds (with --sessions). */
  readonly connectionAgeSeconds?: number;
  /** Observed: the largest PoolAgeSecondsMax in the lookback. */
  readonly poolAgeSecondsMax?: number;
  /** max(connectionAgeSeconds, poolAgeSecondsMax); undefined when neither was observed. */
  readonly connectionLifetimeSeconds?: number;
  readonly adoption: AdoptionPath;
}

/** A session not opened through the consumer library. */
export interface UnattributedSession {
  readonly user: string;
  readonly pid: number;
  readonly applicationName: string;
  readonly clientAddr: string | null;
  readonly backendStart: string | null;
  readonly ageSeconds?: number;
}

/** One term of the overlap: its value and the consumer it comes from. */
export interface OverlapTerm {
  readonly seconds: number;
  readonly consumer?: string;
}

export type WarningCode =
  | 'cloudwatch-unreadable'
  | 'no-consumers'
  | 'no-reports'
  | 'not-reporting'
  | 'report-gap'
  | 'shared-credential'
  | 'restart-only'
  | 'unattributed-sessions'
  | 'unregistered-consumer'
  | 'connection-lifetime-unobserved'
  | 'connection-ages-hidden'
  | 'gate-wait'
  | 'rotation-interval';

export interface BlastRadiusWarning {
  readonly code: WarningCode;
  readonly message: string;
  readonly consumers?: readonly string[];
}

export interface BlastRadius {
  readonly counts: Record<ConsumerMode, number>;
  readonly consumers: readonly ConsumerRadius[];
  /** Attributed sessions naming a consumer that is not registered (the gates do not wait for it). */
  readonly unregistered: readonly {
    readonly consumer: string;
    readonly processes: readonly ProcessView[];
  }[];
  /** Sessions not opened through the library; undefined when sessions were not read. */
  readonly unattributed?: readonly UnattributedSession[];
  readonly overlap: {
    readonly seconds: number;
    readonly terms: {
      readonly liveAdoption: OverlapTerm;
      readonly connectionLifetime: OverlapTerm & { readonly observed: boolean };
      readonly scheduledRun: OverlapTerm;
    };
  };
  readonly expected: {
    /** setSecret → promotion, seconds. */
    readonly promotionSeconds: number;
    /** `immediate`: no live consumer; `first-invocation`: within the gate's wait; `re-drive`: after it. */
    readonly promotionVia: 'immediate' | 'first-invocation' | 're-drive';
    /** setSecret → safe revocation, seconds; undefined while restart-only consumers must be restarted. */
    readonly safeRevocationSeconds?: number;
    /** Restart-only consumers the revocation waits for. */
    readonly waitsForRestartOf: readonly string[];
  };
  readonly assumptions: { readonly refreshSeconds: number; readonly gate: GateConfig };
  readonly warnings: readonly BlastRadiusWarning[];
}

/**
 * Computes the blast radius (see the module comment for every formula).
 *
 * @example
 * const r = computeBlastRadius({ registry, series, lookbackSeconds: 3600, sessions, gate: config.gate, now: Date.now() });
 * console.log(`overlap ${r.overlap.seconds} s, promotion after ${r.expected.promotionSeconds} s`);
 */
export function computeBlastRadius(input: BlastRadiusInput): BlastRadius {
  const refreshSeconds = input.refreshSeconds ?? ASSUMED_REFRESH_SECONDS;
  const { now, registry } = input;
  const ageOf = (iso: string | null | undefined) =>
    iso ? Math.max(0, Math.round((now - Date.parse(iso)) / 1000)) : undefined;

  // Sessions grouped per user, then matched to registered consumers.
  const processesOf = new Map<string, ProcessView[]>();
  const unregistered = new Map<string, ProcessView[]>();
  let unattributed: UnattributedSession[] | undefined;
  if (input.sessions) {
    unattributed = [];
    const users = [...new Set(input.sessions.map((s) => s.user))];
    for (const user of users) {
      const groups = groupSessions(input.sessions.filter((s) => s.user === user));
      for (const g of groups.consumers) {
        const registered = registry.find((c) =>
          attributedTo({ consumer: g.consumer, generation: 0, host: '', pid: 1 }, c.name),
        );
        const target = registered ? processesOf : unregistered;
        const key = registered?.name ?? g.consumer;
        const list = target.get(key) ?? [];
        for (const p of g.processes) {
          list.push({
            host: p.host,
            pid: p.pid,
            generation: p.generation,
            user,
            sessions: p.sessions,
            ...(p.oldestBackendStart
              ? {
                  oldestBackendStart: p.oldestBackendStart,
                  connectionAgeSeconds: ageOf(p.oldestBackendStart),
                }
              : {}),
          });
        }
        target.set(key, list);
      }
      for (const s of groups.unattributed) {
        unattributed.push({
          user,
          pid: s.pid,
          applicationName: s.applicationName,
          clientAddr: s.clientAddr,
          backendStart: s.backendStart,
          ...(s.backendStart ? { ageSeconds: ageOf(s.backendStart) } : {}),
        });
      }
    }
  }

  const consumers = registry.map((c): ConsumerRadius => {
    const series = input.series?.get(c.name);
    const points = [...(series?.points ?? [])].sort((a, b) => a.timestamp - b.timestamp);
    const newest = points[points.length - 1];
    const bucketSeconds = series?.bucketSeconds ?? REPORT_PERIOD_SECONDS;
    const observedPeriod = medianGapSeconds(points);
    const reportPeriodSeconds = observedPeriod ?? REPORT_PERIOD_SECONDS;
    const processes = input.sessions ? (processesOf.get(c.name) ?? []) : undefined;
    const ages = (processes ?? [])
      .map((p) => p.connectionAgeSeconds)
      .filter((a): a is number => a !== undefined);
    const connectionAgeSeconds = ages.length > 0 ? Math.max(...ages) : undefined;
    const lifetimes = [connectionAgeSeconds, series?.poolAgeSecondsMax].filter(
      (a): a is number => a !== undefined,
    );
    const adoption: AdoptionPath =
      c.mode === 'live'
        ? {
            kind: 'live',
            refreshSeconds,
            reportPeriodSeconds,
            maxStalenessSeconds: c.maxStalenessSeconds,
            bucketSeconds,
            totalSeconds:
              refreshSeconds + reportPeriodSeconds + c.maxStalenessSeconds + bucketSeconds,
          }
        : c.mode === 'scheduled'
          ? {
              kind: 'scheduled',
              maxStalenessSeconds: c.maxStalenessSeconds,
              bucketSeconds,
              totalSeconds: c.maxStalenessSeconds + bucketSeconds,
            }
          : { kind: 'restart-only' };
    return {
      name: c.name,
      mode: c.mode,
      maxStalenessSeconds: c.maxStalenessSeconds,
      ...(newest
        ? {
            reportingAgeSeconds: Math.max(0, Math.round((now - newest.timestamp) / 1000)),
            reportedGeneration: newest.minimum,
          }
        : {}),
      reportPeriodSeconds,
      reportPeriodSource: observedPeriod === undefined ? 'assumed' : 'observed',
      ...(processes ? { processes } : {}),
      ...(connectionAgeSeconds !== undefined ? { connectionAgeSeconds } : {}),
      ...(series?.poolAgeSecondsMax !== undefined
        ? { poolAgeSecondsMax: series.poolAgeSecondsMax }
        : {}),
      ...(lifetimes.length > 0 ? { connectionLifetimeSeconds: Math.max(...lifetimes) } : {}),
      adoption,
    };
  });

  const liveAdoption = largest(consumers, (c) =>
    c.adoption.kind === 'live' ? c.adoption.totalSeconds : undefined,
  );
  const scheduledRun = largest(consumers, (c) =>
    c.adoption.kind === 'scheduled' ? c.adoption.totalSeconds : undefined,
  );
  const lifetime = largest(consumers, (c) => c.connectionLifetimeSeconds);
  const lifetimeObserved = consumers.some((c) => c.connectionLifetimeSeconds !== undefined);
  const overlapSeconds = liveAdoption.seconds + lifetime.seconds + scheduledRun.seconds;

  const hasLive = consumers.some((c) => c.mode === 'live');
  const promotionSeconds = hasLive ? liveAdoption.seconds + input.gate.pollSeconds : 0;
  const promotionVia = !hasLive
    ? 'immediate'
    : promotionSeconds <= input.gate.maxWaitSeconds
      ? 'first-invocation'
      : 're-drive';
  const waitsForRestartOf = consumers.filter((c) => c.mode === 'restart-only').map((c) => c.name);
  const safeRevocationSeconds =
    waitsForRestartOf.length > 0
      ? undefined
      : promotionSeconds + lifetime.seconds + scheduledRun.seconds;

  const warnings = warningsFor({
    input,
    consumers,
    unregistered,
    unattributed,
    lifetimeObserved,
    promotionSeconds,
    promotionVia,
    safeRevocationSeconds,
    waitsForRestartOf,
  });

  const counts = { live: 0, scheduled: 0, 'restart-only': 0 } as Record<ConsumerMode, number>;
  for (const c of registry) counts[c.mode]++;
  return {
    counts,
    consumers,
    unregistered: [...unregistered.entries()].map(([consumer, processes]) => ({
      consumer,
      processes,
    })),
    ...(unattributed ? { unattributed } : {}),
    overlap: {
      seconds: overlapSeconds,
      terms: {
        liveAdoption,
        connectionLifetime: { ...lifetime, observed: lifetimeObserved },
        scheduledRun,
      },
    },
    expected: {
      promotionSeconds,
      promotionVia,
      ...(safeRevocationSeconds !== undefined ? { safeRevocationSeconds } : {}),
      waitsForRestartOf,
    },
    assumptions: { refreshSeconds, gate: input.gate },
    warnings,
  };
}

/** Median gap between consecutive data points, seconds (the upper median); undefined with fewer than two. */
function medianGapSeconds(sorted: readonly GenerationDatapoint[]): number | undefined {
  if (sorted.length < 2) return undefined;
  const gaps = sorted
    .slice(1)
    .map((p, i) => (p.timestamp - sorted[i]!.timestamp) / 1000)
    .sort((a, b) => a - b);
  return gaps[Math.floor(gaps.length / 2)];
}

function largest(
  consumers: readonly ConsumerRadius[],
  value: (c: ConsumerRadius) => number | undefined,
): OverlapTerm {
  let best: OverlapTerm = { seconds: 0 };
  for (const c of consumers) {
    const v = value(c);
    if (v !== undefined && (best.consumer === undefined || v > best.seconds))
      best = { seconds: v, consumer: c.name };
  }
  return best;
}

function warningsFor(x: {
  input: BlastRadiusInput;
  consumers: readonly ConsumerRadius[];
  unregistered: ReadonlyMap<string, ProcessView[]>;
  unattributed: readonly UnattributedSession[] | undefined;
  lifetimeObserved: boolean;
  promotionSeconds: number;
  promotionVia: string;
  safeRevocationSeconds: number | undefined;
  waitsForRestartOf: readonly string[];
}): BlastRadiusWarning[] {
  const { input, consumers } = x;
  const w: BlastRadiusWarning[] = [];
  const names = (cs: readonly ConsumerRadius[]) => cs.map((c) => c.name);
  if (consumers.length === 0) {
    w.push({
      code: 'no-consumers',
      message:
        'no consumer is registered: promotion is immediate and the revocation guard checks open sessions only; nothing proves who uses this credential',
    });
  }
  if (consumers.length > 0 && input.series === undefined) {
    w.push({
      code: 'cloudwatch-unreadable',
      message:
        'CloudWatch could not be read: report ages and report intervals are unknown (assumed)',
    });
  } else if (consumers.length > 0) {
    const unseen = consumers.filter((c) => c.reportingAgeSeconds === undefined);
    if (unseen.length === consumers.length) {
      w.push({
        code: 'no-reports',
        message: `no registered consumer reported in the last ${input.lookbackSeconds} s: check the namespace, the region and the reporters; both gates will hold`,
        consumers: names(unseen),
      });
    } else if (unseen.length > 0) {
      w.push({
        code: 'not-reporting',
        message: `${unseen.length} consumer(s) did not report in the last ${input.lookbackSeconds} s: both gates count them silent and hold: ${names(unseen).join(', ')}`,
        consumers: names(unseen),
      });
    }
    const gaps = consumers.filter(
      (c) => c.reportPeriodSource === 'observed' && c.reportPeriodSeconds > c.maxStalenessSeconds,
    );
    for (const c of gaps) {
      w.push({
        code: 'report-gap',
        message: `${c.name} reports every ${c.reportPeriodSeconds} s but its maxStaleness is ${c.maxStalenessSeconds} s: between reports it counts as silent and holds the gates; raise maxStalenessSeconds above its interval`,
        consumers: [c.name],
      });
    }
  }
  if (consumers.length >= SHARED_CREDENTIAL_CONSUMERS) {
    const processes = consumers.reduce((n, c) => n + (c.processes?.length ?? 0), 0);
    w.push({
      code: 'shared-credential',
      message:
        `${consumers.length} consumers share this credential${processes > 0 ? ` (${processes} processes seen)` : ''}: one failure domain; ` +
        'a rotation waits for the slowest of them, and a bad one breaks all; consider a secret per consumer',
      consumers: names(consumers),
    });
  }
  if (x.waitsForRestartOf.length > 0) {
    w.push({
      code: 'restart-only',
      message: `restart-only consumer(s) ${x.waitsForRestartOf.join(', ')}: the next rotation's revocation guard waits until they are restarted after promotion; no time bounds it`,
      consumers: x.waitsForRestartOf,
    });
  }
  if (x.unattributed && x.unattributed.length > 0) {
    w.push({
      code: 'unattributed-sessions',
      message: `${x.unattributed.length} session(s) not opened through the consumer library (a human, a script, an unregistered consumer): the revocation guard holds while they stay open on the old user`,
    });
  }
  for (const [consumer, processes] of x.unregistered) {
    w.push({
      code: 'unregistered-consumer',
      message: `consumer "${consumer}" holds ${processes.reduce((n, p) => n + p.sessions, 0)} session(s) but is not registered: the gates do not wait for its reports; register it`,
      consumers: [consumer],
    });
  }
  if (consumers.length > 0 && !x.lifetimeObserved) {
    w.push({
      code: 'connection-lifetime-unobserved',
      message:
        'no connection age was observed (no PoolAgeSecondsMax reports; pass --sessions to read backend_start): the connection lifetime term counts 0',
    });
  }
  const hidden = (input.sessions ?? []).filter((s) => s.backendStart === null).length;
  if (hidden > 0) {
    w.push({
      code: 'connection-ages-hidden',
      message:
        `the master sees ${hidden} session(s) without backend_start (PostgreSQL shows it only to roles with the privileges of the session's user ` +
        'or of pg_read_all_stats): grant the master pg_read_all_stats to see connection ages',
    });
  }
  if (x.promotionVia === 're-drive') {
    w.push({
      code: 'gate-wait',
      message:
        `promotion needs about ${x.promotionSeconds} s but finishSecret waits at most ${input.gate.maxWaitSeconds} s (CONVERGE_GATE_MAX_WAIT_SECONDS): ` +
        'its first invocation ends held and the ConvergenceLag alarm re-drive promotes later',
    });
  }
  if (
    input.rotationIntervalSeconds !== undefined &&
    (x.safeRevocationSeconds ?? Infinity) > input.rotationIntervalSeconds
  ) {
    w.push({
      code: 'rotation-interval',
      message:
        `rotations are scheduled every ${input.rotationIntervalSeconds} s, sooner than safe revocation ` +
        `(${x.safeRevocationSeconds === undefined ? 'unbounded: restart-only consumers' : `${x.safeRevocationSeconds} s`}): the next rotation's revocation guard will hold`,
    });
  }
  return w;
}
