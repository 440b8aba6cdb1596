/**
 * The metric contract, one definition for the consumer reporter, the gates, the CDK alarm/dashboard
 * and the CLI. docs/metric-contract.md is its written, versioned form for reporters in any runtime
 * (what to send, what the gates read back, EMF and PutMetricData examples);
 * lambda/shared/report-document.ts checks a report against it. README.md, "The metric contract",
 * is the overview.
 */

/** Default CloudWatch namespace. */
export const DEFAULT_NAMESPACE = 'SecretRotation';

/** The credential generation a process uses for new connections. Unit None. Gate reads Minimum and SampleCount. */
export const LOADED_GENERATION = 'LoadedGeneration';
/** Failed reloads of the secret (fetch, parse or validation). Unit Count. */
export const RELOAD_FAILURES = 'ReloadFailures';
/** Age in seconds of the oldest open pooled connection. Unit Seconds. */
export const POOL_AGE_SECONDS_MAX = 'PoolAgeSecondsMax';

/** Dimension names of every converge metric. */
export const DIMENSION_SECRET = 'SecretName';
export const DIMENSION_CONSUMER = 'Consumer';

/**
 * Reporting period in seconds: every process of a consumer emits each metric at least this often.
 * 60 s is CloudWatch's standard resolution.
 */
export const REPORT_PERIOD_SECONDS = 60;

/**
 * The `SecretName` dimension for a secret: its name, never its ARN (the ARN's random suffix would
 * change if the secret were recreated, and names are what operators type).
 *
 * @example
 * secretNameDimension('arn:aws:secretsmanager:us-east-1:1:secret:app-db-AbCdEf'); // 'app-db'
 */
export function secretNameDimension(secretIdOrArn: string): string {
  const m = /^arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:(.+)-[A-Za-z0-9]{6}$/.exec(secretIdOrArn);
  return m ? m[1] : secretIdOrArn;
}

// Metrics the rotation function emits (EMF through its log group), dimension {SecretName}. The CDK
// alarms and dashboard are built on these names.

/** Generation of the AWSPENDING version while a rotation waits at the promotion gate. Unit None. */
export const PENDING_GENERATION = 'PendingGeneration';
/** A rotation completed (finishSecret moved AWSCURRENT). Unit Count. */
export const ROTATIONS_COMPLETED = 'RotationsCompleted';
/** A rotation step failed (any typed error, ConvergencePendingError included). Unit Count. */
export const ROTATION_STEP_FAILURES = 'RotationStepFailures';
/** finishSecret was held by the promotion gate at the end of an invocation. Unit Count. */
export const CONVERGENCE_PENDING = 'ConvergencePending';
/**
 * An invocation of a rotation step ended with the gate's ConvergencePendingError thrown to Lambda
 * (which counts it in the function's `Errors`): the RotationFailed alarm subtracts it. A re-drive
 * that is held returns instead of throwing and is not counted here. Unit Count.
 */
export const GATE_HOLD_ERRORS = 'GateHoldErrors';
/**
 * Seconds since the waiting rotation's AWSPENDING version was created, 0 when nothing waits;
 * published by every pending check (lambda/rotation/pending-check.ts). Unit Seconds.
 */
export const PENDING_AGE_SECONDS = 'PendingAgeSeconds';
/** Seconds finishSecret waited at the promotion gate before promoting. Unit Seconds. */
export const GATE_WAIT_SECONDS = 'GateWaitSeconds';
/**
 * Milliseconds the previous user's LOGIN was taken away while the revocation guard counted its
 * sessions and the new password was set (new connections with the old password fail in it). Unit
 * Milliseconds.
 */
export const REVOCATION_WINDOW_MS = 'RevocationWindowMs';
/** Sessions terminated by an emergency rotation (old users, every member). Unit Count. */
export const SESSIONS_TERMINATED = 'SessionsTerminated';
/** An emergency rotation revoked the formerly current credential after promotion. Unit Count. */
export const EMERGENCY_REVOCATIONS = 'EmergencyRevocations';

// ---------------------------------------------------------------------------------------------
// Reading LoadedGeneration back: the GetMetricData request the gates (and the CLI) send, and the
// freshness rules that turn its answer into "which generation does this consumer use".
// ---------------------------------------------------------------------------------------------

/** Unit of `LoadedGeneration` (a number, not a count). */
export const LOADED_GENERATION_UNIT = 'None';

/** Documented limit: a single GetMetricData call can include as many as 500 MetricDataQuery structures. */
export const MAX_QUERIES_PER_GET_METRIC_DATA = 500;

/**
 * Documented limit: one GetMetricData call returns at most 100,800 data points (the default and
 * maximum of `MaxDatapoints`); more are paginated with NextToken, one call per page.
 */
export const MAX_DATAPOINTS_PER_GET_METRIC_DATA = 100_800;

/**
 * Bound on pages read for one evaluation, so a misbehaving endpoint that keeps returning NextToken
 * cannot hold the gate in a loop. 20 pages hold more than two million data points.
 */
export const MAX_GET_METRIC_DATA_PAGES = 20;

/** A statistic of `LoadedGeneration` the gates read per period bucket. */
export type GenerationStatistic = 'Minimum' | 'Maximum';

/**
 * What the promotion gate reads: each bucket's Minimum (the laggard), one query per consumer, so
 * 500 consumers fit one GetMetricData call.
 */
export const PROMOTION_STATISTICS: readonly GenerationStatistic[] = ['Minimum'];

/**
 * What the revocation guard reads: each bucket's Minimum and Maximum, two queries per consumer
 * (250 consumers per call). The Maximum shows a process that is AHEAD of AWSCURRENT, on an aborted
 * rotation's burnt generation, which the Minimum hides as soon as another process of the same
 * consumer reports current.
 */
export const REVOCATION_STATISTICS: readonly GenerationStatistic[] = ['Minimum', 'Maximum'];

/** One `LoadedGeneration` aggregate as CloudWatch returns it: the start of a period bucket and its statistics. */
export interface GenerationDatapoint {
  /** Start of the period bucket, milliseconds since the epoch. */
  readonly timestamp: number;
  /** Minimum of every process's reported generation within the bucket. */
  readonly minimum: number;
  /** Maximum of every process's reported generation within the bucket; present only when the read asked for `Maximum`. */
  readonly maximum?: number;
}

/** The dimensions of a consumer's `LoadedGeneration`, in contract order. */
export function loadedGenerationDimensions(secretName: string, consumer: string): { Name: string; Value: string }[] {
  return [
    { Name: DIMENSION_SECRET, Value: secretName },
    { Name: DIMENSION_CONSUMER, Value: consumer },
  ];
}

/**
 * Query id for the consumer at `index` in the spec and one statistic. Ids are positional (`c0`,
 * `c1`, ... for the Minimum, `c0_max`, ... for the Maximum) rather than derived from names: they
 * satisfy GetMetricData's rule (first character a lowercase letter, then letters, digits and
 * underscore) for any registered name and can never collide. The consumer name travels in the
 * query's Label and in the {@link GenerationQuery.queryById} map.
 *
 * @example
 * generationQueryId(3); // 'c3'
 * generationQueryId(3, 'Maximum'); // 'c3_max'
 */
export function generationQueryId(index: number, statistic: GenerationStatistic = 'Minimum'): string {
  return statistic === 'Minimum' ? `c${index}` : `c${index}_max`;
}

/**
 * The aggregation period for a read window. Standard-resolution metrics are stored per minute, so
 * 60 s is the finest meaningful period; longer windows use coarser periods that CloudWatch retains
 * longer (1-minute data for 15 days, 5-minute data for 63 days) and keep each query at no more than
 * a few hundred buckets.
 *
 * @example
 * periodForWindow(900); // 60
 * periodForWindow(900, 20); // 10 (high resolution)
 * periodForWindow(90_000); // 300
 */
export function periodForWindow(windowSeconds: number, minStalenessSeconds = REPORT_PERIOD_SECONDS): number {
  // Consumers registered with a staleness under a minute report high-resolution data: read it at
  // the largest high-resolution period that still fits twice into that staleness. CloudWatch keeps
  // per-second data for 3 hours only, so longer windows fall back to minutes.
  if (minStalenessSeconds < 60 && windowSeconds <= HIGH_RESOLUTION_RETENTION_SECONDS) {
    return [...HIGH_RESOLUTION_PERIODS].reverse().find((p) => p * 2 <= minStalenessSeconds) ?? 1;
  }
  if (windowSeconds <= 3 * 3600) return 60;
  if (windowSeconds <= 15 * 86_400) return 300;
  return 3600;
}

/**
 * The period one consumer is read at: the one that fits its own `maxStalenessSeconds`, whatever
 * the other consumers of the same read need. A consumer counts as fresh while a bucket overlaps its
 * window (see {@link consumerGenerationStatus}), so the period is the tolerance beyond
 * maxStaleness: 60 s for stalenesses up to 3 hours, a high-resolution period (at most half the
 * staleness) below a minute, 5 minutes up to 15 days, an hour beyond.
 *
 * @example
 * periodForStaleness(60); // 60: a live consumer is silent about a minute after its window ends
 * periodForStaleness(90_000); // 300: a daily job, 25-hour staleness
 * periodForStaleness(20); // 10 (high resolution)
 */
export function periodForStaleness(maxStalenessSeconds: number): number {
  return periodForWindow(maxStalenessSeconds, maxStalenessSeconds);
}

/** Periods CloudWatch accepts for high-resolution metrics (below one minute). */
export const HIGH_RESOLUTION_PERIODS = [1, 5, 10, 30] as const;

/** How long CloudWatch keeps high-resolution data at per-second resolution. */
export const HIGH_RESOLUTION_RETENTION_SECONDS = 3 * 3600;

/**
 * Longest read window of a consumer read at a high-resolution period: the retention, less a margin,
 * so that StartTime stays within the 3 hours in which CloudWatch answers sub-minute periods.
 */
const HIGH_RESOLUTION_READ_WINDOW_SECONDS = HIGH_RESOLUTION_RETENTION_SECONDS - 300;

/** One consumer to read. */
export interface GenerationQueryConsumer {
  readonly name: string;
  /** Its freshness window (the registry's `maxStalenessSeconds`): selects its period. */
  readonly maxStalenessSeconds: number;
}

/** What to read: which consumers of which secret, and how far back. */
export interface GenerationQuerySpec {
  readonly namespace: string;
  /** The `SecretName` dimension (see {@link secretNameDimension}). */
  readonly secretName: string;
  /** The consumers; one query per consumer and statistic, each at the period of {@link periodForStaleness}. */
  readonly consumers: readonly GenerationQueryConsumer[];
  /** Evaluation time, milliseconds since the epoch. */
  readonly now: number;
  /**
   * How far back to read at least, in seconds, for `lastSeen` of silent consumers; a consumer's own
   * maxStalenessSeconds extends its window. Consumers read at a high-resolution period are read
   * back at most about 3 hours (CloudWatch's retention of per-second data).
   */
  readonly lookbackSeconds: number;
  /**
   * Statistics read per bucket; must include `Minimum`.
   *
   * @default PROMOTION_STATISTICS (Minimum only)
   */
  readonly statistics?: readonly GenerationStatistic[];
}

/** One GetMetricData request of a {@link GenerationQuery}. */
export interface GenerationRequest {
  MetricDataQueries: {
    Id: string;
    Label: string;
    ReturnData: boolean;
    MetricStat: {
      Metric: { Namespace: string; MetricName: string; Dimensions: { Name: string; Value: string }[] };
      Period: number;
      Stat: GenerationStatistic;
    };
  }[];
  StartTime: Date;
  EndTime: Date;
  ScanBy: 'TimestampDescending';
  MaxDatapoints: number;
}

/** What one query id reads. */
export interface GenerationQueryTarget {
  readonly consumer: string;
  readonly statistic: GenerationStatistic;
}

/** The GetMetricData requests for a {@link GenerationQuerySpec}, and how to map answers back. */
export interface GenerationQuery {
  /**
   * Exactly one request whenever the queries fit 500 per call and their data points (every bucket
   * counted, as if every consumer had reported in each) fit 100,800; see {@link buildGenerationQuery}
   * for how a larger read is split.
   */
  readonly requests: readonly GenerationRequest[];
  /** Query id → the consumer and statistic it reads. */
  readonly queryById: ReadonlyMap<string, GenerationQueryTarget>;
  /** The bucket size each consumer is read at, seconds (see {@link periodForStaleness}). */
  readonly periodByConsumer: ReadonlyMap<string, number>;
  /** The statistics read per bucket. */
  readonly statistics: readonly GenerationStatistic[];
}

interface PlannedConsumer {
  readonly index: number;
  readonly name: string;
  readonly period: number;
  /** Seconds back from `now` this consumer needs read. */
  readonly windowSeconds: number;
}

/**
 * Builds the GetMetricData request(s) that read `LoadedGeneration` for a set of consumers.
 *
 * - **A period per consumer.** GetMetricData takes a Period per MetricDataQuery, so each consumer
 *   is read at the period that fits its own maxStalenessSeconds ({@link periodForStaleness}): a
 *   live consumer with a 60 s staleness is read per minute even when a scheduled job with a 25-hour
 *   staleness shares the request (one coarse period for both would let the live consumer look fresh
 *   minutes after it went silent).
 * - **One StartTime per request**, covering the longest window in it (lookback or staleness, plus
 *   one period of its coarsest query, aligned to that period: every period used divides it). EndTime
 *   is exclusive and one minute past `now`, so a reporter whose clock runs slightly ahead is read.
 * - **Statistics**: `Minimum` only by default (what the promotion gate needs: "no data point" already
 *   means "SampleCount 0", i.e. silent, so SampleCount is not read). {@link REVOCATION_STATISTICS} adds
 *   `Maximum`, a second query per consumer.
 * - **One request in the common case.** A request holds at most 500 queries and must not need more
 *   than 100,800 data points (counting every bucket of every query, as if each consumer had reported
 *   in every one), and CloudWatch answers a period only when StartTime is recent enough for it
 *   (sub-minute periods within 3 hours, multiples of 60 s within 15 days, of 300 s within 63 days,
 *   of 3600 s beyond). Consumers are taken from the shortest window to the longest and packed into
 *   the current request while all three hold; otherwise a new request starts. So short-window
 *   consumers (live ones) share one request and a long-window consumer (a daily job) that would
 *   stretch all of them over 25 hours gets the next one: a mixed fleet whose 25-hour read would
 *   exceed 100,800 points costs two calls instead of paginating.
 *
 * @example
 * const q = buildGenerationQuery({
 *   namespace: 'SecretRotation',
 *   secretName: 'app-db',
 *   consumers: [{ name: 'api', maxStalenessSeconds: 60 }, { name: 'nightly', maxStalenessSeconds: 90_000 }],
 *   now: Date.now(),
 *   lookbackSeconds: 900,
 * });
 * await cloudWatch.send(new GetMetricDataCommand(q.requests[0])); // api at Period 60, nightly at 300
 */
export function buildGenerationQuery(spec: GenerationQuerySpec): GenerationQuery {
  const statistics = spec.statistics ?? PROMOTION_STATISTICS;
  if (!statistics.includes('Minimum') || new Set(statistics).size !== statistics.length) {
    throw new Error(`statistics must include Minimum once, got ${JSON.stringify(statistics)}`);
  }
  const endTime = Math.floor(spec.now / 60_000) * 60_000 + 120_000;
  const planned = spec.consumers.map((c, index) => planConsumer(c, index, spec.lookbackSeconds, spec.now));

  // Shortest window first; registration order among equals.
  const ordered = [...planned].sort((a, b) => a.windowSeconds - b.windowSeconds || a.index - b.index);
  const groups: RequestGroup[] = [];
  for (const c of ordered) {
    const last = groups[groups.length - 1];
    if (!last || !tryAdd(last, c, statistics.length, spec.now, endTime)) groups.push(newGroup(c));
  }

  const queryById = new Map<string, GenerationQueryTarget>();
  const periodByConsumer = new Map<string, number>();
  const requests = groups.map((group): GenerationRequest => {
    const members = [...group.members].sort((a, b) => a.index - b.index);
    const MetricDataQueries = members.flatMap((c) => {
      periodByConsumer.set(c.name, c.period);
      return statistics.map((statistic) => {
        const id = generationQueryId(c.index, statistic);
        queryById.set(id, { consumer: c.name, statistic });
        return {
          Id: id,
          Label: statistic === 'Minimum' ? c.name : `${c.name} (${statistic})`,
          ReturnData: true,
          MetricStat: {
            Metric: {
              Namespace: spec.namespace,
              MetricName: LOADED_GENERATION,
              Dimensions: loadedGenerationDimensions(spec.secretName, c.name),
            },
            Period: c.period,
            Stat: statistic,
          },
        };
      });
    });
    return {
      MetricDataQueries,
      StartTime: new Date(requestStart(group.windowSeconds, group.period, spec.now)),
      EndTime: new Date(endTime),
      ScanBy: 'TimestampDescending',
      MaxDatapoints: MAX_DATAPOINTS_PER_GET_METRIC_DATA,
    };
  });
  return { requests, queryById, periodByConsumer, statistics };
}

function planConsumer(c: GenerationQueryConsumer, index: number, lookbackSeconds: number, now: number): PlannedConsumer {
  let period = periodForStaleness(c.maxStalenessSeconds);
  const window = Math.max(lookbackSeconds, c.maxStalenessSeconds);
  const windowSeconds = period < 60 ? Math.min(window, HIGH_RESOLUTION_READ_WINDOW_SECONDS) : window;
  // A consumer whose own window reaches past a retention tier is read at the coarser period that
  // tier allows (each step can only move StartTime back a little, so this settles at once).
  for (let i = 0; i < 4; i++) {
    const unit = periodUnitForAge((now - requestStart(windowSeconds, period, now)) / 1000);
    if (period % unit === 0) break;
    period = Math.ceil(period / unit) * unit;
  }
  return { index, name: c.name, period, windowSeconds };
}

/** The consumers of one request, and what its StartTime and data point count depend on. */
interface RequestGroup {
  readonly members: PlannedConsumer[];
  /** Members per period. */
  readonly periods: Map<number, number>;
  /** Longest window of a member, seconds. */
  windowSeconds: number;
  /** Coarsest period of a member, seconds. */
  period: number;
}

function newGroup(c: PlannedConsumer): RequestGroup {
  return { members: [c], periods: new Map([[c.period, 1]]), windowSeconds: c.windowSeconds, period: c.period };
}

/** Adds `c` when the request stays within the query and data point limits and every period stays answerable. */
function tryAdd(group: RequestGroup, c: PlannedConsumer, statistics: number, now: number, endTime: number): boolean {
  if ((group.members.length + 1) * statistics > MAX_QUERIES_PER_GET_METRIC_DATA) return false;
  const windowSeconds = Math.max(group.windowSeconds, c.windowSeconds);
  const period = Math.max(group.period, c.period);
  const start = requestStart(windowSeconds, period, now);
  const periods = new Map(group.periods).set(c.period, (group.periods.get(c.period) ?? 0) + 1);
  const unit = periodUnitForAge((now - start) / 1000);
  let points = 0;
  for (const [p, members] of periods) {
    if (p % unit !== 0) return false;
    points += members * Math.ceil((endTime - start) / (p * 1000)) * statistics;
  }
  if (points > MAX_DATAPOINTS_PER_GET_METRIC_DATA) return false;
  group.members.push(c);
  group.periods.set(c.period, periods.get(c.period)!);
  group.windowSeconds = windowSeconds;
  group.period = period;
  return true;
}

/** StartTime of a request: its longest window plus one period of its coarsest query, aligned to that period. */
function requestStart(windowSeconds: number, period: number, now: number): number {
  const periodMs = period * 1000;
  return Math.floor((now - windowSeconds * 1000 - periodMs) / periodMs) * periodMs;
}

/**
 * The unit every period must be a multiple of for CloudWatch to return data when StartTime is
 * `ageSeconds` old (1: any period, high-resolution ones included).
 */
function periodUnitForAge(ageSeconds: number): number {
  if (ageSeconds <= HIGH_RESOLUTION_RETENTION_SECONDS) return 1;
  if (ageSeconds <= 15 * 86_400) return 60;
  if (ageSeconds <= 63 * 86_400) return 300;
  return 3600;
}

/** The minimal shape of a GetMetricData answer page that {@link collectGenerationResults} reads. */
export interface GenerationResultPage {
  readonly MetricDataResults?: readonly {
    Id?: string;
    Timestamps?: readonly (Date | string | number)[];
    Values?: readonly number[];
    StatusCode?: string;
  }[];
}

/**
 * Folds GetMetricData answer pages into one series per consumer (newest first), each bucket with
 * the statistics the query read. A result whose status is `InternalError` or `Forbidden` means the
 * data is unknown, not absent: it throws, so callers fail closed; so does a bucket whose Maximum
 * came without its Minimum or the other way round (an incomplete answer).
 *
 * @example
 * const series = collectGenerationResults(query, pages); // Map { 'api' => [{ timestamp, minimum, maximum }] }
 */
export function collectGenerationResults(
  query: Pick<GenerationQuery, 'queryById' | 'statistics'>,
  pages: readonly GenerationResultPage[],
): Map<string, GenerationDatapoint[]> {
  const values = new Map<string, Map<GenerationStatistic, Map<number, number>>>();
  for (const { consumer } of query.queryById.values()) {
    if (!values.has(consumer)) values.set(consumer, new Map(query.statistics.map((s) => [s, new Map<number, number>()])));
  }
  for (const page of pages) {
    for (const result of page.MetricDataResults ?? []) {
      const target = result.Id === undefined ? undefined : query.queryById.get(result.Id);
      if (target === undefined) continue;
      if (result.StatusCode === 'InternalError' || result.StatusCode === 'Forbidden') {
        throw new Error(`GetMetricData returned ${result.StatusCode} for consumer "${target.consumer}"`);
      }
      const byTime = values.get(target.consumer)!.get(target.statistic)!;
      const timestamps = result.Timestamps ?? [];
      const numbers = result.Values ?? [];
      for (let i = 0; i < Math.min(timestamps.length, numbers.length); i++) {
        const t = new Date(timestamps[i]).getTime();
        if (Number.isFinite(t) && Number.isFinite(numbers[i])) byTime.set(t, numbers[i]);
      }
    }
  }
  const readsMaximum = query.statistics.includes('Maximum');
  const series = new Map<string, GenerationDatapoint[]>();
  for (const [consumer, stats] of values) {
    const minimum = stats.get('Minimum')!;
    const maximum = stats.get('Maximum');
    const points: GenerationDatapoint[] = [];
    for (const t of new Set([...minimum.keys(), ...(maximum?.keys() ?? [])])) {
      const min = minimum.get(t);
      const max = maximum?.get(t);
      if (min === undefined || (readsMaximum && max === undefined)) {
        throw new Error(
          `GetMetricData returned the ${min === undefined ? 'Maximum' : 'Minimum'} of consumer "${consumer}" at ${new Date(t).toISOString()} without its ${min === undefined ? 'Minimum' : 'Maximum'}`,
        );
      }
      points.push(readsMaximum ? { timestamp: t, minimum: min, maximum: max } : { timestamp: t, minimum: min });
    }
    series.set(consumer, points.sort((a, b) => b.timestamp - a.timestamp));
  }
  return series;
}

/** What the data says about one consumer at one moment. */
export interface ConsumerGenerationStatus {
  readonly consumer: string;
  /**
   * `fresh`: at least one data point inside the consumer's freshness window;
   * `silent`: none (the consumer may be down, or running without reporting).
   */
  readonly state: 'fresh' | 'silent';
  /**
   * For a fresh consumer: the lowest generation any of its processes reported within the freshness
   * window (the laggard). Undefined when silent.
   */
  readonly generation?: number;
  /**
   * For a fresh consumer: every distinct generation a fresh bucket's Minimum or Maximum shows,
   * ascending (Minimums only when the Maximum was not read). Undefined when silent.
   */
  readonly generations?: readonly number[];
  /** The newest data point read at all, fresh or not (what an operator wants to see for a silent consumer). */
  readonly lastSeen?: { readonly generation: number; readonly timestamp: number };
}

/**
 * The freshness rules.
 *
 * - A consumer is **fresh** when a bucket overlaps its window `(now - maxStalenessSeconds, now]`,
 *   i.e. `bucketStart + period > now - maxStaleness`. Bucket timestamps are the start of a period, so
 *   this tolerates up to one period of age beyond maxStaleness: `period` must therefore be the
 *   consumer's OWN period (the readout carries one per consumer, see {@link periodForStaleness}),
 *   never a coarser one chosen for another consumer of the same read.
 * - Its **generation** is the Minimum over every fresh bucket, not over the newest one only.
 *   CloudWatch aggregates all processes of a consumer into one series, so one process that still
 *   reports the old generation is indistinguishable from one that reported it before moving; the
 *   only safe reading is: every process that reported within the window in which silence is still
 *   tolerated must be on the new generation. The price is that a consumer counts as moved only
 *   `maxStalenessSeconds` after its last old report; `maxStalenessSeconds` is what tunes it.
 * - Its **generations** are every value a fresh bucket's Minimum or Maximum shows: what the
 *   revocation guard checks against the generations it accepts.
 *
 * @example
 * const s = consumerGenerationStatus('api', 300, points, readout.periods.get('api')!, Date.now());
 * if (s.state === 'fresh' && s.generation! >= pending) { ... }
 */
export function consumerGenerationStatus(
  consumer: string,
  maxStalenessSeconds: number,
  points: readonly GenerationDatapoint[],
  period: number,
  now: number,
): ConsumerGenerationStatus {
  const cutoff = now - maxStalenessSeconds * 1000;
  let newest: GenerationDatapoint | undefined;
  let generation: number | undefined;
  const generations = new Set<number>();
  for (const p of points) {
    if (newest === undefined || p.timestamp > newest.timestamp) newest = p;
    if (p.timestamp + period * 1000 > cutoff) {
      generation = generation === undefined ? p.minimum : Math.min(generation, p.minimum);
      generations.add(p.minimum);
      if (p.maximum !== undefined) generations.add(p.maximum);
    }
  }
  const lastSeen = newest ? { generation: newest.minimum, timestamp: newest.timestamp } : undefined;
  return generation === undefined
    ? { consumer, state: 'silent', lastSeen }
    : { consumer, state: 'fresh', generation, generations: [...generations].sort((a, b) => a - b), lastSeen };
}
