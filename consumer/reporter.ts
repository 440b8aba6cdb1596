/**
 * The consumer half of the metric contract (README.md, "The metric contract"): every process reports, each
 * period and at once when its credential changes, the generation it uses for new connections
 * (`LoadedGeneration`), how many secret reloads failed since its last report (`ReloadFailures`)
 * and the age of its oldest open connection (`PoolAgeSecondsMax`), with exactly the dimensions
 * `{SecretName, Consumer}`: the promotion gate and the revocation guard query these dimensions
 * and nothing else.
 *
 * Sinks: {@link EmfSink} (embedded metric format on stdout: Lambda, or any container whose logs go
 * to CloudWatch Logs), {@link PutMetricDataSink} (batched API calls: anything else) and
 * {@link MemorySink} (tests, the drill).
 */
import { EventEmitter } from 'node:events';
// Types only: the CloudWatch client is an optional peer dependency, loaded by PutMetricDataSink when it
// first sends (EMF needs no client at all).
import type {
  CloudWatchClient,
  CloudWatchClientConfig,
  MetricDatum,
} from '@aws-sdk/client-cloudwatch';
import { AwsCallError, ConvergeError } from '../lambda/shared/errors';
import {
  DEFAULT_NAMESPACE,
  DIMENSION_CONSUMER,
  DIMENSION_SECRET,
  LOADED_GENERATION,
  POOL_AGE_SECONDS_MAX,
  RELOAD_FAILURES,
  REPORT_PERIOD_SECONDS,
} from '../lambda/shared/metric-contract';

/** CloudWatch units the contract uses. */
export type MetricUnitName = 'None' | 'Count' | 'Seconds';

/** One data point of one converge metric. */
export interface MetricPoint {
  readonly name: string;
  readonly unit: MetricUnitName;
  readonly value: number;
  /** Milliseconds since the epoch. */
  readonly timestamp: number;
  /** Exactly the contract's dimensions. */
  readonly dimensions: { readonly SecretName: string; readonly Consumer: string };
  /**
   * 1 for a high-resolution metric (stored per second), 60 for standard resolution.
   *
   * @default 60
   */
  readonly storageResolution?: 1 | 60;
}

/** Where reports go. */
export interface MetricSink {
  /** Publishes the points of one report. */
  publish(points: readonly MetricPoint[]): Promise<void>;
  /** Sends whatever is buffered (sinks that batch). */
  flush?(): Promise<void>;
}

/**
 * Keeps every point in memory: for tests and the drill.
 *
 * @example
 * const sink = new MemorySink();
 * new GenerationReporter({ subject: pool, consumer: 'api', sink }).start();
 * sink.values('LoadedGeneration'); // [1, 2, ...]
 */
export class MemorySink implements MetricSink {
  public readonly points: MetricPoint[] = [];

  public async publish(points: readonly MetricPoint[]): Promise<void> {
    this.points.push(...points);
  }

  /** Values of one metric, in publication order. */
  public values(name: string): number[] {
    return this.points.filter((p) => p.name === name).map((p) => p.value);
  }
}

/** Options of {@link EmfSink}. */
export interface EmfSinkOptions {
  /**
   * CloudWatch namespace.
   *
   * @default 'SecretRotation'
   */
  readonly namespace?: string;
  /**
   * Receives each EMF document as one line (no trailing newline).
   *
   * @default - written to stdout, one document per line
   */
  readonly write?: (line: string) => void;
}

/**
 * Writes embedded-metric-format documents, one JSON line per report.
 *
 * Written here rather than with Powertools Metrics (installed, 2.36.0) on purpose:
 * - Powertools adds a `service` dimension to every metric from its constructor; it can be cleared
 *   afterwards, but the dimension set is a contract the gates query exactly, so it should not depend
 *   on undoing a library default that a later version may re-apply;
 * - Powertools stops emitting altogether when `POWERTOOLS_DEV` is set (unless
 *   `POWERTOOLS_METRICS_DISABLED` is also set): a consumer would silently go quiet, and a silent
 *   consumer holds every rotation at the promotion gate;
 * - its output goes to its own stdout Console; this sink must be pluggable (tests, the drill).
 * The document follows the EMF specification: `_aws.Timestamp`, one `CloudWatchMetrics` directive
 * with `Namespace`, `Dimensions` (one dimension set) and `Metrics` (`Name`, `Unit`), and every
 * dimension and metric value as a member of the root object.
 *
 * @example
 * const reporter = new GenerationReporter({ subject: pool, consumer: 'orders-api', sink: new EmfSink() });
 * reporter.start();
 */
export class EmfSink implements MetricSink {
  private readonly namespace: string;
  private readonly write: (line: string) => void;

  public constructor(options: EmfSinkOptions = {}) {
    this.namespace = options.namespace ?? DEFAULT_NAMESPACE;
    this.write = options.write ?? ((line) => void process.stdout.write(`${line}\n`));
  }

  public async publish(points: readonly MetricPoint[]): Promise<void> {
    for (const doc of emfDocuments(this.namespace, points)) this.write(JSON.stringify(doc));
  }
}

/** EMF limits: 100 metric definitions per directive and 100 values per metric. */
const EMF_MAX_METRICS = 100;
const EMF_MAX_VALUES = 100;

/**
 * The EMF documents for a list of points: one per (dimensions, timestamp) group; repeated names
 * within a group become value arrays.
 *
 * @example
 * for (const doc of emfDocuments('SecretRotation', await reporter.report())) console.log(JSON.stringify(doc));
 */
export function emfDocuments(
  namespace: string,
  points: readonly MetricPoint[],
): Record<string, unknown>[] {
  const groups = new Map<string, MetricPoint[]>();
  for (const p of points) {
    const key = JSON.stringify([p.dimensions.SecretName, p.dimensions.Consumer, p.timestamp]);
    const group = groups.get(key) ?? [];
    group.push(p);
    groups.set(key, group);
  }
  const docs: Record<string, unknown>[] = [];
  for (const group of groups.values()) {
    const byName = new Map<
      string,
      { unit: MetricUnitName; resolution?: 1 | 60; values: number[] }
    >();
    for (const p of group) {
      const entry = byName.get(p.name) ?? {
        unit: p.unit,
        resolution: p.storageResolution,
        values: [],
      };
      entry.values.push(p.value);
      byName.set(p.name, entry);
    }
    const names = [...byName.keys()];
    for (let i = 0; i < names.length; i += EMF_MAX_METRICS) {
      const slice = names.slice(i, i + EMF_MAX_METRICS);
      const doc: Record<string, unknown> = {
        _aws: {
          Timestamp: group[0].timestamp,
          CloudWatchMetrics: [
            {
              Namespace: namespace,
              Dimensions: [[DIMENSION_SECRET, DIMENSION_CONSUMER]],
              Metrics: slice.map((name) => {
                const { unit, resolution } = byName.get(name)!;
                return resolution === 1
                  ? { Name: name, Unit: unit, StorageResolution: 1 }
                  : { Name: name, Unit: unit };
              }),
            },
          ],
        },
        [DIMENSION_SECRET]: group[0].dimensions.SecretName,
        [DIMENSION_CONSUMER]: group[0].dimensions.Consumer,
      };
      for (const name of slice) {
        const values = byName.get(name)!.values.slice(-EMF_MAX_VALUES);
        doc[name] = values.length === 1 ? values[0] : values;
      }
      docs.push(doc);
    }
  }
  return docs;
}

/** Documented PutMetricData limit: at most 1000 metrics (MetricData entries) per request. */
export const PUT_METRIC_DATA_MAX_ENTRIES = 1000;

interface PutMetricDataSinkBaseOptions {
  /**
   * CloudWatch namespace.
   *
   * @default 'SecretRotation'
   */
  readonly namespace?: string;
  /**
   * Entries per PutMetricData call (at most the documented 1000).
   *
   * @default 1000
   */
  readonly maxBatchSize?: number;
  /**
   * How long points wait in the buffer for others (reports of other pools in the process) before
   * they are sent; a full batch is sent at once. 0 sends after each report.
   *
   * @default 1000
   */
  readonly flushDelayMs?: number;
  /**
   * Called when a background send fails (the points are dropped: the next period reports again).
   *
   * @default - a warning naming the error on stderr
   */
  readonly onError?: (error: Error) => void;
}

/**
 * What {@link PutMetricDataSink} needs of a CloudWatch client: a `CloudWatchClient` of
 * `@aws-sdk/client-cloudwatch` v3 is one. Declared here, so that the package's types need no
 * optional peer dependency.
 */
export interface CloudWatchSender {
  send(command: never): Promise<unknown>;
}

interface PutWithClient extends PutMetricDataSinkBaseOptions {
  readonly awsSdkV3Client: CloudWatchSender;
  readonly clientConfig?: never;
}

interface PutWithConfig extends PutMetricDataSinkBaseOptions {
  /**
   * Configuration for a client this sink creates: a `CloudWatchClientConfig` (region, endpoint,
   * credentials, ...).
   *
   * @default - a client with the SDK's default configuration, shared by every sink in the process
   */
  readonly clientConfig?: object;
  readonly awsSdkV3Client?: never;
}

/** Options of {@link PutMetricDataSink}: pass `awsSdkV3Client` or `clientConfig`, not both. */
export type PutMetricDataSinkOptions = PutWithClient | PutWithConfig;

type CloudWatchModule = typeof import('@aws-sdk/client-cloudwatch');

let cloudWatchModule: Promise<CloudWatchModule> | undefined;
let defaultCloudWatch: CloudWatchClient | undefined;

/** Loads `@aws-sdk/client-cloudwatch` once, naming the missing optional peer dependency if it is absent. */
function loadCloudWatch(): Promise<CloudWatchModule> {
  cloudWatchModule ??= import('@aws-sdk/client-cloudwatch').catch((err: unknown) => {
    cloudWatchModule = undefined;
    throw new ConvergeError(
      'PutMetricDataSink needs the optional peer dependency @aws-sdk/client-cloudwatch: install it, or report with EmfSink',
      { cause: err },
    );
  });
  return cloudWatchModule;
}

/**
 * Sends points with PutMetricData, batched: points of several reports (several pools) that arrive
 * within `flushDelayMs` share calls, each call carrying up to 1000 entries. IAM:
 * `cloudwatch:PutMetricData`, conditioned on `cloudwatch:namespace`.
 *
 * @example
 * const sink = new PutMetricDataSink({ clientConfig: { region: 'eu-west-1' } });
 * new GenerationReporter({ subject: pool, consumer: 'billing-worker', sink }).start();
 */
export class PutMetricDataSink implements MetricSink {
  private readonly namespace: string;
  /** The given client, or undefined until the first send creates one from `clientConfig` (or shares the default). */
  private client: CloudWatchClient | undefined;
  private readonly clientConfig: CloudWatchClientConfig | undefined;
  private readonly maxBatchSize: number;
  private readonly flushDelayMs: number;
  private readonly onError: (error: Error) => void;
  private buffer: MetricPoint[] = [];
  private timer: NodeJS.Timeout | undefined;

  public constructor(options: PutMetricDataSinkOptions = {}) {
    if (options.awsSdkV3Client !== undefined && options.clientConfig !== undefined) {
      throw new ConvergeError('PutMetricDataSink takes awsSdkV3Client or clientConfig, not both');
    }
    const batch = options.maxBatchSize ?? PUT_METRIC_DATA_MAX_ENTRIES;
    if (!Number.isInteger(batch) || batch < 1 || batch > PUT_METRIC_DATA_MAX_ENTRIES) {
      throw new ConvergeError(
        `maxBatchSize must be an integer from 1 to ${PUT_METRIC_DATA_MAX_ENTRIES}, got ${batch}`,
      );
    }
    this.maxBatchSize = batch;
    this.namespace = options.namespace ?? DEFAULT_NAMESPACE;
    this.flushDelayMs = options.flushDelayMs ?? 1_000;
    this.onError =
      options.onError ??
      ((error) =>
        console.warn(
          `converge: PutMetricData failed, points dropped until the next report: ${error.message}`,
        ));
    this.client = options.awsSdkV3Client as CloudWatchClient | undefined;
    this.clientConfig = options.clientConfig as CloudWatchClientConfig | undefined;
  }

  /** Buffers the points; sends at once when a batch is full, otherwise after `flushDelayMs`. */
  public async publish(points: readonly MetricPoint[]): Promise<void> {
    this.buffer.push(...points);
    if (this.buffer.length >= this.maxBatchSize || this.flushDelayMs === 0) {
      await this.flush();
      return;
    }
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush().catch((err: unknown) =>
          this.onError(err instanceof Error ? err : new Error(String(err))),
        );
      }, this.flushDelayMs);
      this.timer.unref();
    }
  }

  /**
   * Sends every buffered point, in calls of up to `maxBatchSize` entries.
   *
   * @throws {@link AwsCallError} when a call fails (its points are dropped; later batches are still sent)
   */
  public async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const points = this.buffer;
    this.buffer = [];
    if (points.length === 0) return;
    const { CloudWatchClient, PutMetricDataCommand } = await loadCloudWatch();
    if (!this.client) {
      this.client = this.clientConfig
        ? new CloudWatchClient(this.clientConfig)
        : (defaultCloudWatch ??= new CloudWatchClient({}));
    }
    let failure: AwsCallError | undefined;
    for (let i = 0; i < points.length; i += this.maxBatchSize) {
      const MetricData = points.slice(i, i + this.maxBatchSize).map(toDatum);
      try {
        await this.client.send(new PutMetricDataCommand({ Namespace: this.namespace, MetricData }));
      } catch (err) {
        const name = err instanceof Error ? err.name : 'Error';
        failure ??= new AwsCallError(
          'PutMetricData',
          `PutMetricData to namespace "${this.namespace}" failed: ${name}`,
          {
            cause: err,
          },
        );
      }
    }
    if (failure) throw failure;
  }
}

function toDatum(p: MetricPoint): MetricDatum {
  return {
    MetricName: p.name,
    Unit: p.unit,
    Value: p.value,
    ...(p.storageResolution === 1 ? { StorageResolution: 1 } : {}),
    Timestamp: new Date(p.timestamp),
    Dimensions: [
      { Name: DIMENSION_SECRET, Value: p.dimensions.SecretName },
      { Name: DIMENSION_CONSUMER, Value: p.dimensions.Consumer },
    ],
  };
}

/**
 * What a reporter reads. {@link RotatingPgPool} implements it; a consumer without a pool can
 * implement it over a {@link CredentialAdoption}.
 */
export interface ReportSubject {
  /** The `SecretName` dimension. */
  readonly secretName: string;
  /** Generation used for new connections; undefined while nothing is loaded (then nothing is reported). */
  readonly loadedGeneration: number | undefined;
  /** Failed secret reloads since the subject was created (monotonic). */
  readonly reloadFailureCount: number;
  /** Age in seconds of the oldest open connection. */
  poolAgeSecondsMax?(): number;
  /** Subscribes to credential changes; returns the unsubscribe function. */
  onGenerationChange?(listener: () => void): () => void;
  /**
   * Learns the consumer name, to attribute the sessions it opens (RotatingPgPool names them
   * `cv1:<consumer>:<generation>:<host>:<pid>`, see lambda/shared/application-name.ts).
   */
  attributeTo?(consumer: string): void;
}

/** Options of {@link GenerationReporter}. */
export interface GenerationReporterOptions {
  readonly subject: ReportSubject;
  /**
   * Publish high-resolution metrics (StorageResolution 1, kept per second for 3 hours), for
   * consumers registered with a `maxStaleness` under a minute. Use with `periodSeconds` at most half
   * of that staleness. High-resolution PutMetricData costs the same per call; alarms on it cost more.
   *
   * @default false
   */
  readonly highResolution?: boolean;
  /** Registered consumer name: the `Consumer` dimension. */
  readonly consumer: string;
  /**
   * Where points go.
   *
   * @default - a new {@link EmfSink} on stdout
   */
  readonly sink?: MetricSink;
  /**
   * Seconds between two periodic reports.
   *
   * @default 60 (REPORT_PERIOD_SECONDS)
   */
  readonly periodSeconds?: number;
  /**
   * Report at once when the credential changes, so the gates see the new generation without
   * waiting for the next period.
   *
   * @default true
   */
  readonly reportOnChange?: boolean;
  /**
   * Wall clock for data point timestamps, in milliseconds since the epoch.
   *
   * @default Date.now
   */
  readonly now?: () => number;
}

/** Events of {@link GenerationReporter}. */
export interface GenerationReporterEvents {
  /** A background report could not be published (without a listener: a warning on stderr). */
  publishFailure: [error: Error];
}

/**
 * Publishes a subject's `LoadedGeneration`, `ReloadFailures` and `PoolAgeSecondsMax`.
 *
 * @example
 * const reporter = new GenerationReporter({ subject: pool, consumer: 'orders-api' }).start();
 * process.on('SIGTERM', async () => { await reporter.stop(); await pool.end(); });
 */
export class GenerationReporter extends EventEmitter<GenerationReporterEvents> {
  private readonly subject: ReportSubject;
  private readonly consumer: string;
  private readonly sink: MetricSink;
  private readonly periodMs: number;
  private readonly reportOnChange: boolean;
  private readonly now: () => number;
  private readonly storageResolution: 1 | 60;
  private reportedFailures = 0;
  private interval: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;

  public constructor(options: GenerationReporterOptions) {
    super();
    if (!options.consumer) {
      throw new ConvergeError(
        `GenerationReporter needs the consumer name, got ${JSON.stringify(options.consumer)}`,
      );
    }
    const period = options.periodSeconds ?? REPORT_PERIOD_SECONDS;
    if (!Number.isFinite(period) || period <= 0) {
      throw new ConvergeError(`periodSeconds must be a positive number, got ${period}`);
    }
    this.subject = options.subject;
    this.consumer = options.consumer;
    // The pool names its connections after the consumer it is reported as (unless told otherwise).
    this.subject.attributeTo?.(options.consumer);
    this.sink = options.sink ?? new EmfSink();
    this.periodMs = period * 1000;
    this.reportOnChange = options.reportOnChange ?? true;
    this.now = options.now ?? Date.now;
    this.storageResolution = options.highResolution ? 1 : 60;
  }

  /**
   * Reports now, then every period (an unref'd timer) and on every credential change.
   *
   * @example
   * const reporter = new GenerationReporter({ subject: pool, consumer: 'api' }).start();
   */
  public start(): this {
    if (this.interval) return this;
    this.interval = setInterval(() => void this.reportInBackground(), this.periodMs);
    this.interval.unref();
    if (this.reportOnChange && this.subject.onGenerationChange) {
      this.unsubscribe = this.subject.onGenerationChange(() => void this.reportInBackground());
    }
    void this.reportInBackground();
    return this;
  }

  /**
   * Builds and publishes one report.
   *
   * @returns the points published
   * @throws the sink's error
   *
   * @example
   * const points = await reporter.report();
   */
  public async report(): Promise<MetricPoint[]> {
    const timestamp = this.now();
    const dimensions = { SecretName: this.subject.secretName, Consumer: this.consumer };
    const points: MetricPoint[] = [];
    const generation = this.subject.loadedGeneration;
    if (generation !== undefined) {
      // Only the metric the gates read needs per-second storage.
      points.push({
        name: LOADED_GENERATION,
        unit: 'None',
        value: generation,
        timestamp,
        dimensions,
        ...(this.storageResolution === 1 ? { storageResolution: 1 as const } : {}),
      });
    }
    const failures = this.subject.reloadFailureCount;
    points.push({
      name: RELOAD_FAILURES,
      unit: 'Count',
      value: Math.max(0, failures - this.reportedFailures),
      timestamp,
      dimensions,
    });
    this.reportedFailures = failures;
    if (this.subject.poolAgeSecondsMax) {
      points.push({
        name: POOL_AGE_SECONDS_MAX,
        unit: 'Seconds',
        value: Math.round(this.subject.poolAgeSecondsMax() * 1000) / 1000,
        timestamp,
        dimensions,
      });
    }
    await this.sink.publish(points);
    return points;
  }

  /**
   * Stops reporting, publishes a last report and flushes the sink.
   *
   * @example
   * await reporter.stop();
   */
  public async stop(): Promise<void> {
    if (this.interval) clearInterval(this.interval);
    this.interval = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await this.report();
    await this.sink.flush?.();
  }

  private async reportInBackground(): Promise<void> {
    try {
      await this.report();
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (this.listenerCount('publishFailure') > 0) this.emit('publishFailure', error);
      else
        console.warn(
          `converge: metrics report for consumer "${this.consumer}" failed: ${error.message}`,
        );
    }
  }
}
