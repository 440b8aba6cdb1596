/**
 * An in-memory model of the documented behaviour of Amazon CloudWatch metrics, for the drill and
 * the tests. It answers the real SDK v3 commands (installed with aws-sdk-client-mock, see
 * {@link installCloudWatchModel}) the way the service does, so the consumer reporter's real
 * PutMetricData output drives the gates' real GetMetricData queries:
 *
 * - PutMetricData validates namespace (no `AWS/` prefix), metric names, dimensions (at most 30,
 *   ASCII, no leading colon, no duplicate names), values (finite, within +-2^360), `Values`/`Counts`
 *   arrays (at most 150 values), `StatisticValues`, units, `StorageResolution` (1 or 60) and
 *   timestamps (default now; from two weeks in the past to two hours in the future). Standard
 *   resolution data is stored per minute, high resolution per second, as CloudWatch stores it.
 * - A metric is identified by namespace, name and the exact set of dimensions: a query with fewer
 *   or other dimensions does not match (CloudWatch does not aggregate across dimensions).
 * - GetMetricData takes 1-500 MetricDataQuery structures with unique ids (lowercase first letter,
 *   then letters, digits, underscore), each with a MetricStat (Namespace, MetricName, Dimensions,
 *   Period 1/5/10/20/30 or a multiple of 60, Stat Minimum/Maximum/Sum/SampleCount/Average, optional
 *   Unit filter). StartTime is inclusive and rounded down as documented (to the period for periods
 *   under a minute, else to the minute, 5 minutes or hour by age); EndTime is exclusive. Buckets
 *   start at the rounded StartTime and step by Period; a bucket without samples returns no data
 *   point. ScanBy (default TimestampDescending) orders each series; MaxDatapoints (default 100,800)
 *   paginates with NextToken.
 * - Math expressions and Metrics Insights queries are not modelled: they are rejected with
 *   InvalidParameterValueException rather than answered wrongly.
 *
 * Time comes from an injectable clock so tests control it.
 */
import { createHash } from 'node:crypto';
import {
  InvalidNextToken,
  InvalidParameterCombinationException,
  InvalidParameterValueException,
  MissingRequiredParameterException,
  type Dimension,
  type GetMetricDataCommandInput,
  type GetMetricDataCommandOutput,
  type ListMetricsCommandInput,
  type ListMetricsCommandOutput,
  type MetricDataResult,
  type MetricDatum,
  type PutMetricDataCommandInput,
  type PutMetricDataCommandOutput,
} from '@aws-sdk/client-cloudwatch';

const meta = { $metadata: {} };
const MINUTE = 60_000;
const DAY = 86_400_000;
const MAX_VALUE = 2 ** 360;

/** Limits documented for the CloudWatch API. */
export const CLOUDWATCH_LIMITS = {
  maxMetricDataPerPut: 1000,
  maxDimensions: 30,
  maxValuesPerDatum: 150,
  maxQueriesPerGetMetricData: 500,
  defaultMaxDatapoints: 100_800,
  maxPastMs: 14 * DAY,
  maxFutureMs: 2 * 3_600_000,
} as const;

const STANDARD_UNITS = new Set([
  'Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes', 'Terabytes',
  'Bits', 'Kilobits', 'Megabits', 'Gigabits', 'Terabits', 'Percent', 'Count', 'Bytes/Second',
  'Kilobytes/Second', 'Megabytes/Second', 'Gigabytes/Second', 'Terabytes/Second', 'Bits/Second',
  'Kilobits/Second', 'Megabits/Second', 'Gigabits/Second', 'Terabits/Second', 'Count/Second', 'None',
]);
const STATS = new Set(['Minimum', 'Maximum', 'Sum', 'SampleCount', 'Average']);
const SUB_MINUTE_PERIODS = new Set([1, 5, 10, 20, 30]);
const QUERY_ID = /^[a-z][a-zA-Z0-9_]{0,254}$/;

/** Aggregated samples stored at one timestamp (a minute, or a second for high resolution). */
interface Cell {
  readonly t: number;
  readonly unit: string;
  count: number;
  sum: number;
  min: number;
  max: number;
}

interface StoredMetric {
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: readonly { Name: string; Value: string }[];
  /** Cells keyed by `${t}|${unit}`. */
  readonly cells: Map<string, Cell>;
  lastPut: number;
}

/** Counters for benchmarks and assertions. */
export interface CloudWatchModelStats {
  putMetricDataCalls: number;
  getMetricDataCalls: number;
  listMetricsCalls: number;
  /** MetricDataQuery structures received (what GetMetricData is billed by). */
  queriesRequested: number;
  /** Data points returned by GetMetricData. */
  datapointsReturned: number;
  /** Data points (samples) accepted by PutMetricData. */
  samplesStored: number;
}

export interface CloudWatchModelOptions {
  /**
   * Milliseconds since the epoch, read for default timestamps, timestamp validation and
   * StartTime rounding.
   *
   * @default Date.now
   */
  readonly now?: () => number;
}

/**
 * In-memory CloudWatch metrics. Create one per test (or per drill) and install it with
 * {@link installCloudWatchModel}.
 *
 * @example
 * let t = Date.parse('2030-01-01T00:00:00Z');
 * const cw = new CloudWatchModel({ now: () => t });
 * cw.putMetricData({ Namespace: 'SecretRotation', MetricData: [{ MetricName: 'LoadedGeneration', Value: 3 }] });
 */
export class CloudWatchModel {
  private readonly metrics = new Map<string, StoredMetric>();
  private readonly clock: () => number;
  public readonly stats: CloudWatchModelStats = {
    putMetricDataCalls: 0,
    getMetricDataCalls: 0,
    listMetricsCalls: 0,
    queriesRequested: 0,
    datapointsReturned: 0,
    samplesStored: 0,
  };

  public constructor(options: CloudWatchModelOptions = {}) {
    this.clock = options.now ?? Date.now;
  }

  /** The model's current time. */
  public now(): number {
    return this.clock();
  }

  /** Forgets every stored data point and resets the counters. */
  public clear(): void {
    this.metrics.clear();
    for (const k of Object.keys(this.stats) as (keyof CloudWatchModelStats)[]) this.stats[k] = 0;
  }

  public putMetricData(input: PutMetricDataCommandInput): PutMetricDataCommandOutput {
    this.stats.putMetricDataCalls++;
    const namespace = input.Namespace;
    if (namespace === undefined || namespace === '') throw missing('Namespace');
    checkAscii(namespace, 'Namespace', 255);
    if (namespace.startsWith('AWS/')) throw invalid(`The value ${namespace} for parameter Namespace is invalid.`);
    const data = input.MetricData ?? [];
    if (data.length === 0) throw missing('MetricData');
    if (data.length > CLOUDWATCH_LIMITS.maxMetricDataPerPut) {
      throw invalid(`The collection MetricData must not have a size greater than ${CLOUDWATCH_LIMITS.maxMetricDataPerPut}.`);
    }
    const now = this.clock();
    // Validate everything first: a request with one invalid datum stores nothing.
    const accepted = data.map((d, i) => this.validateDatum(d, i + 1, now));
    for (const a of accepted) this.store(namespace, a);
    return { ...meta };
  }

  /**
   * Stores one datum the way an AWS service publishes into its own namespace (`AWS/Lambda`,
   * `AWS/Events`), which PutMetricData refuses to callers. The local Lambda model records its
   * functions' `Invocations`, `Errors` and `Throttles` with it.
   *
   * @example
   * cw.recordServiceMetric('AWS/Lambda', { MetricName: 'Errors', Dimensions: [{ Name: 'FunctionName', Value: 'fn' }], Value: 1, Unit: 'Count' });
   */
  public recordServiceMetric(namespace: string, datum: MetricDatum): void {
    this.store(namespace, this.validateDatum(datum, 1, this.clock()));
  }

  /**
   * Ingests one log line the way CloudWatch Logs extracts Embedded Metric Format from a Lambda log
   * group: every metric of every directive, under every dimension set, at the record's Timestamp.
   * Lines that are not EMF records are ordinary log lines and are ignored. Returns the data points
   * stored.
   *
   * @example
   * handler deps: { writeMetric: (line) => cw.putEmbeddedMetricLine(line) }
   */
  public putEmbeddedMetricLine(line: string): number {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return 0;
    }
    const aws = record._aws as
      | {
          Timestamp?: number;
          CloudWatchMetrics?: {
            Namespace: string;
            Dimensions: string[][];
            Metrics: { Name: string; Unit?: string }[];
          }[];
        }
      | undefined;
    if (!aws?.CloudWatchMetrics) return 0;
    const timestamp = new Date(aws.Timestamp ?? this.clock());
    let stored = 0;
    for (const directive of aws.CloudWatchMetrics) {
      if (directive.Namespace.startsWith('AWS/')) continue;
      for (const dimensionSet of directive.Dimensions) {
        const dims = dimensionSet.map((name) => ({ Name: name, Value: String(record[name]) }));
        for (const metric of directive.Metrics) {
          const value = record[metric.Name];
          if (typeof value !== 'number') continue;
          this.recordServiceMetric(directive.Namespace, {
            MetricName: metric.Name,
            Dimensions: dims,
            Value: value,
            Unit: (metric.Unit ?? 'None') as MetricDatum['Unit'],
            Timestamp: timestamp,
          });
          stored++;
        }
      }
    }
    return stored;
  }

  public getMetricData(input: GetMetricDataCommandInput): GetMetricDataCommandOutput {
    this.stats.getMetricDataCalls++;
    const queries = input.MetricDataQueries ?? [];
    if (queries.length === 0) throw missing('MetricDataQueries');
    if (queries.length > CLOUDWATCH_LIMITS.maxQueriesPerGetMetricData) {
      throw invalid(
        `The collection MetricDataQueries must not have a size greater than ${CLOUDWATCH_LIMITS.maxQueriesPerGetMetricData}.`,
      );
    }
    this.stats.queriesRequested += queries.length;
    if (!input.StartTime) throw missing('StartTime');
    if (!input.EndTime) throw missing('EndTime');
    const start = toMillis(input.StartTime, 'StartTime');
    const end = toMillis(input.EndTime, 'EndTime');
    if (start >= end) throw invalid('The parameter StartTime must be less than the parameter EndTime.');
    const maxDatapoints = input.MaxDatapoints ?? CLOUDWATCH_LIMITS.defaultMaxDatapoints;
    if (!Number.isInteger(maxDatapoints) || maxDatapoints < 1) throw invalid('The parameter MaxDatapoints must be a positive integer.');
    const scanBy = input.ScanBy ?? 'TimestampDescending';
    if (scanBy !== 'TimestampDescending' && scanBy !== 'TimestampAscending') {
      throw invalid(`The value ${scanBy} for parameter ScanBy is invalid.`);
    }
    const ids = new Set<string>();
    const now = this.clock();
    const series = queries.map((q, i) => {
      const where = `MetricDataQueries.member.${i + 1}`;
      if (!q.Id) throw missing(`${where}.Id`);
      if (!QUERY_ID.test(q.Id)) {
        throw invalid(`The value ${q.Id} for parameter ${where}.Id is invalid: it must start with a lowercase letter and contain only letters, digits and underscore.`);
      }
      if (ids.has(q.Id)) throw invalid(`The value ${q.Id} for parameter MetricDataQueries is duplicated: ids must be unique.`);
      ids.add(q.Id);
      if (q.Expression !== undefined && q.MetricStat !== undefined) {
        throw combination(`${where}: specify either Expression or MetricStat, not both.`);
      }
      if (q.Expression !== undefined) {
        throw invalid(`${where}.Expression: math expressions and Metrics Insights queries are not supported by the local CloudWatch model.`);
      }
      const stat = q.MetricStat;
      if (!stat) throw missing(`${where}.MetricStat`);
      const metric = stat.Metric;
      if (!metric?.Namespace) throw missing(`${where}.MetricStat.Metric.Namespace`);
      if (!metric.MetricName) throw missing(`${where}.MetricStat.Metric.MetricName`);
      const period = stat.Period;
      if (period === undefined) throw missing(`${where}.MetricStat.Period`);
      if (!Number.isInteger(period) || period < 1 || (!SUB_MINUTE_PERIODS.has(period) && period % 60 !== 0)) {
        throw invalid(`The value ${period} for parameter ${where}.MetricStat.Period is invalid: use 1, 5, 10, 20, 30 or a multiple of 60.`);
      }
      if (!stat.Stat || !STATS.has(stat.Stat)) {
        throw invalid(`The value ${stat.Stat} for parameter ${where}.MetricStat.Stat is not supported by the local CloudWatch model.`);
      }
      if (stat.Unit !== undefined && !STANDARD_UNITS.has(stat.Unit)) {
        throw invalid(`The value ${stat.Unit} for parameter ${where}.MetricStat.Unit is invalid.`);
      }
      const dims = normalizeDimensions(metric.Dimensions ?? [], `${where}.MetricStat.Metric.Dimensions`);
      const stored = this.metrics.get(metricKey(metric.Namespace, metric.MetricName, dims));
      const points = stored ? aggregate(stored, roundStart(start, period, now), end, period, stat.Stat, stat.Unit) : [];
      if (scanBy === 'TimestampDescending') points.reverse();
      return { id: q.Id, label: q.Label ?? metric.MetricName, returnData: q.ReturnData !== false, points };
    });

    // Pagination: data points are counted across every returned series in query order.
    const fingerprint = requestFingerprint(input);
    let offset = 0;
    if (input.NextToken !== undefined) offset = decodeToken(input.NextToken, fingerprint);
    const returned = series.filter((s) => s.returnData);
    const total = returned.reduce((n, s) => n + s.points.length, 0);
    const pageEnd = Math.min(total, offset + maxDatapoints);
    const results: MetricDataResult[] = [];
    let position = 0;
    for (const s of returned) {
      const from = Math.max(offset, position);
      const to = Math.min(pageEnd, position + s.points.length);
      const firstPage = offset === 0;
      if (to > from || (firstPage && s.points.length === 0)) {
        const slice = to > from ? s.points.slice(from - position, to - position) : [];
        results.push({
          Id: s.id,
          Label: s.label,
          Timestamps: slice.map((p) => new Date(p.t)),
          Values: slice.map((p) => p.v),
          StatusCode: to < position + s.points.length ? 'PartialData' : 'Complete',
          Messages: [],
        });
      }
      position += s.points.length;
    }
    this.stats.datapointsReturned += pageEnd - offset;
    return {
      MetricDataResults: results,
      NextToken: pageEnd < total ? encodeToken(pageEnd, fingerprint) : undefined,
      Messages: [],
      ...meta,
    };
  }

  public listMetrics(input: ListMetricsCommandInput): ListMetricsCommandOutput {
    this.stats.listMetricsCalls++;
    const now = this.clock();
    const matches = [...this.metrics.values()].filter((m) => {
      if (input.Namespace !== undefined && m.namespace !== input.Namespace) return false;
      if (input.MetricName !== undefined && m.metricName !== input.MetricName) return false;
      if (input.RecentlyActive === 'PT3H' && m.lastPut < now - 3 * 3_600_000) return false;
      return (input.Dimensions ?? []).every((f) =>
        m.dimensions.some((d) => d.Name === f.Name && (f.Value === undefined || d.Value === f.Value)),
      );
    });
    const offset = input.NextToken !== undefined ? decodeToken(input.NextToken, 'list') : 0;
    const page = matches.slice(offset, offset + 500);
    return {
      Metrics: page.map((m) => ({ Namespace: m.namespace, MetricName: m.metricName, Dimensions: m.dimensions.map((d) => ({ ...d })) })),
      NextToken: offset + 500 < matches.length ? encodeToken(offset + 500, 'list') : undefined,
      ...meta,
    };
  }

  /**
   * Every stored sample cell of one metric (oldest first), for assertions.
   *
   * @example
   * model.cells('SecretRotation', 'LoadedGeneration', [{ Name: 'SecretName', Value: 'app' }, { Name: 'Consumer', Value: 'api' }]);
   */
  public cells(namespace: string, metricName: string, dimensions: readonly Dimension[]): { t: number; count: number; min: number; max: number; sum: number; unit: string }[] {
    const stored = this.metrics.get(metricKey(namespace, metricName, normalizeDimensions(dimensions, 'Dimensions')));
    return stored ? [...stored.cells.values()].sort((a, b) => a.t - b.t).map((c) => ({ ...c })) : [];
  }

  private validateDatum(d: MetricDatum, n: number, now: number): AcceptedDatum {
    const where = `MetricData.member.${n}`;
    if (!d.MetricName) throw missing(`${where}.MetricName`);
    checkAscii(d.MetricName, `${where}.MetricName`, 255);
    const dims = normalizeDimensions(d.Dimensions ?? [], `${where}.Dimensions`);
    const unit = d.Unit ?? 'None';
    if (!STANDARD_UNITS.has(unit)) throw invalid(`The value ${unit} for parameter ${where}.Unit is invalid.`);
    const resolution = d.StorageResolution ?? 60;
    if (resolution !== 1 && resolution !== 60) {
      throw invalid(`The value ${resolution} for parameter ${where}.StorageResolution is invalid: use 1 or 60.`);
    }
    const t = d.Timestamp === undefined ? now : toMillis(d.Timestamp, `${where}.Timestamp`);
    if (t < now - CLOUDWATCH_LIMITS.maxPastMs || t > now + CLOUDWATCH_LIMITS.maxFutureMs) {
      throw invalid(`The parameter ${where}.Timestamp must specify a time no more than two weeks in the past and no more than two hours in the future.`);
    }
    const forms = [d.Value !== undefined, d.StatisticValues !== undefined, d.Values !== undefined].filter(Boolean).length;
    if (forms === 0) throw missing(`${where}.Value`);
    if (forms > 1) throw combination(`${where}: specify only one of Value, StatisticValues or Values.`);
    let samples: { count: number; sum: number; min: number; max: number };
    if (d.Value !== undefined) {
      checkValue(d.Value, `${where}.Value`);
      samples = { count: 1, sum: d.Value, min: d.Value, max: d.Value };
    } else if (d.StatisticValues !== undefined) {
      const s = d.StatisticValues;
      for (const k of ['SampleCount', 'Sum', 'Minimum', 'Maximum'] as const) {
        if (s[k] === undefined) throw missing(`${where}.StatisticValues.${k}`);
        checkValue(s[k]!, `${where}.StatisticValues.${k}`);
      }
      if (s.SampleCount! <= 0) throw invalid(`The parameter ${where}.StatisticValues.SampleCount must be greater than 0.`);
      if (s.Minimum! > s.Maximum!) throw invalid(`The parameter ${where}.StatisticValues.Minimum must not exceed Maximum.`);
      samples = { count: s.SampleCount!, sum: s.Sum!, min: s.Minimum!, max: s.Maximum! };
    } else {
      const values = d.Values!;
      if (values.length === 0) throw missing(`${where}.Values`);
      if (values.length > CLOUDWATCH_LIMITS.maxValuesPerDatum) {
        throw invalid(`The collection ${where}.Values must not have a size greater than ${CLOUDWATCH_LIMITS.maxValuesPerDatum}.`);
      }
      const counts = d.Counts;
      if (counts !== undefined && counts.length !== values.length) {
        throw combination(`${where}: Values and Counts must have the same length.`);
      }
      samples = { count: 0, sum: 0, min: Infinity, max: -Infinity };
      values.forEach((v, i) => {
        checkValue(v, `${where}.Values.member.${i + 1}`);
        const c = counts?.[i] ?? 1;
        if (!Number.isFinite(c) || c < 0) throw invalid(`The parameter ${where}.Counts.member.${i + 1} must be a non-negative number.`);
        if (c === 0) return;
        samples.count += c;
        samples.sum += v * c;
        samples.min = Math.min(samples.min, v);
        samples.max = Math.max(samples.max, v);
      });
    }
    const granularity = resolution === 1 ? 1000 : MINUTE;
    return { metricName: d.MetricName, dims, unit, t: Math.floor(t / granularity) * granularity, samples };
  }

  private store(namespace: string, a: AcceptedDatum): void {
    if (a.samples.count === 0) return;
    const key = metricKey(namespace, a.metricName, a.dims);
    let stored = this.metrics.get(key);
    if (!stored) {
      stored = { namespace, metricName: a.metricName, dimensions: a.dims, cells: new Map(), lastPut: 0 };
      this.metrics.set(key, stored);
    }
    stored.lastPut = Math.max(stored.lastPut, this.clock());
    const cellKey = `${a.t}|${a.unit}`;
    const cell = stored.cells.get(cellKey);
    if (cell) {
      cell.count += a.samples.count;
      cell.sum += a.samples.sum;
      cell.min = Math.min(cell.min, a.samples.min);
      cell.max = Math.max(cell.max, a.samples.max);
    } else {
      stored.cells.set(cellKey, { t: a.t, unit: a.unit, ...a.samples });
    }
    this.stats.samplesStored += a.samples.count;
  }
}

interface AcceptedDatum {
  readonly metricName: string;
  readonly dims: readonly { Name: string; Value: string }[];
  readonly unit: string;
  readonly t: number;
  readonly samples: { count: number; sum: number; min: number; max: number };
}

/** Buckets [start + k*period, start + (k+1)*period) up to `end` (exclusive), oldest first. */
function aggregate(
  stored: StoredMetric,
  start: number,
  end: number,
  period: number,
  stat: string,
  unit: string | undefined,
): { t: number; v: number }[] {
  const periodMs = period * 1000;
  const buckets = new Map<number, { count: number; sum: number; min: number; max: number }>();
  for (const cell of stored.cells.values()) {
    if (cell.t < start || cell.t >= end) continue;
    if (unit !== undefined && cell.unit !== unit) continue;
    const b = start + Math.floor((cell.t - start) / periodMs) * periodMs;
    const acc = buckets.get(b);
    if (acc) {
      acc.count += cell.count;
      acc.sum += cell.sum;
      acc.min = Math.min(acc.min, cell.min);
      acc.max = Math.max(acc.max, cell.max);
    } else {
      buckets.set(b, { count: cell.count, sum: cell.sum, min: cell.min, max: cell.max });
    }
  }
  return [...buckets.entries()]
    .sort(([a], [b]) => a - b)
    .map(([t, a]) => ({ t, v: statistic(a, stat) }));
}

function statistic(a: { count: number; sum: number; min: number; max: number }, stat: string): number {
  switch (stat) {
    case 'Minimum':
      return a.min;
    case 'Maximum':
      return a.max;
    case 'Sum':
      return a.sum;
    case 'SampleCount':
      return a.count;
    default:
      return a.sum / a.count;
  }
}

/** StartTime rounding as documented for GetMetricData. */
function roundStart(start: number, period: number, now: number): number {
  if (period < 60) return Math.floor(start / (period * 1000)) * period * 1000;
  const age = now - start;
  const unit = age > 63 * DAY ? 3_600_000 : age > 15 * DAY ? 5 * MINUTE : MINUTE;
  return Math.floor(start / unit) * unit;
}

function normalizeDimensions(dimensions: readonly Dimension[], where: string): { Name: string; Value: string }[] {
  if (dimensions.length > CLOUDWATCH_LIMITS.maxDimensions) {
    throw invalid(`The collection ${where} must not have a size greater than ${CLOUDWATCH_LIMITS.maxDimensions}.`);
  }
  const names = new Set<string>();
  const out = dimensions.map((d, i) => {
    if (!d.Name) throw missing(`${where}.member.${i + 1}.Name`);
    if (d.Value === undefined || d.Value === '') throw missing(`${where}.member.${i + 1}.Value`);
    checkAscii(d.Name, `${where}.member.${i + 1}.Name`, 255);
    checkAscii(d.Value, `${where}.member.${i + 1}.Value`, 1024);
    if (d.Name.startsWith(':')) throw invalid(`The value ${d.Name} for parameter ${where}.member.${i + 1}.Name must not start with a colon.`);
    if (names.has(d.Name)) throw invalid(`The collection ${where} contains the dimension name ${d.Name} more than once.`);
    names.add(d.Name);
    return { Name: d.Name, Value: d.Value };
  });
  return out.sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
}

function metricKey(namespace: string, metricName: string, dims: readonly { Name: string; Value: string }[]): string {
  return JSON.stringify([namespace, metricName, dims.map((d) => [d.Name, d.Value])]);
}

function checkAscii(value: string, where: string, max: number): void {
  // Printable ASCII only, and at least one non-whitespace character.
  if (value.length > max || !/^[\x20-\x7e]+$/.test(value) || value.trim() === '') {
    throw invalid(`The value for parameter ${where} is invalid: 1-${max} printable ASCII characters, not only whitespace.`);
  }
}

function checkValue(v: number, where: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > MAX_VALUE) {
    throw invalid(`The value ${v} for parameter ${where} is invalid: it must be a finite number within +-2^360.`);
  }
}

function toMillis(value: Date | string | number, where: string): number {
  const t = value instanceof Date ? value.getTime() : new Date(value).getTime();
  if (!Number.isFinite(t)) throw invalid(`The value for parameter ${where} is not a valid timestamp.`);
  return t;
}

function requestFingerprint(input: GetMetricDataCommandInput): string {
  const rest: Partial<GetMetricDataCommandInput> = { ...input };
  delete rest.NextToken;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 16);
}

function encodeToken(offset: number, fingerprint: string): string {
  return Buffer.from(JSON.stringify({ o: offset, f: fingerprint })).toString('base64');
}

function decodeToken(token: string, fingerprint: string): number {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { o?: unknown; f?: unknown };
    if (parsed.f === fingerprint && typeof parsed.o === 'number' && Number.isInteger(parsed.o) && parsed.o >= 0) return parsed.o;
  } catch {
    // fall through
  }
  throw new InvalidNextToken({ message: 'The service cannot process the NextToken: it does not belong to this request.', ...meta });
}

function invalid(message: string): InvalidParameterValueException {
  return new InvalidParameterValueException({ message, ...meta });
}

function missing(parameter: string): MissingRequiredParameterException {
  return new MissingRequiredParameterException({ message: `The parameter ${parameter} is required.`, ...meta });
}

function combination(message: string): InvalidParameterCombinationException {
  return new InvalidParameterCombinationException({ message, ...meta });
}
