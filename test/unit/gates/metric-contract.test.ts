import {
  DEFAULT_NAMESPACE,
  LOADED_GENERATION,
  MAX_QUERIES_PER_GET_METRIC_DATA,
  buildGenerationQuery,
  collectGenerationResults,
  consumerGenerationStatus,
  periodForWindow,
} from '../../../lambda/shared/metric-contract';
import { T0 } from './gate-fixtures';

const names = (n: number) => Array.from({ length: n }, (_, i) => `Consumer ${i}: orders/api@eu+west=${i}`);

describe('Function: buildGenerationQuery', () => {
  it.each([1, 10, 100, 500])('reads %i consumers in exactly one GetMetricData request with one Minimum query each', (n) => {
    // Act
    const q = buildGenerationQuery({ namespace: DEFAULT_NAMESPACE, secretName: 'app', consumers: names(n), now: T0, windowSeconds: 900 });
    // Assess
    expect(q.requests).toHaveLength(1);
    expect(q.requests[0].MetricDataQueries).toHaveLength(n);
    expect(new Set(q.requests[0].MetricDataQueries.map((m) => m.MetricStat.Stat))).toEqual(new Set(['Minimum']));
  });

  it('splits beyond the documented limit of 500 queries per call', () => {
    // Act
    const q = buildGenerationQuery({ namespace: DEFAULT_NAMESPACE, secretName: 'app', consumers: names(1001), now: T0, windowSeconds: 900 });
    // Assess
    expect(q.requests.map((r) => r.MetricDataQueries.length)).toEqual([500, 500, 1]);
    expect(MAX_QUERIES_PER_GET_METRIC_DATA).toBe(500);
  });

  it('gives every query a unique id that GetMetricData accepts whatever the consumer name', () => {
    // Act
    const q = buildGenerationQuery({ namespace: DEFAULT_NAMESPACE, secretName: 'app', consumers: names(600), now: T0, windowSeconds: 900 });
    // Assess
    const ids = q.requests.flatMap((r) => r.MetricDataQueries.map((m) => m.Id));
    expect(new Set(ids).size).toBe(600);
    for (const id of ids) expect(id).toMatch(/^[a-z][a-z0-9_]*$/);
    expect(q.consumerById.get(ids[599])).toBe(names(600)[599]);
  });

  it('queries LoadedGeneration with the exact contract dimensions', () => {
    // Act
    const q = buildGenerationQuery({ namespace: 'Custom', secretName: 'app-db', consumers: ['api'], now: T0, windowSeconds: 900 });
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
    const q = buildGenerationQuery({ namespace: DEFAULT_NAMESPACE, secretName: 'app', consumers: ['api'], now, windowSeconds: 300 });
    // Assess
    expect(q.startTime % 60_000).toBe(0);
    expect(q.startTime).toBeLessThanOrEqual(now - 360_000);
    expect(q.startTime).toBeGreaterThan(now - 420_000);
    expect(q.endTime).toBeGreaterThan(now);
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
    const query = { consumerById: new Map([['c0', 'api'], ['c1', 'worker']]) };
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
      collectGenerationResults({ consumerById: new Map([['c0', 'api']]) }, [{ MetricDataResults: [{ Id: 'c0', StatusCode: status }] }]),
    ).toThrow(new RegExp(`${status} for consumer "api"`));
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
    expect(s).toEqual({ consumer: 'api', state: 'fresh', generation: 6, lastSeen: { generation: 7, timestamp: T0 } });
  });
});
