/**
 * The metric contract (DESIGN.md section 5), one definition for the consumer reporter, the gates,
 * the CDK alarm/dashboard and the CLI.
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
/** Seconds finishSecret waited at the promotion gate before promoting. Unit Seconds. */
export const GATE_WAIT_SECONDS = 'GateWaitSeconds';

// ---------------------------------------------------------------------------------------------
// Reading LoadedGeneration back: the GetMetricData request the gates (and the CLI) send, and the
// freshness rules that turn its answer into "which generation does this consumer use".
// ---------------------------------------------------------------------------------------------

/** Unit of `LoadedGeneration` (a number, not a count). */
export const LOADED_GENERATION_UNIT = 'None';

/** Documented limit: a single GetMetricData call can include as many as 500 MetricDataQuery structures. */
export const MAX_QUERIES_PER_GET_METRIC_DATA = 500;

/** Documented default (and maximum) of `MaxDatapoints`: data points one GetMetricData page returns. */
export const MAX_DATAPOINTS_PER_GET_METRIC_DATA = 100_800;

/**
 * Bound on pages read for one evaluation, so a misbehaving endpoint that keeps returning NextToken
 * cannot hold the gate in a loop. 20 pages hold more than two million data points.
 */
export const MAX_GET_METRIC_DATA_PAGES = 20;

/** One `LoadedGeneration` aggregate as CloudWatch returns it: the start of a period bucket and its Minimum. */
export interface GenerationDatapoint {
  /** Start of the period bucket, milliseconds since the epoch. */
  readonly timestamp: number;
  /** Minimum of every process's reported generation within the bucket. */
  readonly minimum: number;
}

/** The dimensions of a consumer's `LoadedGeneration`, in contract order. */
export function loadedGenerationDimensions(secretName: string, consumer: string): { Name: string; Value: string }[] {
  return [
    { Name: DIMENSION_SECRET, Value: secretName },
    { Name: DIMENSION_CONSUMER, Value: consumer },
  ];
}

/**
 * Query id for the consumer at `index` in the request. Ids are positional (`c0`, `c1`, ...) rather
 * than derived from names: they satisfy GetMetricData's rule (first character a lowercase letter,
 * then letters, digits and underscore) for any registered name and can never collide. The consumer
 * name travels in the query's Label and in the {@link GenerationQuery.consumerById} map.
 */
export function generationQueryId(index: number): string {
  return `c${index}`;
}

/**
 * The aggregation period for a read window. Standard-resolution metrics are stored per minute, so
 * 60 s is the finest meaningful period; longer windows use coarser periods that CloudWatch retains
 * longer (1-minute data for 15 days, 5-minute data for 63 days) and keep each query at no more than
 * a few hundred buckets.
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

/** Periods CloudWatch accepts for high-resolution metrics (below one minute). */
export const HIGH_RESOLUTION_PERIODS = [1, 5, 10, 30] as const;

/** How long CloudWatch keeps high-resolution data at per-second resolution. */
export const HIGH_RESOLUTION_RETENTION_SECONDS = 3 * 3600;

/** What to read: which consumers of which secret, and how far back. */
export interface GenerationQuerySpec {
  readonly namespace: string;
  /** The `SecretName` dimension (see {@link secretNameDimension}). */
  readonly secretName: string;
  /** Consumer names; one query each. */
  readonly consumers: readonly string[];
  /** Evaluation time, milliseconds since the epoch. */
  readonly now: number;
  /** How far back to read, in seconds (the longest window any consumer needs). */
  readonly windowSeconds: number;
  /**
   * The shortest maxStaleness among the consumers; under 60 s selects a high-resolution period.
   *
   * @default 60
   */
  readonly minStalenessSeconds?: number;
}

/** The GetMetricData requests for a {@link GenerationQuerySpec}, and how to map answers back. */
export interface GenerationQuery {
  /** One request per 500 consumers: exactly one for every registry of up to 500 consumers. */
  readonly requests: readonly {
    MetricDataQueries: {
      Id: string;
      Label: string;
      ReturnData: boolean;
      MetricStat: {
        Metric: { Namespace: string; MetricName: string; Dimensions: { Name: string; Value: string }[] };
        Period: number;
        Stat: string;
      };
    }[];
    StartTime: Date;
    EndTime: Date;
    ScanBy: 'TimestampDescending';
    MaxDatapoints: number;
  }[];
  readonly consumerById: ReadonlyMap<string, string>;
  readonly period: number;
  readonly startTime: number;
  readonly endTime: number;
}

/**
 * Builds the GetMetricData request(s) that read `LoadedGeneration` for a set of consumers.
 *
 * One query per consumer, statistic `Minimum` only. Section 5 of DESIGN.md reads Minimum and
 * SampleCount, but SampleCount adds nothing here: CloudWatch returns a bucket only when it holds at
 * least one sample, so "no data point in the window" already means "SampleCount 0", i.e. silent.
 * Dropping it halves the queries: 500 consumers fit the documented 500-queries-per-call limit in ONE
 * call (with two statistics, one call would hold only 250), and GetMetricData is billed per metric
 * requested, so it also halves the cost of every gate evaluation.
 *
 * The window starts on a whole minute (CloudWatch rounds StartTime down to the minute anyway) one
 * period before `now - windowSeconds`, so the bucket that contains the window's start is complete.
 * EndTime is exclusive; it is set one minute past `now` so that a reporter whose clock runs slightly
 * ahead is still read.
 *
 * @example
 * const q = buildGenerationQuery({ namespace: 'SecretRotation', secretName: 'app-db', consumers: ['api'], now: Date.now(), windowSeconds: 900 });
 * await cloudWatch.send(new GetMetricDataCommand(q.requests[0]));
 */
export function buildGenerationQuery(spec: GenerationQuerySpec): GenerationQuery {
  const period = periodForWindow(spec.windowSeconds, spec.minStalenessSeconds);
  const periodMs = period * 1000;
  const startTime = Math.floor((spec.now - spec.windowSeconds * 1000 - periodMs) / periodMs) * periodMs;
  const endTime = Math.floor(spec.now / 60_000) * 60_000 + 120_000;
  const consumerById = new Map<string, string>();
  const queries = spec.consumers.map((consumer, i) => {
    const id = generationQueryId(i);
    consumerById.set(id, consumer);
    return {
      Id: id,
      Label: consumer,
      ReturnData: true,
      MetricStat: {
        Metric: {
          Namespace: spec.namespace,
          MetricName: LOADED_GENERATION,
          Dimensions: loadedGenerationDimensions(spec.secretName, consumer),
        },
        Period: period,
        Stat: 'Minimum',
      },
    };
  });
  const requests: GenerationQuery['requests'][number][] = [];
  for (let i = 0; i < queries.length; i += MAX_QUERIES_PER_GET_METRIC_DATA) {
    requests.push({
      MetricDataQueries: queries.slice(i, i + MAX_QUERIES_PER_GET_METRIC_DATA),
      StartTime: new Date(startTime),
      EndTime: new Date(endTime),
      ScanBy: 'TimestampDescending',
      MaxDatapoints: MAX_DATAPOINTS_PER_GET_METRIC_DATA,
    });
  }
  return { requests, consumerById, period, startTime, endTime };
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
 * Folds GetMetricData answer pages into one series per consumer (newest first). A result whose
 * status is `InternalError` or `Forbidden` means the data is unknown, not absent: it throws, so
 * callers fail closed.
 *
 * @example
 * const series = collectGenerationResults(query, pages); // Map { 'api' => [{ timestamp, minimum }] }
 */
export function collectGenerationResults(
  query: Pick<GenerationQuery, 'consumerById'>,
  pages: readonly GenerationResultPage[],
): Map<string, GenerationDatapoint[]> {
  const series = new Map<string, GenerationDatapoint[]>();
  for (const consumer of query.consumerById.values()) series.set(consumer, []);
  for (const page of pages) {
    for (const result of page.MetricDataResults ?? []) {
      const consumer = result.Id === undefined ? undefined : query.consumerById.get(result.Id);
      if (consumer === undefined) continue;
      if (result.StatusCode === 'InternalError' || result.StatusCode === 'Forbidden') {
        throw new Error(`GetMetricData returned ${result.StatusCode} for consumer "${consumer}"`);
      }
      const timestamps = result.Timestamps ?? [];
      const values = result.Values ?? [];
      const points = series.get(consumer)!;
      for (let i = 0; i < Math.min(timestamps.length, values.length); i++) {
        const t = new Date(timestamps[i]).getTime();
        if (Number.isFinite(t) && Number.isFinite(values[i])) points.push({ timestamp: t, minimum: values[i] });
      }
    }
  }
  for (const points of series.values()) points.sort((a, b) => b.timestamp - a.timestamp);
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
  /** The newest data point read at all, fresh or not (what an operator wants to see for a silent consumer). */
  readonly lastSeen?: { readonly generation: number; readonly timestamp: number };
}

/**
 * The freshness rules.
 *
 * - A consumer is **fresh** when a bucket overlaps its window `(now - maxStalenessSeconds, now]`,
 *   i.e. `bucketStart + period > now - maxStaleness`. Bucket timestamps are the start of a period, so
 *   this tolerates up to one period of age beyond maxStaleness: that is the resolution CloudWatch
 *   stores standard-resolution data at, and it also absorbs ingestion delay.
 * - Its **generation** is the Minimum over every fresh bucket, not over the newest one only.
 *   CloudWatch aggregates all processes of a consumer into one series, so one process that still
 *   reports the old generation is indistinguishable from one that reported it before moving; the
 *   only safe reading is: every process that reported within the window in which silence is still
 *   tolerated must be on the new generation. The price is that a consumer counts as moved only
 *   `maxStalenessSeconds` after its last old report; `maxStalenessSeconds` is what tunes it.
 *
 * @example
 * const s = consumerGenerationStatus('api', 300, points, 60, Date.now());
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
  for (const p of points) {
    if (newest === undefined || p.timestamp > newest.timestamp) newest = p;
    if (p.timestamp + period * 1000 > cutoff) {
      generation = generation === undefined ? p.minimum : Math.min(generation, p.minimum);
    }
  }
  const lastSeen = newest ? { generation: newest.minimum, timestamp: newest.timestamp } : undefined;
  return generation === undefined
    ? { consumer, state: 'silent', lastSeen }
    : { consumer, state: 'fresh', generation, lastSeen };
}
