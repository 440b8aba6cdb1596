import { CloudWatchClient, PutMetricDataCommand, type PutMetricDataCommandInput } from '@aws-sdk/client-cloudwatch';
import { mockClient } from 'aws-sdk-client-mock';
import {
  EmfSink,
  emfDocuments,
  GenerationReporter,
  MemorySink,
  PutMetricDataSink,
  type MetricPoint,
  type ReportSubject,
} from '../../../consumer/reporter';
import { AwsCallError } from '../../../lambda/shared/errors';
import {
  DEFAULT_NAMESPACE,
  DIMENSION_CONSUMER,
  DIMENSION_SECRET,
  LOADED_GENERATION,
  POOL_AGE_SECONDS_MAX,
  RELOAD_FAILURES,
} from '../../../lambda/shared/metric-contract';
import { capturedOutput, clearCapturedOutput } from '../../support/captured-output';

const CLOUDWATCH_UNITS = new Set(['None', 'Count', 'Seconds', 'Milliseconds', 'Percent', 'Bytes']);

/**
 * Checks a document against the embedded metric format specification: `_aws` with a numeric
 * Timestamp and MetricDirectives (Namespace, DimensionSets of at most 30 names, at most 100
 * MetricDefinitions with Name and a CloudWatch Unit), and every referenced dimension (a string) and
 * metric (a number or an array of at most 100 numbers) as a member of the root.
 */
function expectValidEmf(doc: Record<string, unknown>): void {
  const aws = doc._aws as { Timestamp: unknown; CloudWatchMetrics: unknown };
  expect(typeof aws.Timestamp).toBe('number');
  expect(Array.isArray(aws.CloudWatchMetrics)).toBe(true);
  for (const directive of aws.CloudWatchMetrics as Record<string, unknown>[]) {
    expect(typeof directive.Namespace).toBe('string');
    const sets = directive.Dimensions as unknown[][];
    expect(Array.isArray(sets)).toBe(true);
    for (const set of sets) {
      expect(set.length).toBeLessThanOrEqual(30);
      for (const name of set) expect(typeof doc[name as string]).toBe('string');
    }
    const metrics = directive.Metrics as { Name: unknown; Unit?: unknown }[];
    expect(metrics.length).toBeGreaterThan(0);
    expect(metrics.length).toBeLessThanOrEqual(100);
    for (const m of metrics) {
      expect(typeof m.Name).toBe('string');
      if (m.Unit !== undefined) expect(CLOUDWATCH_UNITS.has(m.Unit as string)).toBe(true);
      const value = doc[m.Name as string];
      const values = Array.isArray(value) ? value : [value];
      expect(values.length).toBeLessThanOrEqual(100);
      for (const v of values) expect(typeof v).toBe('number');
    }
  }
}

/** A subject whose state the test sets. */
function fakeSubject(initial: { generation?: number; failures?: number; age?: number } = {}) {
  const state = { generation: initial.generation, failures: initial.failures ?? 0, age: initial.age ?? 0 };
  const listeners = new Set<() => void>();
  const subject: ReportSubject = {
    secretName: 'orders-db',
    get loadedGeneration() {
      return state.generation;
    },
    get reloadFailureCount() {
      return state.failures;
    },
    poolAgeSecondsMax: () => state.age,
    onGenerationChange: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  return {
    subject,
    state,
    change: (generation: number) => {
      state.generation = generation;
      for (const l of listeners) l();
    },
  };
}

describe('Class: EmfSink', () => {
  beforeEach(() => clearCapturedOutput());

  it('writes one valid EMF line with exactly the contract dimensions {SecretName, Consumer}', async () => {
    // Prepare
    const { subject } = fakeSubject({ generation: 7, failures: 2, age: 12.5 });
    const reporter = new GenerationReporter({ subject, consumer: 'orders-api', sink: new EmfSink(), now: () => 1_700_000_000_000 });
    // Act
    await reporter.report();
    // Assess
    const lines = capturedOutput().filter((l) => l.includes('"_aws"'));
    expect(lines).toHaveLength(1);
    const doc = JSON.parse(lines[0]) as Record<string, unknown>;
    expectValidEmf(doc);
    expect(doc).toEqual({
      _aws: {
        Timestamp: 1_700_000_000_000,
        CloudWatchMetrics: [
          {
            Namespace: DEFAULT_NAMESPACE,
            Dimensions: [[DIMENSION_SECRET, DIMENSION_CONSUMER]],
            Metrics: [
              { Name: LOADED_GENERATION, Unit: 'None' },
              { Name: RELOAD_FAILURES, Unit: 'Count' },
              { Name: POOL_AGE_SECONDS_MAX, Unit: 'Seconds' },
            ],
          },
        ],
      },
      SecretName: 'orders-db',
      Consumer: 'orders-api',
      LoadedGeneration: 7,
      ReloadFailures: 2,
      PoolAgeSecondsMax: 12.5,
    });
  });

  it('uses a configured namespace and writer, and turns repeated points into value arrays', async () => {
    // Prepare
    const lines: string[] = [];
    const sink = new EmfSink({ namespace: 'Custom/Rotation', write: (l) => lines.push(l) });
    const point = (value: number): MetricPoint => ({
      name: LOADED_GENERATION,
      unit: 'None',
      value,
      timestamp: 1,
      dimensions: { SecretName: 's', Consumer: 'c' },
    });
    // Act
    await sink.publish([point(3), point(4)]);
    // Assess
    const doc = JSON.parse(lines[0]) as Record<string, unknown>;
    expectValidEmf(doc);
    expect((doc._aws as { CloudWatchMetrics: { Namespace: string }[] }).CloudWatchMetrics[0].Namespace).toBe('Custom/Rotation');
    expect(doc.LoadedGeneration).toEqual([3, 4]);
  });
});

describe('Class: GenerationReporter', () => {
  describe('Method: report', () => {
    it('reports the failures since the previous report, not the running total', async () => {
      // Prepare
      const sink = new MemorySink();
      const t = fakeSubject({ generation: 1, failures: 3 });
      const reporter = new GenerationReporter({ subject: t.subject, consumer: 'api', sink });
      // Act
      await reporter.report();
      t.state.failures = 5;
      await reporter.report();
      await reporter.report();
      // Assess
      expect(sink.values(RELOAD_FAILURES)).toEqual([3, 2, 0]);
    });

    it('reports no LoadedGeneration before a credential is loaded (silence, never a made-up 0)', async () => {
      // Prepare
      const sink = new MemorySink();
      const reporter = new GenerationReporter({ subject: fakeSubject().subject, consumer: 'api', sink });
      // Act
      await reporter.report();
      // Assess
      expect(sink.values(LOADED_GENERATION)).toEqual([]);
      expect(sink.values(RELOAD_FAILURES)).toEqual([0]);
    });

    it('marks LoadedGeneration high-resolution in EMF and PutMetricData when asked (sub-minute staleness)', async () => {
      // Prepare
      const sink = new MemorySink();
      const reporter = new GenerationReporter({ subject: fakeSubject({ generation: 4 }).subject, consumer: 'api', sink, highResolution: true });
      // Act
      const points = await reporter.report();
      const docs = emfDocuments(DEFAULT_NAMESPACE, points);
      // Assess
      expect(points.find((p) => p.name === LOADED_GENERATION)?.storageResolution).toBe(1);
      expect(points.find((p) => p.name === RELOAD_FAILURES)?.storageResolution).toBeUndefined();
      const definitions = (docs[0]._aws as { CloudWatchMetrics: { Metrics: { Name: string; StorageResolution?: number }[] }[] }).CloudWatchMetrics[0].Metrics;
      expect(definitions.find((m) => m.Name === LOADED_GENERATION)).toEqual({ Name: LOADED_GENERATION, Unit: 'None', StorageResolution: 1 });
    });
  });

  describe('Method: start', () => {
    it('reports at once, and again as soon as the generation changes', async () => {
      // Prepare
      const sink = new MemorySink();
      const t = fakeSubject({ generation: 4 });
      const reporter = new GenerationReporter({ subject: t.subject, consumer: 'api', sink, periodSeconds: 3600 });
      // Act
      reporter.start();
      t.change(5);
      t.change(6);
      await reporter.stop();
      // Assess: start, two changes, and the final report of stop()
      expect(sink.values(LOADED_GENERATION)).toEqual([4, 5, 6, 6]);
      expect(new Set(sink.points.map((p) => JSON.stringify(p.dimensions)))).toEqual(
        new Set([JSON.stringify({ SecretName: 'orders-db', Consumer: 'api' })]),
      );
    });
  });
});

describe('Class: PutMetricDataSink', () => {
  const cw = mockClient(CloudWatchClient);

  beforeEach(() => {
    cw.reset();
    cw.on(PutMetricDataCommand).resolves({});
  });

  afterAll(() => cw.restore());

  function points(n: number): MetricPoint[] {
    return Array.from({ length: n }, (_, i) => ({
      name: LOADED_GENERATION,
      unit: 'None' as const,
      value: i,
      timestamp: 1_700_000_000_000,
      dimensions: { SecretName: 'orders-db', Consumer: `consumer-${i}` },
    }));
  }

  it('sends at most the documented 1,000 entries per call, with exactly the contract dimensions', async () => {
    // Prepare
    const sink = new PutMetricDataSink({ flushDelayMs: 60_000 });
    // Act
    await sink.publish(points(2_500));
    await sink.flush();
    // Assess
    const inputs = cw.commandCalls(PutMetricDataCommand).map((c) => c.args[0].input as PutMetricDataCommandInput);
    expect(inputs.map((i) => i.MetricData?.length)).toEqual([1_000, 1_000, 500]);
    expect(new Set(inputs.map((i) => i.Namespace))).toEqual(new Set([DEFAULT_NAMESPACE]));
    const datum = inputs[2].MetricData![499];
    expect(datum).toEqual({
      MetricName: LOADED_GENERATION,
      Unit: 'None',
      Value: 2_499,
      Timestamp: new Date(1_700_000_000_000),
      Dimensions: [
        { Name: DIMENSION_SECRET, Value: 'orders-db' },
        { Name: DIMENSION_CONSUMER, Value: 'consumer-2499' },
      ],
    });
  });

  it('without the optional @aws-sdk/client-cloudwatch, the first send names the missing package and EmfSink', async () => {
    // Prepare: a process where the package cannot be loaded
    let isolated: typeof import('../../../consumer/reporter') | undefined;
    jest.isolateModules(() => {
      jest.doMock('@aws-sdk/client-cloudwatch', () => {
        throw Object.assign(new Error("Cannot find module '@aws-sdk/client-cloudwatch'"), { code: 'MODULE_NOT_FOUND' });
      });
      isolated = require('../../../consumer/reporter');
    });
    const sink = new isolated!.PutMetricDataSink({ flushDelayMs: 60_000 });
    // Act
    await sink.publish(points(1));
    const sent = sink.flush();
    // Assess
    await expect(sent).rejects.toThrow(
      'PutMetricDataSink needs the optional peer dependency @aws-sdk/client-cloudwatch: install it, or report with EmfSink',
    );
    expect(cw).toHaveReceivedCommandTimes(PutMetricDataCommand, 0);
    jest.dontMock('@aws-sdk/client-cloudwatch');
  });

  it('batches the reports of several pools into one call', async () => {
    // Prepare
    const sink = new PutMetricDataSink({ flushDelayMs: 60_000, awsSdkV3Client: new CloudWatchClient({}) });
    const a = new GenerationReporter({ subject: fakeSubject({ generation: 1 }).subject, consumer: 'api', sink });
    const b = new GenerationReporter({ subject: fakeSubject({ generation: 1 }).subject, consumer: 'worker', sink });
    // Act
    await a.report();
    await b.report();
    await sink.flush();
    // Assess
    expect(cw).toHaveReceivedCommandTimes(PutMetricDataCommand, 1);
    expect((cw.commandCalls(PutMetricDataCommand)[0].args[0].input as PutMetricDataCommandInput).MetricData).toHaveLength(6);
  });

  it('sends a full batch at once; a failed call rejects with AwsCallError and later batches are still sent', async () => {
    // Prepare
    cw.on(PutMetricDataCommand)
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }))
      .resolves({});
    const sink = new PutMetricDataSink({ maxBatchSize: 10, flushDelayMs: 60_000 });
    // Act: a full batch is sent at once
    const err = await sink.publish(points(14)).catch((e: unknown) => e);
    // Assess
    expect(err).toBeInstanceOf(AwsCallError);
    expect((err as Error).message).toContain('Throttling');
    expect(cw).toHaveReceivedCommandTimes(PutMetricDataCommand, 2);
  });

  it('refuses a batch size above the documented limit, naming the value', () => {
    // Act / Assess
    expect(() => new PutMetricDataSink({ maxBatchSize: 1_001 })).toThrow(/from 1 to 1000, got 1001/);
  });
});
