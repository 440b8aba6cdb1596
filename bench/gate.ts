/**
 * Gate benchmark: what one evaluation asks of CloudWatch for 1, 10, 100, 500 and 1000 consumers,
 * through the real gate code and the in-memory CloudWatch model.
 *
 * - Promotion gate: n live consumers (300 s staleness), each bucket's Minimum only.
 * - Revocation guard (its consumer half): the same n consumers, Minimum and Maximum per bucket
 *   (two queries per consumer, so 250 consumers per call).
 * - Revocation guard, mixed fleet: n live consumers with a 60 s staleness that reported every
 *   minute for 25 hours, plus one scheduled job with a 25-hour staleness. Each consumer is read at
 *   its own period (60 s and 300 s) over the job's 25-hour window; when that would exceed the
 *   100,800 data points of one call, the read is split by window instead of paginated.
 *
 * GetMetricData is billed per metric requested (each MetricDataQuery), and each call holds at most
 * 500 queries, so the figures that matter are the calls and the queries per evaluation; the
 * "two statistics" row shows what reading Minimum and SampleCount per consumer (the contract's
 * first form) would cost the promotion gate instead.
 *
 * Run: npx tsx bench/gate.ts
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { RDSClient } from '@aws-sdk/client-rds';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CloudWatchModel } from '../cli/local/cloudwatch-model';
import { installCloudWatchModel } from '../cli/local/install';
import { loadConfig } from '../lambda/rotation/config';
import type { StepContext } from '../lambda/rotation/context';
import { decideRevocation } from '../lambda/rotation/gates/decision';
import { consumerEvidence } from '../lambda/rotation/gates/evidence';
import { evaluatePromotion } from '../lambda/rotation/promotion-gate';
import {
  DEFAULT_NAMESPACE,
  LOADED_GENERATION,
  MAX_QUERIES_PER_GET_METRIC_DATA,
  REVOCATION_STATISTICS,
  loadedGenerationDimensions,
} from '../lambda/shared/metric-contract';
import type { ConsumerRegistration } from '../lambda/shared/registry';
import { median, printRows, type BenchRow } from './report';

const SECRET_NAME = 'bench-db';
const NOW = Date.parse('2031-01-01T12:00:00Z');
const EVALUATIONS = 5;

export async function runGateBench(sizes: readonly number[] = [1, 10, 100, 500, 1000]): Promise<BenchRow[]> {
  const model = new CloudWatchModel({ now: () => NOW });
  const stub = installCloudWatchModel(model);
  const rows: BenchRow[] = [];
  try {
    for (const n of sizes) {
      model.clear();
      const consumers: ConsumerRegistration[] = Array.from({ length: n }, (_, i) => ({
        name: `service-${i}`,
        mode: 'live',
        maxStalenessSeconds: 300,
      }));
      // Every consumer reported the pending generation once a minute for the lookback window (15 min).
      const config = { ...loadConfig({}, () => false), consumers };
      reportEveryMinute(model, consumers, config.gate.lookbackSeconds / 60);
      const ctx = context(config);
      const before = { ...model.stats };
      const durations: number[] = [];
      for (let e = 0; e < EVALUATIONS; e++) {
        const started = performance.now();
        const evaluation = await evaluatePromotion(ctx, 7);
        durations.push(performance.now() - started);
        if (!evaluation.admit) throw new Error(`bench: gate did not admit ${n} converged consumers: ${evaluation.error?.message ?? 'held'}`);
      }
      const per = (k: 'getMetricDataCalls' | 'queriesRequested' | 'datapointsReturned') => (model.stats[k] - before[k]) / EVALUATIONS;
      rows.push(
        { name: `gate n=${n}: GetMetricData calls per evaluation`, value: per('getMetricDataCalls'), unit: 'calls' },
        { name: `gate n=${n}: metrics requested per evaluation (billed)`, value: per('queriesRequested'), unit: 'queries' },
        { name: `gate n=${n}: data points returned per evaluation`, value: per('datapointsReturned'), unit: 'points' },
        {
          name: `gate n=${n}: calls if reading Minimum + SampleCount`,
          value: Math.ceil((2 * n) / MAX_QUERIES_PER_GET_METRIC_DATA),
          unit: 'calls',
        },
        { name: `gate n=${n}: evaluation time (model, median)`, value: median(durations), unit: 'ms' },
      );
      rows.push(...(await guardRows(model, `guard n=${n}`, ctx, consumers)));
    }
    for (const n of sizes) {
      // Mixed fleet: n live consumers (60 s staleness) reporting every minute for 25 hours, and a
      // daily job (25-hour staleness) that last ran two hours ago.
      model.clear();
      const live: ConsumerRegistration[] = Array.from({ length: n }, (_, i) => ({ name: `service-${i}`, mode: 'live', maxStalenessSeconds: 60 }));
      const job: ConsumerRegistration = { name: 'nightly', mode: 'scheduled', maxStalenessSeconds: 90_000 };
      reportEveryMinute(model, live, 1500);
      reportEveryMinute(model, [job], 1, 2 * 3600_000);
      const consumers = [...live, job];
      rows.push(...(await guardRows(model, `guard mixed n=${n}+1`, context({ ...loadConfig({}, () => false), consumers }), consumers)));
    }
  } finally {
    stub.restore();
  }
  return rows;
}

/** The revocation guard's consumer half (the read and the decision it runs in setSecret). */
async function guardRows(model: CloudWatchModel, label: string, ctx: StepContext, consumers: readonly ConsumerRegistration[]): Promise<BenchRow[]> {
  const before = { ...model.stats };
  const durations: number[] = [];
  for (let e = 0; e < EVALUATIONS; e++) {
    const started = performance.now();
    const evidence = await consumerEvidence(ctx, consumers, (r) => decideRevocation(consumers, r, { current: 7 }), { statistics: REVOCATION_STATISTICS });
    durations.push(performance.now() - started);
    if (evidence.blocking.length > 0) {
      throw new Error(`bench: ${label}: the guard did not admit converged consumers: ${evidence.error?.message ?? JSON.stringify(evidence.blocking.slice(0, 3))}`);
    }
  }
  const per = (k: 'getMetricDataCalls' | 'queriesRequested' | 'datapointsReturned') => (model.stats[k] - before[k]) / EVALUATIONS;
  return [
    { name: `${label}: GetMetricData calls per evaluation`, value: per('getMetricDataCalls'), unit: 'calls' },
    { name: `${label}: metrics requested per evaluation (billed)`, value: per('queriesRequested'), unit: 'queries' },
    { name: `${label}: data points returned per evaluation`, value: per('datapointsReturned'), unit: 'points' },
    { name: `${label}: evaluation time (model, median)`, value: median(durations), unit: 'ms' },
  ];
}

/** Generation 7 from every consumer, once a minute for `minutes` minutes ending `agoMs` before NOW. */
function reportEveryMinute(model: CloudWatchModel, consumers: readonly ConsumerRegistration[], minutes: number, agoMs = 0): void {
  for (let i = 0; i < consumers.length; i += 50) {
    const batch = consumers.slice(i, i + 50);
    for (let m = 0; m < minutes; m++) {
      model.putMetricData({
        Namespace: DEFAULT_NAMESPACE,
        MetricData: batch.map((c) => ({
          MetricName: LOADED_GENERATION,
          Dimensions: loadedGenerationDimensions(SECRET_NAME, c.name),
          Value: 7,
          Timestamp: new Date(NOW - agoMs - m * 60_000),
        })),
      });
    }
  }
}

function context(config: StepContext['config']): StepContext {
  const arn = `arn:aws:secretsmanager:us-east-1:123456789012:secret:${SECRET_NAME}-AbCdEf`;
  return {
    secretsManager: new SecretsManagerClient({}),
    rds: new RDSClient({}),
    cloudWatch: new CloudWatchClient({ region: 'us-east-1' }),
    logger: new Logger({ logLevel: 'SILENT' }),
    config,
    clock: { now: () => NOW, sleep: async () => undefined },
    writeMetric: () => undefined,
    event: { Step: 'finishSecret', SecretId: arn, ClientRequestToken: 'bench' },
    secretArn: arn,
    secretName: SECRET_NAME,
    token: 'bench',
    description: { $metadata: {}, ARN: arn, Name: SECRET_NAME },
    overrides: { emergency: false, forceFinish: false },
  };
}

if (require.main === module) {
  runGateBench()
    .then((rows) => printRows('Gates: CloudWatch reads per evaluation', rows))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
