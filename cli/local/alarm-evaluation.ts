/**
 * Evaluates a CloudWatch alarm, as synthesized into an `AWS::CloudWatch::Alarm` resource, against
 * the local CloudWatch model: so tests can drive the real function and the local Lambda model and
 * ask "would this alarm fire now?" of the alarm definition the stack deploys.
 *
 * What is modelled (CloudWatch user guide, "Using Amazon CloudWatch alarms" and "Using metric math"):
 * - The evaluation range is the last `EvaluationPeriods` complete periods before the evaluation
 *   time. Each period yields one data point or none (missing).
 * - A single-metric alarm reads its statistic; a metric math alarm reads every `MetricStat` query
 *   and computes the query with `ReturnData: true`. Supported math: numbers, query ids, `+ - * /`,
 *   unary minus, parentheses, array literals `[a, b]`, `FILL(x, value)` (of a series or an array),
 *   and `MIN`, `MAX`, `SUM`, `AVG` of an array (one series: the statistic across the array at each
 *   period). Arithmetic on a period where an operand is missing gives a missing value, so an alarm
 *   that does not say what missing data means (with FILL) is seen as missing here. Anything else is
 *   refused with an error rather than evaluated wrongly.
 * - `TreatMissingData`: `breaching` and `notBreaching` count missing points as such; `missing`
 *   (the default) and `ignore` leave them out, and when every point is missing the alarm is
 *   INSUFFICIENT_DATA (`missing`) or keeps its previous state (`ignore`).
 * - ALARM when at least `DatapointsToAlarm` (default `EvaluationPeriods`) points breach, else OK.
 */
import type { Dimension } from '@aws-sdk/client-cloudwatch';
import type { CloudWatchModel } from './cloudwatch-model';

export type AlarmState = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';

/** A metric as an alarm names it. */
export interface AlarmMetric {
  readonly Namespace: string;
  readonly MetricName: string;
  readonly Dimensions?: readonly Dimension[];
}

/** One entry of an alarm's `Metrics`. */
export interface AlarmQuery {
  readonly Id: string;
  readonly Expression?: string;
  readonly MetricStat?: {
    readonly Metric: AlarmMetric;
    readonly Period: number;
    readonly Stat: string;
  };
  readonly ReturnData?: boolean;
}

/** The properties of an `AWS::CloudWatch::Alarm` this evaluation reads, with every value resolved. */
export interface AlarmDefinition {
  readonly Namespace?: string;
  readonly MetricName?: string;
  readonly Dimensions?: readonly Dimension[];
  readonly Statistic?: string;
  readonly Period?: number;
  readonly Metrics?: readonly AlarmQuery[];
  readonly EvaluationPeriods: number;
  readonly DatapointsToAlarm?: number;
  readonly Threshold: number;
  readonly ComparisonOperator: string;
  readonly TreatMissingData?: string;
}

/** The outcome of one evaluation. */
export interface AlarmEvaluation {
  readonly state: AlarmState;
  /** The evaluated data points, oldest first; `undefined` where a period has none. */
  readonly datapoints: readonly (number | undefined)[];
}

type Series = (number | undefined)[];
type Value = number | Series | Series[];

/**
 * Evaluates `alarm` at time `at` (default: the model's clock).
 *
 * @throws Error when the alarm uses metric math this evaluation does not model
 *
 * @example
 * const { state } = evaluateAlarm(cw, resolvedAlarmProperties);
 * expect(state).toBe('ALARM');
 */
export function evaluateAlarm(
  cw: CloudWatchModel,
  alarm: AlarmDefinition,
  options: { at?: number; previousState?: AlarmState } = {},
): AlarmEvaluation {
  const at = options.at ?? cw.now();
  const queries: readonly AlarmQuery[] = alarm.Metrics ?? [
    {
      Id: 'm',
      ReturnData: true,
      MetricStat: {
        Metric: {
          Namespace: required(alarm.Namespace, 'Namespace'),
          MetricName: required(alarm.MetricName, 'MetricName'),
          Dimensions: alarm.Dimensions,
        },
        Period: required(alarm.Period, 'Period'),
        Stat: required(alarm.Statistic, 'Statistic'),
      },
    },
  ];
  const period = queries.find((q) => q.MetricStat)?.MetricStat?.Period;
  if (!period) throw new Error('the alarm reads no metric');
  const periodMs = period * 1000;
  const end = Math.floor(at / periodMs) * periodMs;
  const start = end - alarm.EvaluationPeriods * periodMs;
  const buckets = Array.from({ length: alarm.EvaluationPeriods }, (_, i) => start + i * periodMs);

  const values = new Map<string, Value>();
  for (const q of queries) {
    if (!q.MetricStat) continue;
    if (q.MetricStat.Period !== period) {
      throw new Error(`query ${q.Id}: every metric of the alarm must have the same period`);
    }
    values.set(q.Id, readSeries(cw, q, start, end, buckets));
  }
  const expressions = queries.filter((q) => q.Expression !== undefined);
  // Expressions may refer to each other in any order: evaluate until every one has a value.
  let pending = expressions;
  while (pending.length > 0) {
    const next = pending.filter((q) => !tryEvaluate(q, values, buckets.length));
    if (next.length === pending.length) {
      throw new Error(`cannot evaluate ${next.map((q) => q.Id).join(', ')}: unknown ids`);
    }
    pending = next;
  }
  const returned = queries.filter((q) => q.ReturnData ?? true);
  if (returned.length !== 1) throw new Error('an alarm returns exactly one query');
  const result = values.get(returned[0].Id);
  if (!Array.isArray(result) || Array.isArray(result[0])) {
    throw new Error(`query ${returned[0].Id} must give one time series`);
  }
  const datapoints = result as Series;
  return { state: decide(alarm, datapoints, options.previousState), datapoints };
}

function required<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new Error(`the alarm has no ${name}`);
  return value;
}

function readSeries(
  cw: CloudWatchModel,
  q: AlarmQuery,
  start: number,
  end: number,
  buckets: readonly number[],
): Series {
  const stat = q.MetricStat!;
  const out = cw.getMetricData({
    StartTime: new Date(start),
    EndTime: new Date(end),
    MetricDataQueries: [
      {
        Id: 'q',
        MetricStat: {
          Metric: {
            Namespace: stat.Metric.Namespace,
            MetricName: stat.Metric.MetricName,
            Dimensions: [...(stat.Metric.Dimensions ?? [])],
          },
          Period: stat.Period,
          Stat: stat.Stat,
        },
      },
    ],
  });
  const result = out.MetricDataResults?.[0];
  const byTime = new Map<number, number>();
  (result?.Timestamps ?? []).forEach((t, i) =>
    byTime.set(new Date(t).getTime(), result!.Values![i]),
  );
  return buckets.map((b) => byTime.get(b));
}

function tryEvaluate(q: AlarmQuery, values: Map<string, Value>, length: number): boolean {
  const parser = new ExpressionParser(q.Expression!, values, length);
  const missingId = parser.unknownIds().find((id) => !values.has(id));
  if (missingId !== undefined) return false;
  values.set(q.Id, parser.parse());
  return true;
}

function decide(
  alarm: AlarmDefinition,
  datapoints: readonly (number | undefined)[],
  previous: AlarmState | undefined,
): AlarmState {
  const treat = alarm.TreatMissingData ?? 'missing';
  const breaches = (v: number): boolean => {
    switch (alarm.ComparisonOperator) {
      case 'GreaterThanThreshold':
        return v > alarm.Threshold;
      case 'GreaterThanOrEqualToThreshold':
        return v >= alarm.Threshold;
      case 'LessThanThreshold':
        return v < alarm.Threshold;
      case 'LessThanOrEqualToThreshold':
        return v <= alarm.Threshold;
      default:
        throw new Error(`comparison ${alarm.ComparisonOperator} is not modelled`);
    }
  };
  const present = datapoints.filter((v): v is number => v !== undefined);
  if (present.length === 0 && (treat === 'missing' || treat === 'ignore')) {
    return treat === 'ignore' ? (previous ?? 'INSUFFICIENT_DATA') : 'INSUFFICIENT_DATA';
  }
  const missingBreaching = treat === 'breaching' ? datapoints.length - present.length : 0;
  const breaching = present.filter(breaches).length + missingBreaching;
  return breaching >= (alarm.DatapointsToAlarm ?? alarm.EvaluationPeriods) ? 'ALARM' : 'OK';
}

const FUNCTIONS = new Set(['FILL', 'MIN', 'MAX', 'SUM', 'AVG']);

/** A recursive-descent parser that evaluates as it parses. */
class ExpressionParser {
  private readonly tokens: string[];
  private position = 0;

  public constructor(
    private readonly text: string,
    private readonly values: Map<string, Value>,
    private readonly length: number,
  ) {
    this.tokens = text.match(/\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*|[()[\],+\-*/]|\S/g) ?? [];
  }

  /** Identifiers that are not functions: the query ids the expression reads. */
  public unknownIds(): string[] {
    return this.tokens.filter((t, i) => /^[A-Za-z_]/.test(t) && this.tokens[i + 1] !== '(');
  }

  public parse(): Value {
    const v = this.sum();
    if (this.position !== this.tokens.length) this.fail(`unexpected ${this.tokens[this.position]}`);
    return v;
  }

  private sum(): Value {
    let left = this.product();
    while (this.peek() === '+' || this.peek() === '-') {
      const op = this.next();
      left = combine(left, this.product(), op === '+' ? (a, b) => a + b : (a, b) => a - b);
    }
    return left;
  }

  private product(): Value {
    let left = this.unary();
    while (this.peek() === '*' || this.peek() === '/') {
      const op = this.next();
      left = combine(left, this.unary(), op === '*' ? (a, b) => a * b : (a, b) => a / b);
    }
    return left;
  }

  private unary(): Value {
    if (this.peek() === '-') {
      this.next();
      return combine(0, this.unary(), (_, b) => -b);
    }
    return this.primary();
  }

  private primary(): Value {
    const token = this.next();
    if (token === undefined) return this.fail('unexpected end');
    if (/^\d/.test(token)) return Number(token);
    if (token === '(') {
      const v = this.sum();
      this.expect(')');
      return v;
    }
    if (token === '[') {
      const items: Series[] = [];
      do items.push(this.seriesOf(this.sum()));
      while (this.peek() === ',' && this.next());
      this.expect(']');
      return items;
    }
    if (this.peek() === '(') {
      if (!FUNCTIONS.has(token)) return this.fail(`function ${token} is not modelled`);
      this.next();
      const args: Value[] = [this.sum()];
      while (this.peek() === ',') {
        this.next();
        args.push(this.sum());
      }
      this.expect(')');
      return this.call(token, args);
    }
    const v = this.values.get(token);
    if (v === undefined) return this.fail(`unknown id ${token}`);
    return v;
  }

  private call(name: string, args: Value[]): Value {
    if (name === 'FILL') {
      const [x, fill] = args;
      if (typeof fill !== 'number') return this.fail('FILL takes a number as its fill value');
      const filled = (s: Series): Series => s.map((v) => v ?? fill);
      if (typeof x === 'number') return this.fail('FILL takes a time series or an array');
      return isArrayOfSeries(x) ? x.map(filled) : filled(x);
    }
    const [array] = args;
    if (args.length !== 1 || typeof array === 'number' || !isArrayOfSeries(array)) {
      return this.fail(
        `${name} is modelled only for an array of time series, e.g. ${name}([m1, m2])`,
      );
    }
    return Array.from({ length: this.length }, (_, i) => {
      const present = array.map((s) => s[i]).filter((v): v is number => v !== undefined);
      if (present.length === 0) return undefined;
      if (name === 'MIN') return Math.min(...present);
      if (name === 'MAX') return Math.max(...present);
      const sum = present.reduce((a, b) => a + b, 0);
      return name === 'SUM' ? sum : sum / present.length;
    });
  }

  private seriesOf(v: Value): Series {
    if (typeof v === 'number') return Array.from({ length: this.length }, () => v);
    if (isArrayOfSeries(v)) return this.fail('arrays cannot be nested');
    return v;
  }

  private peek(): string | undefined {
    return this.tokens[this.position];
  }

  private next(): string | undefined {
    return this.tokens[this.position++];
  }

  private expect(token: string): void {
    if (this.next() !== token) this.fail(`expected ${token}`);
  }

  private fail(message: string): never {
    throw new Error(`metric math "${this.text}": ${message}`);
  }
}

function isArrayOfSeries(v: Series | Series[]): v is Series[] {
  return v.length > 0 && Array.isArray(v[0]);
}

/** Point-wise arithmetic; a missing operand gives a missing result. */
function combine(a: Value, b: Value, op: (x: number, y: number) => number): Value {
  if (typeof a === 'number' && typeof b === 'number') return op(a, b);
  const at = (v: Value, i: number): number | undefined => {
    if (typeof v === 'number') return v;
    if (isArrayOfSeries(v))
      throw new Error('arithmetic on an array of time series is not modelled');
    return v[i];
  };
  const length = typeof a === 'number' ? (b as Series).length : (a as Series).length;
  return Array.from({ length }, (_, i) => {
    const x = at(a, i);
    const y = at(b, i);
    return x === undefined || y === undefined ? undefined : op(x, y);
  });
}
