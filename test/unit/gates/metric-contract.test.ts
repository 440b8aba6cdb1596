import {
  DEFAULT_NAMESPACE,
  HIGH_RESOLUTION_RETENTION_SECONDS,
  LOADED_GENERATION,
  MAX_DATAPOINTS_PER_GET_METRIC_DATA,
  MAX_QUERIES_PER_GET_METRIC_DATA,
  PROMOTION_STATISTICS,
  REVOCATION_STATISTICS,
  buildGenerationQuery,
  collectGenerationResults,
  consumerGenerationStatus,
  periodForStaleness,
  periodForWindow,
  type GenerationQuery,
  type GenerationQueryConsumer,
} from '../../../lambda/shared/metric-contract';
import { T0 } from './gate-fixtures';

const names = (n: number) => Array.from({ length: n }, (_, i) => `Consumer ${i}: orders/api@eu+west=${i}`);
const consumers = (n: number, maxStalenessSeconds = 300): GenerationQueryConsumer[] => names(n).map((name) => ({ name, maxStalenessSeconds }));
const spec = { namespace: DEFAULT_NAMESPACE, secretName: 'app', now: T0, lookbackSeconds: 900 };

/** Periods by consumer name, per request, in request order. */
function periodsPerRequest(q: GenerationQuery): Record<string, number>[] {
  return q.requests.map((r) => Object.fromEntries(r.MetricDataQueries.map((m) => [q.queryById.get(m.Id)!.consumer, m.MetricStat.Period])));
}

/** Data points a request may return at most: every bucket of every query. */
function worstCasePoints(r: GenerationQuery['requests'][number]): number {
  const span = r.EndTime.getTime() - r.StartTime.getTime();
  return r.MetricDataQueries.reduce((n, m) => n + Math.ceil(span / (m.MetricStat.Period * 1000)), 0);
}

describe('Function: buildGenerationQuery', () => {
  it.each([1, 10, 100, 500])('reads %i consumers in exactly one GetMetricData request with one Minimum query each', (n) => {
    // Act
    const q = buildGenerationQuery({ ...spec, consumers: consumers(n) });
    // Assess
    expect(q.requests).toHaveLength(1);
    expect(q.requests[0].MetricDataQueries).toHaveLength(n);
    expect(new Set(q.requests[0].MetricDataQueries.map((m) => m.MetricStat.Stat))).toEqual(new Set(['Minimum']));
  });

  it('splits beyond the documented limit of 500 queries per call', () => {
    // Act
    const q = buildGenerationQuery({ ...spec, consumers: consumers(1001) });
    // Assess
    expect(q.requests.map((r) => r.MetricDataQueries.length)).toEqual([500, 500, 1]);
    expect(MAX_QUERIES_PER_GET_METRIC_DATA).toBe(500);
  });

  it('gives every query a unique id that GetMetricData accepts whatever the consumer name', () => {
    // Act
    const q = buildGenerationQuery({ ...spec, consumers: consumers(600), statistics: REVOCATION_STATISTICS });
    // Assess
    const ids = q.requests.flatMap((r) => r.MetricDataQueries.map((m) => m.Id));
    expect(new Set(ids).size).toBe(1200);
    for (const id of ids) expect(id).toMatch(/^[a-z][a-z0-9_]*$/);
    expect(q.queryById.get(ids[1199])).toEqual({ consumer: names(600)[599], statistic: 'Maximum' });
  });

  it('queries LoadedGeneration with the exact contract dimensions', () => {
    // Act
    const q = buildGenerationQuery({ ...spec, namespace: 'Custom', secretName: 'app-db', consumers: [{ name: 'api', maxStalenessSeconds: 300 }] });
    // Assess
    expect(q.requests[0].MetricDataQueries[0].MetricStat).toEqual({
      Metric: {
        Namespace: 'Custom',
        MetricName: LOADED_GENERATION,
        Dimensions: [
          { Name: 'SecretName', Value: 'app-db' },
          { Name: 'Consumer', Value: 'api' },
        ],
      },
      Period: 60,
      Stat: 'Minimum',
    });
  });

  it('covers the window plus one period, starting on a whole minute, ending past now', () => {
    // Act
    const now = T0 + 37_000;
    const q = buildGenerationQuery({ ...spec, consumers: [{ name: 'api', maxStalenessSeconds: 300 }], now, lookbackSeconds: 300 });
    // Assess
    const start = q.requests[0].StartTime.getTime();
    expect(start % 60_000).toBe(0);
    expect(start).toBeLessThanOrEqual(now - 360_000);
    expect(start).toBeGreaterThan(now - 420_000);
    expect(q.requests[0].EndTime.getTime()).toBeGreaterThan(now);
  });

  it('reads each consumer at the period of its own staleness, in one request whose StartTime covers the longest window', () => {
    // Act: a live consumer (60 s) and a daily job (25 hours) of the same secret
    const q = buildGenerationQuery({
      ...spec,
      consumers: [
        { name: 'api', maxStalenessSeconds: 60 },
        { name: 'nightly', maxStalenessSeconds: 90_000 },
      ],
    });
    // Assess
    expect(periodsPerRequest(q)).toEqual([{ api: 60, nightly: 300 }]);
    expect(q.periodByConsumer).toEqual(new Map([['api', 60], ['nightly', 300]]));
    expect(q.requests[0].StartTime.getTime()).toBeLessThanOrEqual(T0 - 90_000_000 - 300_000);
    expect(q.requests[0].StartTime.getTime() % 300_000).toBe(0);
  });

  it('reads Minimum only by default and Minimum and Maximum for the revocation guard, one query per statistic', () => {
    // Act
    const promotion = buildGenerationQuery({ ...spec, consumers: consumers(250) });
    const guard = buildGenerationQuery({ ...spec, consumers: consumers(250), statistics: REVOCATION_STATISTICS });
    // Assess
    expect(promotion.statistics).toEqual(PROMOTION_STATISTICS);
    expect(promotion.requests[0].MetricDataQueries.map((m) => m.MetricStat.Stat)).toEqual(Array(250).fill('Minimum'));
    expect(guard.requests).toHaveLength(1);
    expect(guard.requests[0].MetricDataQueries.slice(0, 2).map((m) => [m.Id, m.MetricStat.Stat])).toEqual([
      ['c0', 'Minimum'],
      ['c0_max', 'Maximum'],
    ]);
    expect(guard.requests[0].MetricDataQueries).toHaveLength(500);
  });

  it('holds 250 consumers per call when reading two statistics', () => {
    // Act
    const q = buildGenerationQuery({ ...spec, consumers: consumers(500), statistics: REVOCATION_STATISTICS });
    // Assess
    expect(q.requests.map((r) => r.MetricDataQueries.length)).toEqual([500, 500]);
  });

  it('rejects statistics without the Minimum', () => {
    // Act / Assess
    expect(() => buildGenerationQuery({ ...spec, consumers: consumers(1), statistics: ['Maximum'] })).toThrow(/must include Minimum/);
  });

  it('splits a mixed fleet by window when its 25-hour read would exceed the data points of one call, instead of paginating', () => {
    // Prepare: 100 live consumers read per minute over the job's 25 hours would be 150,100 points
    const fleet = [...consumers(100, 60), { name: 'nightly', maxStalenessSeconds: 90_000 }];
    // Act
    const q = buildGenerationQuery({ ...spec, consumers: fleet });
    // Assess: the live consumers share a 15-minute request, the job gets its own 25-hour one
    expect(q.requests.map((r) => r.MetricDataQueries.length)).toEqual([100, 1]);
    expect(q.requests[0].StartTime.getTime()).toBeGreaterThan(T0 - 17 * 60_000);
    expect(q.requests[1].StartTime.getTime()).toBeLessThanOrEqual(T0 - 90_000_000);
    expect(periodsPerRequest(q)[1]).toEqual({ nightly: 300 });
    for (const r of q.requests) expect(worstCasePoints(r)).toBeLessThanOrEqual(MAX_DATAPOINTS_PER_GET_METRIC_DATA);
  });

  it('keeps a small mixed fleet in one request, every consumer at its own period', () => {
    // Act
    const q = buildGenerationQuery({ ...spec, consumers: [...consumers(10, 60), { name: 'nightly', maxStalenessSeconds: 90_000 }], statistics: REVOCATION_STATISTICS });
    // Assess
    expect(q.requests).toHaveLength(1);
    expect(new Set(q.requests[0].MetricDataQueries.map((m) => `${m.MetricStat.Stat}/${m.MetricStat.Period}`))).toEqual(
      new Set(['Minimum/60', 'Maximum/60', 'Minimum/300', 'Maximum/300']),
    );
    expect(worstCasePoints(q.requests[0])).toBeLessThanOrEqual(MAX_DATAPOINTS_PER_GET_METRIC_DATA);
  });

  it('reads a high-resolution consumer within the 3 hours CloudWatch keeps per-second data, apart from a longer window', () => {
    // Act: a 4-hour lookback, a 20 s consumer and a 25-hour job
    const q = buildGenerationQuery({
      ...spec,
      lookbackSeconds: 4 * 3600,
      consumers: [
        { name: 'fast', maxStalenessSeconds: 20 },
        { name: 'nightly', maxStalenessSeconds: 90_000 },
      ],
    });
    // Assess
    expect(periodsPerRequest(q)).toEqual([{ fast: 10 }, { nightly: 300 }]);
    expect(q.requests[0].StartTime.getTime()).toBeGreaterThanOrEqual(T0 - HIGH_RESOLUTION_RETENTION_SECONDS * 1000);
  });
});

describe('Function: periodForStaleness', () => {
  it('fits the period to the staleness alone: minutes up to 3 hours, high resolution below a minute, coarser for days', () => {
    // Act / Assess
    expect([10, 20, 59, 60, 300, 10_800, 90_000, 86_400 * 16].map(periodForStaleness)).toEqual([5, 10, 10, 60, 60, 60, 300, 3600]);
  });
});

describe('Function: periodForWindow', () => {
  it('keeps one-minute resolution up to three hours and coarsens beyond', () => {
    // Act / Assess
    expect([900, 10_800, 10_801, 86_400 * 15, 86_400 * 16].map((w) => periodForWindow(w))).toEqual([60, 60, 300, 300, 3600]);
  });

  it('reads high-resolution periods that fit twice into a sub-minute staleness, within the 3-hour retention', () => {
    // Act / Assess
    expect([10, 12, 20, 59].map((staleness) => periodForWindow(900, staleness))).toEqual([5, 5, 10, 10]);
    expect(periodForWindow(900, 60)).toBe(60);
    expect(periodForWindow(4 * 3600, 10)).toBe(300);
  });
});

describe('Function: collectGenerationResults', () => {
  it('folds pages into one newest-first series per consumer, silent consumers included', () => {
    // Prepare
    const query = {
      queryById: new Map([
        ['c0', { consumer: 'api', statistic: 'Minimum' as const }],
        ['c1', { consumer: 'worker', statistic: 'Minimum' as const }],
      ]),
      statistics: PROMOTION_STATISTICS,
    };
    // Act
    const series = collectGenerationResults(query, [
      { MetricDataResults: [{ Id: 'c0', Timestamps: [new Date(T0 - 120_000)], Values: [4] }, { Id: 'c1', Timestamps: [], Values: [] }] },
      { MetricDataResults: [{ Id: 'c0', Timestamps: [new Date(T0)], Values: [5] }] },
    ]);
    // Assess
    expect(series.get('api')).toEqual([{ timestamp: T0, minimum: 5 }, { timestamp: T0 - 120_000, minimum: 4 }]);
    expect(series.get('worker')).toEqual([]);
  });

  it.each(['InternalError', 'Forbidden'])('throws on a %s result instead of reading it as silence', (status) => {
    // Act / Assess
    expect(() =>
      collectGenerationResults({ queryById: new Map([['c0', { consumer: 'api', statistic: 'Minimum' }]]), statistics: PROMOTION_STATISTICS }, [
        { MetricDataResults: [{ Id: 'c0', StatusCode: status }] },
      ]),
    ).toThrow(new RegExp(`${status} for consumer "api"`));
  });

  const guardQuery = {
    queryById: new Map([
      ['c0', { consumer: 'api', statistic: 'Minimum' as const }],
      ['c0_max', { consumer: 'api', statistic: 'Maximum' as const }],
    ]),
    statistics: REVOCATION_STATISTICS,
  };

  it('joins each bucket\'s Minimum and Maximum, across pages', () => {
    // Act
    const series = collectGenerationResults(guardQuery, [
      { MetricDataResults: [{ Id: 'c0', Timestamps: [new Date(T0), new Date(T0 - 60_000)], Values: [5, 5] }] },
      { MetricDataResults: [{ Id: 'c0_max', Timestamps: [new Date(T0), new Date(T0 - 60_000)], Values: [6, 5] }] },
    ]);
    // Assess
    expect(series.get('api')).toEqual([
      { timestamp: T0, minimum: 5, maximum: 6 },
      { timestamp: T0 - 60_000, minimum: 5, maximum: 5 },
    ]);
  });

  it('throws on a bucket whose Maximum is missing (an incomplete answer is not evidence)', () => {
    // Act / Assess
    expect(() =>
      collectGenerationResults(guardQuery, [
        { MetricDataResults: [{ Id: 'c0', Timestamps: [new Date(T0)], Values: [5] }, { Id: 'c0_max', Timestamps: [], Values: [] }] },
      ]),
    ).toThrow(/Minimum of consumer "api" at .* without its Maximum/);
  });
});

describe('Function: consumerGenerationStatus', () => {
  const now = T0 + 30_000;

  it('is silent without data points, with nothing last seen', () => {
    // Act / Assess
    expect(consumerGenerationStatus('api', 300, [], 60, now)).toEqual({ consumer: 'api', state: 'silent', lastSeen: undefined });
  });

  it('is silent when the newest bucket ended before the freshness window, and says what it last saw', () => {
    // Prepare: bucket [now-420s, now-360s) ends before now-300s-... : no overlap with (now-300s, now]
    const points = [{ timestamp: T0 - 420_000, minimum: 6 }];
    // Act
    const s = consumerGenerationStatus('api', 300, points, 60, now);
    // Assess
    expect(s.state).toBe('silent');
    expect(s.lastSeen).toEqual({ generation: 6, timestamp: T0 - 420_000 });
  });

  it('counts a bucket that overlaps the freshness window as fresh (one period of tolerance)', () => {
    // Prepare: bucket [T0-300s, T0-240s) overlaps (now-300s, now] because now-300s = T0-270s
    const points = [{ timestamp: T0 - 300_000, minimum: 6 }];
    // Act / Assess
    expect(consumerGenerationStatus('api', 300, points, 60, now)).toMatchObject({ state: 'fresh', generation: 6 });
  });

  it('reports the Minimum over the whole fresh window (the laggard), not the newest bucket', () => {
    // Prepare
    const points = [
      { timestamp: T0, minimum: 7 },
      { timestamp: T0 - 120_000, minimum: 6 },
      { timestamp: T0 - 600_000, minimum: 2 },
    ];
    // Act
    const s = consumerGenerationStatus('api', 300, points, 60, now);
    // Assess
    expect(s).toEqual({ consumer: 'api', state: 'fresh', generation: 6, generations: [6, 7], lastSeen: { generation: 7, timestamp: T0 } });
  });

  it('lists every generation a fresh bucket\'s Minimum or Maximum shows', () => {
    // Prepare: processes split between 5 and 7 in the newest bucket; an old bucket outside the window
    const points = [
      { timestamp: T0, minimum: 5, maximum: 7 },
      { timestamp: T0 - 120_000, minimum: 5, maximum: 5 },
      { timestamp: T0 - 600_000, minimum: 2, maximum: 9 },
    ];
    // Act / Assess
    expect(consumerGenerationStatus('api', 300, points, 60, now).generations).toEqual([5, 7]);
  });

  it('judges freshness with the period it is given: a 5-minute bucket would keep a 60 s consumer fresh 5 minutes after its last report', () => {
    // Prepare: last report 5 minutes ago, in the first minute of a 5-minute bucket
    const now5 = Date.parse('2031-03-04T05:10:30Z');
    // Act
    const ownPeriod = consumerGenerationStatus('api', 60, [{ timestamp: Date.parse('2031-03-04T05:05:00Z'), minimum: 5 }], 60, now5);
    const coarse = consumerGenerationStatus('api', 60, [{ timestamp: Date.parse('2031-03-04T05:05:00Z'), minimum: 5 }], 300, now5);
    // Assess
    expect(ownPeriod.state).toBe('silent');
    expect(coarse.state).toBe('fresh');
  });
});
