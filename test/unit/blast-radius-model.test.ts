/**
 * The blast-radius calculation (cli/commands/blast-radius-model.ts) against a fixture whose answers
 * are worked out by hand below. Notation as in the module comment: F refresh (60 s assumed), R report
 * interval, S maxStaleness, B bucket, P the gate's poll interval, L connection lifetime.
 */
import {
  computeBlastRadius,
  type BlastRadiusInput,
  type ConsumerSeries,
  type ObservedSession,
} from '../../cli/commands/blast-radius-model';
import type { GateConfig } from '../../lambda/rotation/config';
import type { ConsumerRegistration } from '../../lambda/shared/registry';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const ago = (s: number) => NOW - s * 1000;
const iso = (s: number) => new Date(ago(s)).toISOString();
const GATE: GateConfig = { pollSeconds: 20, maxWaitSeconds: 600, lookbackSeconds: 900 };

/** Generation-7 reports at these ages (seconds), read in 60 s buckets. */
function reports(ages: number[], extra: Partial<ConsumerSeries> = {}): ConsumerSeries {
  return {
    points: ages.map((a) => ({ timestamp: ago(a), minimum: 7 })),
    bucketSeconds: 60,
    ...extra,
  };
}

function session(
  user: string,
  pid: number,
  applicationName: string,
  startedSecondsAgo: number,
  clientAddr: string | null = '10.0.0.5',
): ObservedSession {
  return {
    user,
    pid,
    applicationName,
    clientAddr,
    database: 'orders',
    backendStart: iso(startedSecondsAgo),
  };
}

const REGISTRY: ConsumerRegistration[] = [
  { name: 'orders-api', mode: 'live', maxStalenessSeconds: 300 },
  { name: 'checkout', mode: 'live', maxStalenessSeconds: 120 },
  { name: 'reports-ui', mode: 'live', maxStalenessSeconds: 60 },
  { name: 'nightly-export', mode: 'scheduled', maxStalenessSeconds: 7200 },
  { name: 'ledger-sync', mode: 'restart-only', maxStalenessSeconds: 600 },
];

function fixture(overrides: Partial<BlastRadiusInput> = {}): BlastRadiusInput {
  return {
    registry: REGISTRY,
    series: new Map([
      // every minute, newest 60 s ago: R = 60 (observed); its pools' oldest connection peaked at 900 s
      [
        'orders-api',
        reports([600, 540, 480, 420, 360, 300, 240, 180, 120, 60], { poolAgeSecondsMax: 900 }),
      ],
      // every 5 minutes although S = 120: R = 300 (observed) > S: report-gap warning
      ['checkout', reports([900, 600, 300])],
      ['reports-ui', reports([120, 60])],
      // an hourly job: R = 3600 (within S = 7200)
      ['nightly-export', reports([7000, 3400])],
      // never reported in the lookback
      ['ledger-sync', reports([])],
    ]),
    lookbackSeconds: 21_600,
    sessions: [
      // orders-api: host-a on generation 7 (2 sessions, oldest 1500 s), host-b still on generation 6 (2400 s)
      session('app', 101, 'cv1:orders-api:7:host-a:101', 1500),
      session('app', 102, 'cv1:orders-api:7:host-a:101', 200),
      session('app_clone', 103, 'cv1:orders-api:6:host-b:202', 2400),
      session('app', 104, 'cv1:nightly-export:7:host-c:303', 100),
      // attributed, but nobody registered "adhoc-report"
      session('app', 105, 'cv1:adhoc-report:7:host-d:404', 50),
      // a human with psql on the old user, open 90 minutes
      session('app_clone', 9001, 'psql', 5400, '10.0.0.9'),
    ],
    gate: GATE,
    rotationIntervalSeconds: 4 * 3600,
    now: NOW,
    ...overrides,
  };
}

describe('Function: computeBlastRadius', () => {
  it("computes each consumer's adoption path, the overlap and the expected times of the fixture", () => {
    // Act
    const r = computeBlastRadius(fixture());
    // Assess: per consumer (hand-computed)
    //   orders-api  live  A = F 60 + R 60 + S 300 + B 60 = 480; L = max(2400 from sessions, 900 pool metric) = 2400
    //   checkout    live  A = F 60 + R 300 + S 120 + B 60 = 540  <- slowest live adoption path
    //   reports-ui  live  A = F 60 + R 60 + S 60 + B 60 = 240
    //   nightly     sched J = S 7200 + B 60 = 7260; L = 100
    //   ledger-sync restart-only: no time bound
    const byName = Object.fromEntries(r.consumers.map((c) => [c.name, c]));
    expect(byName['orders-api']).toMatchObject({
      reportingAgeSeconds: 60,
      reportedGeneration: 7,
      reportPeriodSeconds: 60,
      reportPeriodSource: 'observed',
      connectionAgeSeconds: 2400,
      poolAgeSecondsMax: 900,
      connectionLifetimeSeconds: 2400,
      adoption: {
        kind: 'live',
        refreshSeconds: 60,
        reportPeriodSeconds: 60,
        maxStalenessSeconds: 300,
        bucketSeconds: 60,
        totalSeconds: 480,
      },
    });
    expect(byName['orders-api'].processes).toEqual([
      {
        host: 'host-a',
        pid: 101,
        generation: 7,
        user: 'app',
        sessions: 2,
        oldestBackendStart: iso(1500),
        connectionAgeSeconds: 1500,
      },
      {
        host: 'host-b',
        pid: 202,
        generation: 6,
        user: 'app_clone',
        sessions: 1,
        oldestBackendStart: iso(2400),
        connectionAgeSeconds: 2400,
      },
    ]);
    expect(byName.checkout.adoption).toMatchObject({
      kind: 'live',
      reportPeriodSeconds: 300,
      totalSeconds: 540,
    });
    expect(byName['reports-ui'].adoption).toMatchObject({ totalSeconds: 240 });
    expect(byName['nightly-export']).toMatchObject({
      reportingAgeSeconds: 3400,
      reportPeriodSeconds: 3600,
      connectionLifetimeSeconds: 100,
      adoption: {
        kind: 'scheduled',
        maxStalenessSeconds: 7200,
        bucketSeconds: 60,
        totalSeconds: 7260,
      },
    });
    expect(byName['ledger-sync']).toMatchObject({
      reportPeriodSeconds: 60,
      reportPeriodSource: 'assumed',
      adoption: { kind: 'restart-only' },
      processes: [],
    });
    expect(byName['ledger-sync'].reportingAgeSeconds).toBeUndefined();
    // overlap = 540 (checkout) + 2400 (orders-api) + 7260 (nightly-export) = 10200
    expect(r.overlap).toEqual({
      seconds: 10_200,
      terms: {
        liveAdoption: { seconds: 540, consumer: 'checkout' },
        connectionLifetime: { seconds: 2400, consumer: 'orders-api', observed: true },
        scheduledRun: { seconds: 7260, consumer: 'nightly-export' },
      },
    });
    // promotion = 540 + P 20 = 560 <= max wait 600: within the first finishSecret;
    // safe revocation unbounded: ledger-sync must be restarted
    expect(r.expected).toEqual({
      promotionSeconds: 560,
      promotionVia: 'first-invocation',
      waitsForRestartOf: ['ledger-sync'],
    });
    expect(r.counts).toEqual({ live: 3, scheduled: 1, 'restart-only': 1 });
    expect(r.unregistered).toEqual([
      {
        consumer: 'adhoc-report',
        processes: [
          {
            host: 'host-d',
            pid: 404,
            generation: 7,
            user: 'app',
            sessions: 1,
            oldestBackendStart: iso(50),
            connectionAgeSeconds: 50,
          },
        ],
      },
    ]);
    expect(r.unattributed).toEqual([
      {
        user: 'app_clone',
        pid: 9001,
        applicationName: 'psql',
        clientAddr: '10.0.0.9',
        backendStart: iso(5400),
        ageSeconds: 5400,
      },
    ]);
  });

  it("warns about the fixture's fragile spots: silence, a report gap, a shared credential, restart-only, unknown sessions, a schedule", () => {
    // Act
    const r = computeBlastRadius(fixture());
    // Assess
    expect(r.warnings.map((w) => [w.code, w.consumers])).toEqual([
      ['not-reporting', ['ledger-sync']],
      ['report-gap', ['checkout']],
      [
        'shared-credential',
        ['orders-api', 'checkout', 'reports-ui', 'nightly-export', 'ledger-sync'],
      ],
      ['restart-only', ['ledger-sync']],
      ['unattributed-sessions', undefined],
      ['unregistered-consumer', ['adhoc-report']],
      ['rotation-interval', undefined],
    ]);
    const text = (code: string) => r.warnings.find((w) => w.code === code)!.message;
    expect(text('report-gap')).toMatch(
      /^checkout reports every 300 s but its maxStaleness is 120 s/,
    );
    // 3 processes seen: orders-api host-a and host-b, nightly-export host-c
    expect(text('shared-credential')).toMatch(
      /^5 consumers share this credential \(3 processes seen\): one failure domain/,
    );
    expect(text('unattributed-sessions')).toMatch(
      /^1 session\(s\) not opened through the consumer library/,
    );
    expect(text('rotation-interval')).toMatch(
      /every 14400 s, sooner than safe revocation \(unbounded: restart-only consumers\)/,
    );
  });

  it('without the restart-only consumer bounds safe revocation, and a short gate wait means promotion by re-drive', () => {
    // Prepare: the same fleet without ledger-sync, the gate waiting at most 300 s per invocation
    const r = computeBlastRadius(
      fixture({ registry: REGISTRY.slice(0, 4), gate: { ...GATE, maxWaitSeconds: 300 } }),
    );
    // Assess: promotion 560 > 300: re-drive; safe revocation = 560 + 2400 + 7260 = 10220 < 4 h: no schedule warning
    expect(r.expected).toEqual({
      promotionSeconds: 560,
      promotionVia: 're-drive',
      safeRevocationSeconds: 10_220,
      waitsForRestartOf: [],
    });
    expect(r.overlap.seconds).toBe(10_200);
    const codes = r.warnings.map((w) => w.code);
    expect(codes).toContain('gate-wait');
    expect(codes).not.toContain('rotation-interval');
    expect(codes).not.toContain('shared-credential');
    expect(r.warnings.find((w) => w.code === 'gate-wait')!.message).toMatch(
      /^promotion needs about 560 s but finishSecret waits at most 300 s/,
    );
  });

  it('a given refresh interval replaces the assumed 60 s in every live path', () => {
    // Act: live consumers refresh every 15 s
    const r = computeBlastRadius(fixture({ refreshSeconds: 15 }));
    // Assess: checkout 15 + 300 + 120 + 60 = 495; overlap 495 + 2400 + 7260 = 10155
    expect(r.overlap.terms.liveAdoption).toEqual({ seconds: 495, consumer: 'checkout' });
    expect(r.overlap.seconds).toBe(10_155);
    expect(r.assumptions.refreshSeconds).toBe(15);
  });

  it('with nothing observed says so: no reports at all, and no connection age', () => {
    // Prepare: the registry, but no data point and no sessions read
    const r = computeBlastRadius(
      fixture({ series: new Map(), sessions: undefined, rotationIntervalSeconds: undefined }),
    );
    // Assess: report intervals assumed (60), so orders-api A = 60+60+300+60 = 480 is the slowest live path
    expect(r.warnings.map((w) => w.code)).toEqual([
      'no-reports',
      'shared-credential',
      'restart-only',
      'connection-lifetime-unobserved',
    ]);
    expect(r.overlap).toEqual({
      seconds: 480 + 0 + 7260,
      terms: {
        liveAdoption: { seconds: 480, consumer: 'orders-api' },
        connectionLifetime: { seconds: 0, observed: false },
        scheduledRun: { seconds: 7260, consumer: 'nightly-export' },
      },
    });
    expect(r.unattributed).toBeUndefined();
    expect(
      r.consumers.every((c) => c.processes === undefined && c.reportPeriodSource === 'assumed'),
    ).toBe(true);
  });

  it('with no registered consumer promotes immediately and warns that nothing proves who uses the credential', () => {
    // Act
    const r = computeBlastRadius(fixture({ registry: [], series: undefined, sessions: [] }));
    // Assess
    expect(r.expected).toEqual({
      promotionSeconds: 0,
      promotionVia: 'immediate',
      safeRevocationSeconds: 0,
      waitsForRestartOf: [],
    });
    expect(r.overlap.seconds).toBe(0);
    expect(r.warnings.map((w) => w.code)).toEqual(['no-consumers']);
  });

  it('when the master cannot see backend_start, says how to see connection ages and falls back to the pool metric', () => {
    // Prepare: orders-api's sessions as a master without pg_read_all_stats sees them
    const hidden = (s: ObservedSession): ObservedSession => ({
      ...s,
      backendStart: null,
      clientAddr: null,
    });
    const sessions = fixture()
      .sessions!.filter((s) => s.applicationName.startsWith('cv1:orders-api'))
      .map(hidden);
    // Act
    const r = computeBlastRadius(fixture({ sessions }));
    // Assess: 3 sessions without backend_start; orders-api's lifetime is its PoolAgeSecondsMax, 900
    expect(r.warnings.find((w) => w.code === 'connection-ages-hidden')!.message).toMatch(
      /^the master sees 3 session\(s\) without backend_start .*grant the master pg_read_all_stats/,
    );
    expect(r.overlap.terms.connectionLifetime).toEqual({
      seconds: 900,
      consumer: 'orders-api',
      observed: true,
    });
    expect(
      r.consumers[0].processes!.map((p) => [p.host, p.sessions, p.connectionAgeSeconds]),
    ).toEqual([
      ['host-a', 2, undefined],
      ['host-b', 1, undefined],
    ]);
  });

  it('when CloudWatch could not be read, says so instead of calling every consumer silent', () => {
    // Act
    const r = computeBlastRadius(fixture({ series: undefined }));
    // Assess
    const codes = r.warnings.map((w) => w.code);
    expect(codes[0]).toBe('cloudwatch-unreadable');
    expect(codes).not.toContain('no-reports');
    expect(codes).not.toContain('not-reporting');
  });
});
