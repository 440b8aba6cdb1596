/**
 * Reads `LoadedGeneration` for a set of registered consumers from CloudWatch: each consumer at the
 * period that fits its own maxStalenessSeconds, in one GetMetricData call for up to 500 consumers
 * reading the Minimum (250 reading Minimum and Maximum) whose data fits one call (see
 * `buildGenerationQuery`), NextToken pages followed within a bound, every call bounded in time. Any
 * failure is an AwsCallError: callers treat it as "not converged".
 */
import { GetMetricDataCommand, type CloudWatchClient, type GetMetricDataCommandOutput } from '@aws-sdk/client-cloudwatch';
import { AwsCallError } from '../../shared/errors';
import {
  MAX_GET_METRIC_DATA_PAGES,
  buildGenerationQuery,
  collectGenerationResults,
  type GenerationStatistic,
} from '../../shared/metric-contract';
import type { ConsumerRegistration } from '../../shared/registry';
import { awsCall } from '../aws-call';
import type { GenerationReadout } from './decision';

/** Longest a single GetMetricData call may take before it counts as failed. */
export const GET_METRIC_DATA_TIMEOUT_MS = 10_000;

export interface ReadGenerationsInput {
  readonly namespace: string;
  /** The `SecretName` dimension value. */
  readonly secretName: string;
  readonly consumers: readonly ConsumerRegistration[];
  /** Evaluation time, milliseconds since the epoch. */
  readonly now: number;
  /**
   * How far back to read at least (for `lastSeen` of silent consumers); each consumer's
   * maxStalenessSeconds extends it.
   */
  readonly lookbackSeconds: number;
  /**
   * Statistics read per bucket: the revocation guard passes `REVOCATION_STATISTICS` (Minimum and
   * Maximum, two queries per consumer).
   *
   * @default PROMOTION_STATISTICS (Minimum only, one query per consumer)
   */
  readonly statistics?: readonly GenerationStatistic[];
  /** @default GET_METRIC_DATA_TIMEOUT_MS */
  readonly callTimeoutMs?: number;
}

/** The readout plus what it cost (for logs and the benchmark). */
export interface CostedReadout extends GenerationReadout {
  /** GetMetricData calls made (pages included). */
  readonly calls: number;
  /** GetMetricData requests the read was split into (see `buildGenerationQuery`); pages not counted. */
  readonly requests: number;
  /** MetricDataQuery structures sent, summed over calls (what GetMetricData is billed by). */
  readonly queries: number;
  /** Data points returned. */
  readonly datapoints: number;
}

/**
 * @throws {@link AwsCallError} when a call fails, times out, returns a failed status, or pages
 * beyond the bound
 *
 * @example
 * const readout = await readGenerations(cloudWatch, { namespace, secretName, consumers, now: clock.now(), lookbackSeconds: 900 });
 * const guard = await readGenerations(cloudWatch, { ...input, statistics: REVOCATION_STATISTICS });
 */
export async function readGenerations(cloudWatch: CloudWatchClient, input: ReadGenerationsInput): Promise<CostedReadout> {
  const query = buildGenerationQuery({
    namespace: input.namespace,
    secretName: input.secretName,
    consumers: input.consumers,
    now: input.now,
    lookbackSeconds: input.lookbackSeconds,
    statistics: input.statistics,
  });
  const pages: GetMetricDataCommandOutput[] = [];
  let calls = 0;
  let queries = 0;
  for (const request of query.requests) {
    let nextToken: string | undefined;
    let page = 0;
    do {
      if (++page > MAX_GET_METRIC_DATA_PAGES) {
        throw new AwsCallError('GetMetricData', `GetMetricData kept paginating beyond ${MAX_GET_METRIC_DATA_PAGES} pages`);
      }
      const out = await awsCall('GetMetricData', () =>
        cloudWatch.send(new GetMetricDataCommand({ ...request, NextToken: nextToken }), {
          abortSignal: AbortSignal.timeout(input.callTimeoutMs ?? GET_METRIC_DATA_TIMEOUT_MS),
        }),
      );
      calls++;
      queries += request.MetricDataQueries.length;
      pages.push(out);
      nextToken = out.NextToken;
    } while (nextToken);
  }
  let series;
  try {
    series = collectGenerationResults(query, pages);
  } catch (err) {
    throw new AwsCallError('GetMetricData', (err as Error).message, { cause: err });
  }
  const datapoints = [...series.values()].reduce((n, s) => n + s.length, 0);
  return {
    series,
    periods: query.periodByConsumer,
    statistics: query.statistics,
    now: input.now,
    calls,
    requests: query.requests.length,
    queries,
    datapoints,
  };
}
