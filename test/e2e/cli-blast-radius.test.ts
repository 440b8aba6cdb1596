/**
 * `converge blast-radius` through the CLI (runCli), against the local Secrets Manager, CloudWatch
 * and Lambda models and a real PostgreSQL: a live consumer whose RotatingPgPool holds attributed
 * sessions, an hourly scheduled job, and a psql-like session nobody registered. The expected
 * numbers are worked out by hand in the comments (formulas: cli/commands/blast-radius-model.ts).
 */
import { hostname } from 'node:os';
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import type { BlastRadiusReport } from '../../cli/commands/blast-radius';
import { RotatingPgPool, SecretsManagerSource } from '../../consumer/index';
import { formatApplicationName, parseApplicationName } from '../../lambda/shared/application-name';
import {
  DIMENSION_CONSUMER,
  DIMENSION_SECRET,
  LOADED_GENERATION,
  POOL_AGE_SECONDS_MAX,
  secretNameDimension,
} from '../../lambda/shared/metric-contract';
import { asSuperuser } from '../support/database';
import { cli, cliModels, connectAs, leakCheckedHarnesses } from '../support/probes';
import type { RotationHarness } from '../support/rotation-harness';

const { lambda } = cliModels();
const cw = new CloudWatchClient({});
const file = leakCheckedHarnesses();

const REGISTRY = [
  { name: 'orders-api', mode: 'live', maxStalenessSeconds: 300 },
  { name: 'nightly', mode: 'scheduled', maxStalenessSeconds: 7200 },
];

async function put(
  h: RotationHarness,
  consumer: string,
  metric: string,
  value: number,
  ageSeconds: number,
): Promise<void> {
  await cw.send(
    new PutMetricDataCommand({
      Namespace: 'SecretRotation',
      MetricData: [
        {
          MetricName: metric,
          Dimensions: [
            {
              Name: DIMENSION_SECRET,
              Value: secretNameDimension(h.model.describeSecret({ SecretId: h.secretArn }).Name!),
            },
            { Name: DIMENSION_CONSUMER, Value: consumer },
          ],
          Value: value,
          Timestamp: new Date(Date.now() - ageSeconds * 1000),
        },
      ],
    }),
  );
}

describe('CLI: converge blast-radius', () => {
  let h: RotationHarness;
  let pool: RotatingPgPool;
  const held: { release: () => void }[] = [];
  let psql: { end: () => Promise<void> };

  beforeAll(async () => {
    // Prepare: the rotation function carries the registry and the gate settings (poll 20 s, wait 600 s)
    const env = {
      CONVERGE_CONSUMERS: JSON.stringify(REGISTRY),
      CONVERGE_GATE_POLL_SECONDS: '20',
      CONVERGE_GATE_MAX_WAIT_SECONDS: '600',
    };
    h = await file.create({ prefix: 'blast', env });
    lambda.register(h.lambdaArn, (e) => h.handler(e as never), env);
    // orders-api reported generation 0 every minute (then 120 s ago and now: bucket gaps 60, 60, 60, 120,
    // median 60); its pools' oldest connection peaked at 1200 s
    for (const age of [300, 240, 180, 120, 0])
      await put(h, 'orders-api', LOADED_GENERATION, 0, age);
    await put(h, 'orders-api', POOL_AGE_SECONDS_MAX, 1200, 60);
    // nightly ran an hour apart (gap 3600 s, within its 7200 s staleness)
    for (const age of [7000, 3400]) await put(h, 'nightly', LOADED_GENERATION, 0, age);
    // the master may read backend_start of other users' sessions (the connection ages)
    await asSuperuser(h.db.dbname, (c) =>
      c.query(`GRANT pg_read_all_stats TO ${c.escapeIdentifier(h.db.master.username)}`),
    );
    // orders-api's pool holds two connections, named after the consumer
    pool = new RotatingPgPool({
      source: new SecretsManagerSource({ secretId: h.secretArn, includePending: true }),
      consumer: 'orders-api', // names its connections cv1:orders-api:<generation>:<host>:<pid>
      caBundlePath: h.config.caBundlePath,
      max: 4,
    });
    held.push(await pool.connect(), await pool.connect());
    // a human with psql as the application user
    psql = await connectAs(h, h.current(), 'psql');
  });

  afterAll(async () => {
    for (const c of held) c.release();
    await pool.end();
    await psql.end();
  });

  it('--json: the overlap, its terms and the expected times from registry + observations, with the attributed process and the unattributed session', async () => {
    // Act
    const run = await cli(
      'blast-radius',
      h.secretArn,
      '--sessions',
      '--ca-bundle',
      h.config.caBundlePath!,
      '--json',
    );
    // Assess
    expect(run.err).toBe('');
    expect(run.code).toBe(0);
    const r = JSON.parse(run.out) as BlastRadiusReport;
    // orders-api: A = refresh 60 + report 60 + staleness 300 + bucket 60 = 480; L = max(seconds-old sessions, 1200) = 1200
    // nightly: J = 7200 + 60 = 7260
    // overlap = 480 + 1200 + 7260 = 8940; promotion = 480 + poll 20 = 500 (<= 600: first invocation);
    // safe revocation = 500 + 1200 + 7260 = 8960
    expect(r.overlap).toEqual({
      seconds: 8940,
      terms: {
        liveAdoption: { seconds: 480, consumer: 'orders-api' },
        connectionLifetime: { seconds: 1200, consumer: 'orders-api', observed: true },
        scheduledRun: { seconds: 7260, consumer: 'nightly' },
      },
    });
    expect(r.expected).toEqual({
      promotionSeconds: 500,
      promotionVia: 'first-invocation',
      safeRevocationSeconds: 8960,
      waitsForRestartOf: [],
    });
    expect(r.registrySource).toBe('function');
    expect(r.assumptions.gate).toEqual({
      pollSeconds: 20,
      maxWaitSeconds: 600,
      lookbackSeconds: 900,
    });
    const [api, nightly] = r.consumers;
    expect(api).toMatchObject({
      name: 'orders-api',
      mode: 'live',
      reportedGeneration: 0,
      reportPeriodSeconds: 60,
      reportPeriodSource: 'observed',
      poolAgeSecondsMax: 1200,
    });
    expect(api.reportingAgeSeconds).toBeLessThan(60);
    expect(nightly).toMatchObject({
      name: 'nightly',
      mode: 'scheduled',
      reportPeriodSeconds: 3600,
      reportPeriodSource: 'observed',
    });
    // one process (this one) with the pool's two sessions, on generation 0, as the application user
    const host = parseApplicationName(
      formatApplicationName({
        consumer: 'orders-api',
        generation: 0,
        host: hostname(),
        pid: process.pid,
      }),
    )!.host;
    expect(api.processes).toEqual([
      expect.objectContaining({
        host,
        pid: process.pid,
        generation: 0,
        user: h.current().username,
        sessions: 2,
        oldestBackendStart: expect.any(String),
      }),
    ]);
    // the sessions opened in beforeAll: seconds old, less than the pool metric's 1200
    expect(api.connectionAgeSeconds).toBeLessThan(1200);
    expect(api.connectionLifetimeSeconds).toBe(1200);
    expect(r.unattributed).toEqual([
      expect.objectContaining({
        user: h.current().username,
        applicationName: 'psql',
        clientAddr: expect.any(String),
        ageSeconds: expect.any(Number),
      }),
    ]);
    expect(r.sessionUsers).toEqual([h.current().username, `${h.current().username}_clone`]);
    expect(r.warnings.map((w) => w.code)).toEqual(['unattributed-sessions']);
  });

  it('prints a plain table by default, and without --sessions reads no secret value', async () => {
    // Prepare
    h.sm.resetHistory();
    // Act
    const run = await cli('blast-radius', h.secretArn);
    // Assess
    expect(run.code).toBe(0);
    expect(h.sm.commandCalls(GetSecretValueCommand)).toHaveLength(0);
    expect(run.out).toMatch(
      /^orders-api\s+live\s+300s\s+\d+s ago\s+0\s+60s\s+1200s\s+-\s+480s = refresh 60 \+ report 60 \+ staleness 300 \+ bucket 60$/m,
    );
    expect(run.out).toMatch(
      /^nightly\s+scheduled\s+7200s\s+3\d{3}s ago\s+0\s+3600s\s+-\s+-\s+7260s after promotion/m,
    );
    expect(run.out).toContain(
      'Overlap needed   8940 s (2h29m) = live adoption 480 s (orders-api) + connection lifetime 1200 s (orders-api) + scheduled run 7260 s (nightly)',
    );
    expect(run.out).toContain(
      'setSecret ->     promotion 500 s (8m20s) (within the first finishSecret)',
    );
    expect(run.out).toContain('                 safe revocation 8960 s (2h29m)');
    expect(run.out).not.toContain('Unattributed');
  });

  it('refuses an invalid --consumers before any AWS call', async () => {
    // Prepare
    h.sm.resetHistory();
    // Act
    const run = await cli(
      'blast-radius',
      h.secretArn,
      '--consumers',
      '[{"name":"x","mode":"sometimes"}]',
    );
    // Assess
    expect(run.code).toBe(1);
    expect(run.err).toMatch(
      /^converge: .*--consumers\[0\]\.mode must be one of live, scheduled, restart-only/,
    );
    expect(h.sm.calls()).toHaveLength(0);
  });
});
