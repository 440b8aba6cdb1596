import {
  CloudWatchClient,
  GetMetricDataCommand,
  InvalidNextToken,
  InvalidParameterCombinationException,
  InvalidParameterValueException,
  ListMetricsCommand,
  MissingRequiredParameterException,
  PutMetricDataCommand,
  type GetMetricDataCommandInput,
  type MetricDataResult,
} from '@aws-sdk/client-cloudwatch';
import { CloudWatchModel } from '../../../cli/local/cloudwatch-model';
import { installCloudWatchModel, type CloudWatchStub } from '../../../cli/local/install';
import { T0 } from './gate-fixtures';

const NS = 'SecretRotation';
const dims = (consumer: string) => [
  { Name: 'SecretName', Value: 'app' },
  { Name: 'Consumer', Value: consumer },
];

function query(id: string, consumer: string, stat: string, period = 60, extra: Record<string, unknown> = {}) {
  return {
    Id: id,
    MetricStat: { Metric: { Namespace: NS, MetricName: 'LoadedGeneration', Dimensions: dims(consumer) }, Period: period, Stat: stat, ...extra },
  };
}

describe('Class: CloudWatchModel', () => {
  let now = T0;
  const model = new CloudWatchModel({ now: () => now });
  let stub: CloudWatchStub;
  const client = new CloudWatchClient({});

  beforeAll(() => {
    stub = installCloudWatchModel(model);
  });

  afterAll(() => stub.restore());

  beforeEach(() => {
    now = T0;
    model.clear();
  });

  async function put(consumer: string, value: number, at: number, extra: Record<string, unknown> = {}) {
    await client.send(
      new PutMetricDataCommand({
        Namespace: NS,
        MetricData: [{ MetricName: 'LoadedGeneration', Dimensions: dims(consumer), Value: value, Timestamp: new Date(at), ...extra }],
      }),
    );
  }

  async function get(input: Partial<GetMetricDataCommandInput> & Pick<GetMetricDataCommandInput, 'MetricDataQueries'>) {
    return client.send(new GetMetricDataCommand({ StartTime: new Date(T0 - 600_000), EndTime: new Date(T0 + 60_000), ...input }));
  }

  describe('Method: getMetricData', () => {
    it('aggregates per period bucket and answers Minimum, Maximum, Sum, SampleCount and Average', async () => {
      // Prepare
      await put('api', 3, T0 - 250_000);
      await put('api', 5, T0 - 230_000);
      await put('api', 4, T0 - 200_000);
      await put('api', 7, T0 - 10_000);
      // Act
      const out = await get({
        MetricDataQueries: ['Minimum', 'Maximum', 'Sum', 'SampleCount', 'Average'].map((s) => query(s.toLowerCase(), 'api', s, 120)),
        ScanBy: 'TimestampAscending',
      });
      // Assess: 120 s buckets from T0-600s: [T0-360, T0-240) holds 3; [T0-240, T0-120) holds 5 and 4; [T0-120, T0) holds 7
      const byId: Record<string, MetricDataResult> = Object.fromEntries(out.MetricDataResults!.map((r) => [r.Id, r]));
      expect(byId.minimum.Timestamps!.map((t) => t.getTime() - T0)).toEqual([-360_000, -240_000, -120_000]);
      expect(byId.minimum.Values).toEqual([3, 4, 7]);
      expect(byId.maximum.Values).toEqual([3, 5, 7]);
      expect(byId.sum.Values).toEqual([3, 9, 7]);
      expect(byId.samplecount.Values).toEqual([1, 2, 1]);
      expect(byId.average.Values).toEqual([3, 4.5, 7]);
      expect(byId.minimum.StatusCode).toBe('Complete');
    });

    it('returns newest first by default and leaves buckets without samples out', async () => {
      // Prepare
      await put('api', 1, T0 - 500_000);
      await put('api', 2, T0 - 30_000);
      // Act
      const out = await get({ MetricDataQueries: [query('m', 'api', 'Minimum')] });
      // Assess
      expect(out.MetricDataResults![0].Values).toEqual([2, 1]);
      expect(out.MetricDataResults![0].Timestamps!.map((t) => t.getTime() - T0)).toEqual([-60_000, -540_000]);
    });

    it('matches the exact dimension set only, in any order', async () => {
      // Prepare
      await put('api', 2, T0 - 30_000);
      await client.send(
        new PutMetricDataCommand({
          Namespace: NS,
          MetricData: [{ MetricName: 'LoadedGeneration', Dimensions: [{ Name: 'SecretName', Value: 'app' }], Value: 9 }],
        }),
      );
      // Act
      const out = await get({
        MetricDataQueries: [
          query('both', 'api', 'Minimum'),
          { Id: 'reordered', MetricStat: { Metric: { Namespace: NS, MetricName: 'LoadedGeneration', Dimensions: [...dims('api')].reverse() }, Period: 60, Stat: 'Minimum' } },
          { Id: 'subset', MetricStat: { Metric: { Namespace: NS, MetricName: 'LoadedGeneration', Dimensions: [{ Name: 'SecretName', Value: 'app' }] }, Period: 60, Stat: 'Maximum' } },
          { Id: 'none', MetricStat: { Metric: { Namespace: NS, MetricName: 'LoadedGeneration' }, Period: 60, Stat: 'Maximum' } },
          query('other', 'worker', 'Minimum'),
        ],
      });
      // Assess: no aggregation across dimensions
      const values = Object.fromEntries(out.MetricDataResults!.map((r) => [r.Id, r.Values]));
      expect(values).toEqual({ both: [2], reordered: [2], subset: [9], none: [], other: [] });
    });

    it('rounds StartTime down to the minute (inclusive) and treats EndTime as exclusive', async () => {
      // Prepare
      await put('api', 1, T0 - 120_000);
      await put('api', 2, T0);
      // Act
      const out = await get({
        MetricDataQueries: [query('m', 'api', 'Minimum')],
        StartTime: new Date(T0 - 120_000 + 45_000),
        EndTime: new Date(T0),
        ScanBy: 'TimestampAscending',
      });
      // Assess
      expect(out.MetricDataResults![0].Values).toEqual([1]);
    });

    it('stores standard resolution per minute and high resolution per second', async () => {
      // Prepare
      await put('api', 4, T0 - 50_000);
      await put('api', 6, T0 - 20_000);
      await put('hr', 4, T0 - 50_000, { StorageResolution: 1 });
      await put('hr', 6, T0 - 20_000, { StorageResolution: 1 });
      // Act
      const out = await get({
        MetricDataQueries: [query('std', 'api', 'SampleCount', 10), query('high', 'hr', 'SampleCount', 10)],
        StartTime: new Date(T0 - 60_000),
        ScanBy: 'TimestampAscending',
      });
      // Assess
      const byId: Record<string, MetricDataResult> = Object.fromEntries(out.MetricDataResults!.map((r) => [r.Id, r]));
      expect(byId.std.Timestamps!.map((t) => t.getTime() - T0)).toEqual([-60_000]);
      expect(byId.std.Values).toEqual([2]);
      expect(byId.high.Timestamps!.map((t) => t.getTime() - T0)).toEqual([-50_000, -20_000]);
    });

    it('filters by Unit when the query names one', async () => {
      // Prepare
      await put('api', 4, T0 - 30_000, { Unit: 'None' });
      await put('api', 1, T0 - 30_000, { Unit: 'Count' });
      // Act
      const out = await get({ MetricDataQueries: [query('none', 'api', 'Minimum', 60, { Unit: 'None' }), query('all', 'api', 'Minimum')] });
      // Assess
      const values = Object.fromEntries(out.MetricDataResults!.map((r) => [r.Id, r.Values]));
      expect(values).toEqual({ none: [4], all: [1] });
    });

    it('paginates with NextToken when MaxDatapoints is reached, and rejects a foreign token', async () => {
      // Prepare: 10 minutes of data for two consumers = 20 data points
      for (let i = 0; i < 10; i++) {
        await put('a', i, T0 - 590_000 + i * 60_000);
        await put('b', 100 + i, T0 - 590_000 + i * 60_000);
      }
      const input = { MetricDataQueries: [query('a', 'a', 'Minimum'), query('b', 'b', 'Minimum')], MaxDatapoints: 7 };
      // Act
      const seen: Record<string, number[]> = { a: [], b: [] };
      let token: string | undefined;
      let pages = 0;
      do {
        const out = await get({ ...input, NextToken: token });
        for (const r of out.MetricDataResults!) seen[r.Id!].push(...r.Values!);
        token = out.NextToken;
        pages++;
      } while (token && pages < 10);
      // Assess
      expect(pages).toBe(3);
      expect(seen.a).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
      expect(seen.b).toHaveLength(10);
      const first = await get(input);
      await expect(get({ MetricDataQueries: [query('a', 'a', 'Maximum')], NextToken: first.NextToken })).rejects.toBeInstanceOf(InvalidNextToken);
    });

    it('accepts 500 queries in one call and rejects 501', async () => {
      // Prepare
      const queries = Array.from({ length: 501 }, (_, i) => query(`c${i}`, `consumer-${i}`, 'Minimum'));
      // Act
      const ok = await get({ MetricDataQueries: queries.slice(0, 500) });
      // Assess
      expect(ok.MetricDataResults).toHaveLength(500);
      await expect(get({ MetricDataQueries: queries })).rejects.toBeInstanceOf(InvalidParameterValueException);
    });

    it.each([
      ['an id starting with a digit', { MetricDataQueries: [query('1a', 'api', 'Minimum')] }, InvalidParameterValueException],
      ['an id with a dash', { MetricDataQueries: [query('a-b', 'api', 'Minimum')] }, InvalidParameterValueException],
      ['duplicate ids', { MetricDataQueries: [query('a', 'api', 'Minimum'), query('a', 'x', 'Minimum')] }, InvalidParameterValueException],
      ['a period of 45 s', { MetricDataQueries: [query('a', 'api', 'Minimum', 45)] }, InvalidParameterValueException],
      ['an unknown statistic', { MetricDataQueries: [query('a', 'api', 'Median')] }, InvalidParameterValueException],
      ['a math expression', { MetricDataQueries: [{ Id: 'e', Expression: 'MIN(METRICS())' }] }, InvalidParameterValueException],
      ['both expression and metric', { MetricDataQueries: [{ ...query('a', 'api', 'Minimum'), Expression: 'a' }] }, InvalidParameterCombinationException],
      ['StartTime after EndTime', { MetricDataQueries: [query('a', 'api', 'Minimum')], StartTime: new Date(T0), EndTime: new Date(T0 - 1) }, InvalidParameterValueException],
      ['no queries', { MetricDataQueries: [] }, MissingRequiredParameterException],
    ])('rejects %s', async (_name, input, type) => {
      // Act / Assess
      await expect(get(input as GetMetricDataCommandInput)).rejects.toBeInstanceOf(type);
    });
  });

  describe('Method: putMetricData', () => {
    it('stores Values with Counts and StatisticValues as samples', async () => {
      // Prepare / Act
      await client.send(
        new PutMetricDataCommand({
          Namespace: NS,
          MetricData: [
            { MetricName: 'LoadedGeneration', Dimensions: dims('api'), Values: [3, 4], Counts: [2, 5], Timestamp: new Date(T0 - 30_000) },
            { MetricName: 'LoadedGeneration', Dimensions: dims('api'), StatisticValues: { SampleCount: 3, Sum: 6, Minimum: 1, Maximum: 3 }, Timestamp: new Date(T0 - 30_000) },
          ],
        }),
      );
      const out = await get({ MetricDataQueries: [query('n', 'api', 'SampleCount'), query('m', 'api', 'Minimum'), query('x', 'api', 'Maximum')] });
      // Assess
      expect(out.MetricDataResults!.map((r) => r.Values![0])).toEqual([10, 1, 4]);
    });

    it('defaults the timestamp to the model clock', async () => {
      // Prepare
      now = T0 + 5 * 60_000 + 7_000;
      // Act
      await client.send(new PutMetricDataCommand({ Namespace: NS, MetricData: [{ MetricName: 'LoadedGeneration', Dimensions: dims('api'), Value: 8 }] }));
      // Assess
      expect(model.cells(NS, 'LoadedGeneration', dims('api'))).toEqual([{ t: T0 + 5 * 60_000, count: 1, min: 8, max: 8, sum: 8, unit: 'None' }]);
    });

    it.each([
      ['an AWS/ namespace', { Namespace: 'AWS/EC2', MetricData: [{ MetricName: 'x', Value: 1 }] }, InvalidParameterValueException],
      ['no namespace', { MetricData: [{ MetricName: 'x', Value: 1 }] }, MissingRequiredParameterException],
      ['NaN', { Namespace: NS, MetricData: [{ MetricName: 'x', Value: NaN }] }, InvalidParameterValueException],
      ['Infinity', { Namespace: NS, MetricData: [{ MetricName: 'x', Value: Infinity }] }, InvalidParameterValueException],
      ['no value at all', { Namespace: NS, MetricData: [{ MetricName: 'x' }] }, MissingRequiredParameterException],
      ['Value and Values together', { Namespace: NS, MetricData: [{ MetricName: 'x', Value: 1, Values: [1] }] }, InvalidParameterCombinationException],
      ['a duplicate dimension name', { Namespace: NS, MetricData: [{ MetricName: 'x', Value: 1, Dimensions: [{ Name: 'A', Value: '1' }, { Name: 'A', Value: '2' }] }] }, InvalidParameterValueException],
      ['a dimension name starting with a colon', { Namespace: NS, MetricData: [{ MetricName: 'x', Value: 1, Dimensions: [{ Name: ':A', Value: '1' }] }] }, InvalidParameterValueException],
      ['31 dimensions', { Namespace: NS, MetricData: [{ MetricName: 'x', Value: 1, Dimensions: Array.from({ length: 31 }, (_, i) => ({ Name: `d${i}`, Value: 'v' })) }] }, InvalidParameterValueException],
      ['an unknown unit', { Namespace: NS, MetricData: [{ MetricName: 'x', Value: 1, Unit: 'Parsecs' }] }, InvalidParameterValueException],
      ['StorageResolution 5', { Namespace: NS, MetricData: [{ MetricName: 'x', Value: 1, StorageResolution: 5 }] }, InvalidParameterValueException],
      ['a timestamp three weeks old', { Namespace: NS, MetricData: [{ MetricName: 'x', Value: 1, Timestamp: new Date(T0 - 21 * 86_400_000) }] }, InvalidParameterValueException],
      ['a timestamp three hours ahead', { Namespace: NS, MetricData: [{ MetricName: 'x', Value: 1, Timestamp: new Date(T0 + 3 * 3_600_000) }] }, InvalidParameterValueException],
      ['1001 data', { Namespace: NS, MetricData: Array.from({ length: 1001 }, () => ({ MetricName: 'x', Value: 1 })) }, InvalidParameterValueException],
    ])('rejects %s and stores nothing', async (_name, input, type) => {
      // Act
      const err = await client.send(new PutMetricDataCommand(input as never)).catch((e: unknown) => e);
      // Assess
      expect(err).toBeInstanceOf(type);
      expect(model.stats.samplesStored).toBe(0);
    });
  });

  describe('Method: listMetrics', () => {
    it('lists metrics by namespace, name and dimension filter', async () => {
      // Prepare
      await put('api', 1, T0 - 30_000);
      await put('worker', 1, T0 - 30_000);
      // Act
      const out = await client.send(new ListMetricsCommand({ Namespace: NS, Dimensions: [{ Name: 'Consumer', Value: 'worker' }] }));
      // Assess
      expect(out.Metrics).toEqual([{ Namespace: NS, MetricName: 'LoadedGeneration', Dimensions: dims('worker').sort((a, b) => a.Name.localeCompare(b.Name)) }]);
    });
  });
});
