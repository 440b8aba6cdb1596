/**
 * The reporting half of the metric contract as a checker: what a `LoadedGeneration` report must look
 * like for the gates to read it back (docs/metric-contract.md, "Contract version 1"). Any runtime can
 * report; {@link parseGenerationReport} says whether an embedded-metric-format line it prints would
 * count, and the TypeScript reporter (consumer/reporter.ts), `converge report` (cli/commands/report.ts)
 * and the examples in docs/metric-contract.md are all held to it by the tests.
 *
 * Names, units and dimensions come from lambda/shared/metric-contract.ts; consumer names follow the
 * registry's rule (lambda/shared/registry.ts): nothing here defines them a second time.
 */
import { ConfigurationError, InvalidReportError } from './errors';
import {
  DIMENSION_CONSUMER,
  DIMENSION_SECRET,
  LOADED_GENERATION,
  LOADED_GENERATION_UNIT,
  POOL_AGE_SECONDS_MAX,
  RELOAD_FAILURES,
} from './metric-contract';
import { parseRegistry } from './registry';

/**
 * The version of the reporting contract that docs/metric-contract.md describes and this module
 * checks. A report valid under version 1 stays valid under every later 1.x text; a change that
 * would make a valid report count differently gets version 2.
 */
export const METRIC_CONTRACT_VERSION = 1;

/** Units of the consumer metrics, by name. `LoadedGeneration` is a number, not a count. */
export const CONSUMER_METRIC_UNITS: Readonly<Record<string, string>> = {
  [LOADED_GENERATION]: LOADED_GENERATION_UNIT,
  [RELOAD_FAILURES]: 'Count',
  [POOL_AGE_SECONDS_MAX]: 'Seconds',
};

/** CloudWatch keeps a data point only when its timestamp is at most two weeks old ... */
const MAX_PAST_MS = 14 * 86_400_000;
/** ... and at most two hours ahead. */
const MAX_FUTURE_MS = 2 * 3_600_000;
/** 2001-09-09 in milliseconds: a smaller `_aws.Timestamp` was almost certainly written in seconds. */
const MIN_PLAUSIBLE_TIMESTAMP_MS = 1_000_000_000_000;
/** EMF: at most 100 values per metric in one document. */
const MAX_VALUES_PER_METRIC = 100;

/** One `LoadedGeneration` report, as the gates will see it. */
export interface GenerationReport {
  /** `CloudWatchMetrics[].Namespace` of the directive that declares `LoadedGeneration`. */
  readonly namespace: string;
  /** The `SecretName` dimension: the secret's name. */
  readonly secretName: string;
  /** The `Consumer` dimension: the registered consumer name. */
  readonly consumer: string;
  /** The lowest generation in the document (what the promotion gate's Minimum sees). */
  readonly generation: number;
  /** Every generation value in the document (EMF allows an array of up to 100). */
  readonly generations: readonly number[];
  /** `_aws.Timestamp`, milliseconds since the epoch. */
  readonly timestamp: number;
  /** `StorageResolution: 1` on `LoadedGeneration` (kept per second for 3 hours). */
  readonly highResolution: boolean;
  /** `ReloadFailures` summed over its values, when the document carries it. */
  readonly reloadFailures?: number;
  /** `PoolAgeSecondsMax`, the largest of its values, when the document carries it. */
  readonly poolAgeSecondsMax?: number;
}

/** What a report is checked against besides the contract itself. */
export interface ReportExpectation {
  /** The namespace the rotation reads (`metricNamespace` of the construct); any valid one when absent. */
  readonly namespace?: string;
  /**
   * Evaluation time, milliseconds since the epoch: when given, `_aws.Timestamp` must be one CloudWatch
   * accepts (at most two weeks old, at most two hours ahead).
   */
  readonly now?: number;
}

/**
 * Checks one embedded-metric-format line against the metric contract and returns the report the gates
 * would read from it.
 *
 * What it requires (docs/metric-contract.md): one line of JSON; `_aws.Timestamp` in milliseconds;
 * exactly one `CloudWatchMetrics` directive declaring `LoadedGeneration`, with a valid namespace,
 * `Dimensions` exactly `[["SecretName", "Consumer"]]` (either order inside the set) and `Unit`
 * `"None"` (`StorageResolution` absent, 60 or 1); top-level `SecretName` a secret *name* (not an ARN),
 * `Consumer` a name the consumer registry accepts, `LoadedGeneration` a non-negative integer (or an
 * array of them). `ReloadFailures` (Count) and `PoolAgeSecondsMax` (Seconds) are optional and checked
 * when declared. Other top-level members (EMF properties) are allowed.
 *
 * @throws {@link InvalidReportError} naming the field, the rule and the value received
 *
 * @example
 * const report = parseGenerationReport(line, { namespace: 'SecretRotation' });
 * console.log(`${report.consumer} reports generation ${report.generation} for ${report.secretName}`);
 */
export function parseGenerationReport(
  line: string,
  expect: ReportExpectation = {},
): GenerationReport {
  const text = line.endsWith('\n') ? line.slice(0, -1) : line;
  if (/[\r\n]/.test(text)) {
    throw new InvalidReportError(
      'an EMF document must be a single line: CloudWatch Logs cuts stdout into events at line breaks, so a pretty-printed document is never extracted',
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new InvalidReportError(`the line is not JSON (${(err as Error).message})`);
  }
  if (!isObject(doc))
    throw new InvalidReportError(`the document must be a JSON object, got ${kind(doc)}`);
  const aws = doc._aws;
  if (!isObject(aws))
    throw new InvalidReportError(
      `_aws must be an object (the EMF metadata), got ${kind(aws)}`,
      '_aws',
    );

  const timestamp = checkTimestamp(aws.Timestamp, expect.now);
  const { directive, index } = loadedGenerationDirective(aws.CloudWatchMetrics);
  const at = `_aws.CloudWatchMetrics[${index}]`;
  const namespace = checkNamespace(directive.Namespace, `${at}.Namespace`);
  if (expect.namespace !== undefined && namespace !== expect.namespace) {
    throw new InvalidReportError(
      `${at}.Namespace is ${JSON.stringify(namespace)}, but the rotation reads ${JSON.stringify(expect.namespace)}: the gates would never see this report`,
      `${at}.Namespace`,
    );
  }
  checkDimensionSets(directive.Dimensions, `${at}.Dimensions`);
  const declared = checkMetricDefinitions(directive.Metrics, `${at}.Metrics`);

  const secretName = checkSecretNameValue(doc[DIMENSION_SECRET]);
  const consumer = checkConsumerValue(doc[DIMENSION_CONSUMER]);
  const generations = metricValues(doc, LOADED_GENERATION);
  for (const g of generations) {
    if (!Number.isSafeInteger(g) || g < 0) {
      throw new InvalidReportError(
        `${LOADED_GENERATION} must be a non-negative integer (the "generation" field of the secret), got ${String(g)}`,
        LOADED_GENERATION,
      );
    }
  }
  const report: {
    -readonly [K in keyof GenerationReport]: GenerationReport[K];
  } = {
    namespace,
    secretName,
    consumer,
    generation: Math.min(...generations),
    generations,
    timestamp,
    highResolution: declared.get(LOADED_GENERATION) === 1,
  };
  if (declared.has(RELOAD_FAILURES)) {
    report.reloadFailures = nonNegative(metricValues(doc, RELOAD_FAILURES), RELOAD_FAILURES).reduce(
      (a, b) => a + b,
      0,
    );
  }
  if (declared.has(POOL_AGE_SECONDS_MAX)) {
    report.poolAgeSecondsMax = Math.max(
      ...nonNegative(metricValues(doc, POOL_AGE_SECONDS_MAX), POOL_AGE_SECONDS_MAX),
    );
  }
  return report;
}

/**
 * Why `value` cannot be a CloudWatch dimension value (1-1024 ASCII characters, no control
 * characters, not only whitespace), or undefined when it can.
 *
 * @example
 * dimensionValueProblem('orders-api'); // undefined
 * dimensionValueProblem('   '); // 'must contain a character other than whitespace'
 */
export function dimensionValueProblem(value: string): string | undefined {
  if (value.length === 0) return 'must not be empty';
  if (value.length > 1024) return `must be at most 1024 characters, got ${value.length}`;

  if (/[^\x20-\x7e]/.test(value))
    return 'must be printable ASCII (CloudWatch refuses other characters in dimension values)';
  if (value.trim() === '') return 'must contain a character other than whitespace';
  return undefined;
}

/**
 * Why `name` cannot be the `Consumer` dimension of a report, or undefined when it can: it must be a
 * name the consumer registry accepts (lambda/shared/registry.ts), since only registered consumers
 * are read, and therefore a valid dimension value.
 *
 * @example
 * consumerNameProblem('nightly-export'); // undefined
 * consumerNameProblem(' api'); // 'must be 1-255 characters of letters, digits and ._:/@+=- ...'
 */
export function consumerNameProblem(name: string): string | undefined {
  try {
    parseRegistry([{ name, mode: 'live' }], 'consumer');
  } catch (err) {
    if (!(err instanceof ConfigurationError)) throw err;
    // The registry names the entry (`consumer[0].name`); the rule after it is what matters here.
    return err.message.replace(/^consumer\[0\]\.name /, '');
  }
  return dimensionValueProblem(name);
}

/** What Secrets Manager accepts as a secret name (CreateSecret `Name`). */
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;

/**
 * Why `value` cannot be the `SecretName` dimension, or undefined when it can: the secret's *name*
 * (1-512 letters, digits and `/ _ + = . @ -`), never an ARN. `secretNameDimension` turns a complete
 * ARN into the name; a partial ARN (without the six-character suffix) cannot be turned into one.
 *
 * @example
 * secretNameProblem('orders-app'); // undefined
 * secretNameProblem('arn:aws:secretsmanager:eu-west-1:1:secret:orders-app-AbCdEf'); // 'is an ARN: ...'
 */
export function secretNameProblem(value: string): string | undefined {
  if (value.startsWith('arn:')) {
    return "is an ARN: the SecretName dimension is the secret's name as DescribeSecret reports it (an ARN would be a different metric the gates never read)";
  }
  if (!SECRET_NAME.test(value))
    return 'must be a Secrets Manager secret name: 1-512 letters, digits and / _ + = . @ -';
  return undefined;
}

/**
 * Why `namespace` cannot hold converge's consumer metrics, or undefined when it can: 1-255 letters,
 * digits, spaces and `. - _ / # :`, not starting with `AWS/` (reserved for AWS services).
 *
 * @example
 * namespaceProblem('SecretRotation'); // undefined
 * namespaceProblem('AWS/RDS'); // 'must not start with "AWS/" ...'
 */
export function namespaceProblem(namespace: string): string | undefined {
  if (!/^[A-Za-z0-9 ._/#:-]{1,255}$/.test(namespace)) {
    return 'must be 1-255 letters, digits, spaces and . - _ / # :';
  }
  if (namespace.startsWith('AWS/')) return 'must not start with "AWS/" (reserved for AWS services)';
  return undefined;
}

function checkTimestamp(value: unknown, now: number | undefined): number {
  const field = '_aws.Timestamp';
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidReportError(
      `${field} must be an integer number of milliseconds since the epoch, got ${show(value)}`,
      field,
    );
  }
  if (value < MIN_PLAUSIBLE_TIMESTAMP_MS) {
    throw new InvalidReportError(
      `${field} must be in milliseconds since the epoch, got ${value} (seconds? multiply by 1000)`,
      field,
    );
  }
  if (now !== undefined && (value < now - MAX_PAST_MS || value > now + MAX_FUTURE_MS)) {
    throw new InvalidReportError(
      `${field} ${new Date(value).toISOString()} is outside what CloudWatch keeps (at most two weeks old, at most two hours ahead of ${new Date(now).toISOString()})`,
      field,
    );
  }
  return value;
}

function loadedGenerationDirective(value: unknown): {
  directive: Record<string, unknown>;
  index: number;
} {
  const field = '_aws.CloudWatchMetrics';
  if (!Array.isArray(value) || value.length === 0) {
    throw new InvalidReportError(
      `${field} must be a non-empty array of metric directives, got ${show(value)}`,
      field,
    );
  }
  const found: number[] = [];
  value.forEach((directive: unknown, i) => {
    if (!isObject(directive)) {
      throw new InvalidReportError(
        `${field}[${i}] must be an object, got ${kind(directive)}`,
        `${field}[${i}]`,
      );
    }
    const metrics = directive.Metrics;
    if (Array.isArray(metrics) && metrics.some((m) => isObject(m) && m.Name === LOADED_GENERATION))
      found.push(i);
  });
  if (found.length === 0) {
    throw new InvalidReportError(
      `no directive in ${field} declares ${LOADED_GENERATION} in its Metrics`,
      field,
    );
  }
  if (found.length > 1) {
    throw new InvalidReportError(
      `${LOADED_GENERATION} is declared by ${found.length} directives of ${field} (${found.map((i) => `[${i}]`).join(', ')}); the contract allows one`,
      field,
    );
  }
  return { directive: value[found[0]] as Record<string, unknown>, index: found[0] };
}

function checkNamespace(value: unknown, field: string): string {
  if (typeof value !== 'string')
    throw new InvalidReportError(`${field} must be a string, got ${show(value)}`, field);
  const problem = namespaceProblem(value);
  if (problem)
    throw new InvalidReportError(`${field} ${problem}, got ${JSON.stringify(value)}`, field);
  return value;
}

function checkDimensionSets(value: unknown, field: string): void {
  const expected = `[["${DIMENSION_SECRET}", "${DIMENSION_CONSUMER}"]]`;
  if (!Array.isArray(value) || value.length === 0) {
    throw new InvalidReportError(`${field} must be ${expected}, got ${show(value)}`, field);
  }
  if (value.length > 1) {
    throw new InvalidReportError(
      `${field} must hold exactly one dimension set, ${expected}; got ${value.length} sets ${show(value)} (every set publishes the metric again under other dimensions)`,
      field,
    );
  }
  const set: unknown = value[0];
  if (!Array.isArray(set) || !set.every((d) => typeof d === 'string')) {
    throw new InvalidReportError(
      `${field}[0] must be an array of dimension names, got ${show(set)}`,
      field,
    );
  }
  const names = set as string[];
  const missing = [DIMENSION_SECRET, DIMENSION_CONSUMER].filter((d) => !names.includes(d));
  const extra = names.filter((d) => d !== DIMENSION_SECRET && d !== DIMENSION_CONSUMER);
  if (missing.length > 0) {
    throw new InvalidReportError(
      `${field} lacks the ${missing.join(' and ')} dimension: it must be ${expected}, got ${show(value)}`,
      field,
    );
  }
  if (extra.length > 0 || names.length !== 2) {
    throw new InvalidReportError(
      `${field} must be exactly ${expected}, got ${show(value)}: ${extra.length > 0 ? `the extra dimension(s) ${extra.join(', ')} make` : 'a repeated dimension makes'} it a different metric the gates never read` +
        ' (EMF libraries add default dimensions such as ServiceName, ServiceType and LogGroup unless the dimensions are set, not put)',
      field,
    );
  }
}

/** The metric definitions of the directive, checked; returns name → storage resolution of the contract's metrics. */
function checkMetricDefinitions(value: unknown, field: string): Map<string, 1 | 60> {
  const declared = new Map<string, 1 | 60>();
  if (!Array.isArray(value))
    throw new InvalidReportError(`${field} must be an array, got ${show(value)}`, field);
  value.forEach((m: unknown, i) => {
    const at = `${field}[${i}]`;
    if (!isObject(m) || typeof m.Name !== 'string' || m.Name === '') {
      throw new InvalidReportError(`${at} must be an object with a Name, got ${show(m)}`, at);
    }
    const unit = CONSUMER_METRIC_UNITS[m.Name];
    if (unit === undefined) return; // another metric of the application: not the contract's business
    if (declared.has(m.Name))
      throw new InvalidReportError(`${at} declares ${m.Name} a second time`, at);
    if (m.Unit !== unit) {
      throw new InvalidReportError(
        `${at} (${m.Name}) must have Unit ${JSON.stringify(unit)}, got ${m.Unit === undefined ? 'no Unit' : show(m.Unit)}`,
        `${at}.Unit`,
      );
    }
    const resolution = m.StorageResolution ?? 60;
    if (resolution !== 1 && resolution !== 60) {
      throw new InvalidReportError(
        `${at} (${m.Name}) StorageResolution must be 1 (high resolution) or 60 (standard), got ${show(m.StorageResolution)}`,
        `${at}.StorageResolution`,
      );
    }
    declared.set(m.Name, resolution);
  });
  return declared;
}

function checkSecretNameValue(value: unknown): string {
  if (typeof value !== 'string') {
    throw new InvalidReportError(
      `${DIMENSION_SECRET} must be a string (the secret's name), got ${show(value)}`,
      DIMENSION_SECRET,
    );
  }
  const problem = secretNameProblem(value);
  if (problem)
    throw new InvalidReportError(
      `${DIMENSION_SECRET} ${problem}, got ${JSON.stringify(value)}`,
      DIMENSION_SECRET,
    );
  return value;
}

function checkConsumerValue(value: unknown): string {
  if (typeof value !== 'string') {
    throw new InvalidReportError(
      `${DIMENSION_CONSUMER} must be a string (the registered consumer name), got ${show(value)}`,
      DIMENSION_CONSUMER,
    );
  }
  const problem = consumerNameProblem(value);
  if (problem) throw new InvalidReportError(`${DIMENSION_CONSUMER} ${problem}`, DIMENSION_CONSUMER);
  return value;
}

/** The top-level value(s) of a declared metric: a number or a non-empty array of up to 100 numbers. */
function metricValues(doc: Record<string, unknown>, name: string): number[] {
  const value = doc[name];
  const values = Array.isArray(value) ? (value as unknown[]) : [value];
  if (value === undefined || values.length === 0 || values.length > MAX_VALUES_PER_METRIC) {
    throw new InvalidReportError(
      `${name} is declared but its top-level value must be a number or an array of 1-${MAX_VALUES_PER_METRIC} numbers, got ${show(value)}`,
      name,
    );
  }
  for (const v of values) {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new InvalidReportError(`${name} must be a number, got ${show(v)}`, name);
    }
  }
  return values as number[];
}

function nonNegative(values: number[], name: string): number[] {
  const bad = values.find((v) => v < 0);
  if (bad !== undefined)
    throw new InvalidReportError(`${name} must not be negative, got ${bad}`, name);
  return values;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** A value for a message: JSON, cut short (reports carry no secrets, but a line can be long). */
function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
