/**
 * A small fleet for the gate integration tests: consumers that really connect to the test
 * PostgreSQL and report through the real consumer library into the in-memory CloudWatch model.
 *
 * Time is virtual. The rotation function's clock, the CloudWatch model and the reporters'
 * timestamps share a {@link VirtualClock}; it moves only when the promotion gate sleeps (or a test
 * advances it), and each gate sleep runs the test's `onSleep` hook, where the "world" moves on:
 * consumers refresh, restart, and report. Nothing waits on wall time.
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { Client } from 'pg';
import { CloudWatchModel } from '../../../cli/local/cloudwatch-model';
import { installCloudWatchModel, wireCloudWatch, type CloudWatchStub } from '../../../cli/local/install';
import { GenerationReporter, PutMetricDataSink, RotatingPgPool, SecretsManagerSource, type ReportSubject } from '../../../consumer/index';
import { ENV } from '../../../lambda/rotation/config';
import type { Clock } from '../../../lambda/rotation/context';
import { openClient } from '../../../lambda/shared/pg-connection';
import type { RotationHarness } from '../../support/rotation-harness';

/** Minute-aligned virtual start time. */
export const VIRTUAL_T0 = Math.floor(Date.now() / 60_000) * 60_000;

/** A clock that advances only when told to; `sleep` advances it and runs the hook. */
export class VirtualClock implements Clock {
  public sleeps = 0;
  /** The world moving on during the gate's n-th sleep (n from 1). */
  public onSleep?: (n: number) => Promise<void>;
  private t = VIRTUAL_T0;

  public now(): number {
    return this.t;
  }

  public async sleep(ms: number): Promise<void> {
    this.t += ms;
    this.sleeps++;
    await this.onSleep?.(this.sleeps);
  }

  public advance(ms: number): void {
    this.t += ms;
  }
}

/** A virtual clock and the CloudWatch model on it, fresh for every test of the file. */
export interface VirtualCloudWatch {
  clock: VirtualClock;
  model: CloudWatchModel;
  cw: CloudWatchStub;
}

/**
 * Installs the CloudWatch model behind the real client for the test file, and gives every test a
 * fresh virtual clock and model (call it at the top of a `describe`).
 *
 * @example
 * const world = virtualCloudWatch();
 * it('...', () => { world.clock.advance(20_000); });
 */
export function virtualCloudWatch(): VirtualCloudWatch {
  const world = {} as VirtualCloudWatch;
  beforeAll(() => {
    world.clock = new VirtualClock();
    world.cw = installCloudWatchModel(new CloudWatchModel({ now: () => world.clock.now() }));
  });
  beforeEach(() => {
    world.clock = new VirtualClock();
    world.model = new CloudWatchModel({ now: () => world.clock.now() });
    world.cw.reset();
    wireCloudWatch(world.cw, world.model);
  });
  afterAll(() => world.cw.restore());
  return world;
}

/** Environment for the harness: a registry and gate settings scaled for virtual time. */
export function gateEnv(consumers: { name: string; mode: string; maxStalenessSeconds?: number }[], gate: { maxWaitSeconds?: number } = {}) {
  return {
    [ENV.consumers]: JSON.stringify(consumers.map((c) => ({ maxStalenessSeconds: 60, ...c }))),
    [ENV.gatePollSeconds]: '20',
    [ENV.gateMaxWaitSeconds]: String(gate.maxWaitSeconds ?? 600),
    [ENV.gateLookbackSeconds]: '300',
  };
}

/** Continuous queries on a pool, counting successes and failures, bounded in count. */
export class Load {
  public ok = 0;
  public failed = 0;
  public readonly errors: string[] = [];
  private stopped = false;
  private readonly loops: Promise<void>[];

  public constructor(
    private readonly query: () => Promise<unknown>,
    concurrency = 2,
    private readonly maxIterations = 200_000,
  ) {
    this.loops = Array.from({ length: concurrency }, () => this.loop());
  }

  public async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  private async loop(): Promise<void> {
    for (let i = 0; i < this.maxIterations && !this.stopped; i++) {
      try {
        await this.query();
        this.ok++;
      } catch (err) {
        this.failed++;
        if (this.errors.length < 5) this.errors.push(`${(err as Error).name}: ${(err as Error).message}`);
      }
    }
  }
}

/** A `live` consumer: a RotatingPgPool that pre-loads AWSPENDING, under load, reporting by PutMetricData. */
export class LiveConsumer {
  public readonly pool: RotatingPgPool;
  public readonly reporter: GenerationReporter;
  public readonly load: Load;

  private constructor(h: RotationHarness, public readonly name: string, clock: VirtualClock) {
    this.pool = new RotatingPgPool({
      source: new SecretsManagerSource({ secretId: h.secretArn, includePending: true }),
      caBundlePath: h.config.caBundlePath,
      max: 3,
      applicationName: name,
      // Refreshed by the test (refreshNow) so that who moves when is under its control.
      refresh: { ttlMs: 3_600_000, refreshInBackground: false },
    });
    this.pool.on('error', () => undefined);
    this.reporter = new GenerationReporter({
      subject: this.pool,
      consumer: name,
      sink: new PutMetricDataSink({ awsSdkV3Client: new CloudWatchClient({}), flushDelayMs: 0 }),
      periodSeconds: 3600,
      now: () => clock.now(),
    });
    this.load = new Load(() => this.pool.query('SELECT count(*) FROM items'));
  }

  public static async start(h: RotationHarness, name: string, clock: VirtualClock): Promise<LiveConsumer> {
    const c = new LiveConsumer(h, name, clock);
    await c.pool.ready();
    await c.reporter.report();
    return c;
  }

  public get generation(): number | undefined {
    return this.pool.loadedGeneration;
  }

  public async stop(): Promise<void> {
    await this.load.stop();
    await this.pool.end();
  }
}

/**
 * A `restart-only` consumer: loads AWSCURRENT at start, keeps one session open, and reports the
 * generation it started with until it is restarted.
 */
export class RestartOnlyConsumer implements ReportSubject {
  public readonly reporter: GenerationReporter;
  public readonly secretName: string;
  public readonly reloadFailureCount = 0;
  public client: Client | undefined;
  private generation: number | undefined;

  public constructor(
    private readonly h: RotationHarness,
    public readonly name: string,
    clock: VirtualClock,
  ) {
    this.secretName = new SecretsManagerSource({ secretId: h.secretArn }).secretName;
    this.reporter = new GenerationReporter({
      subject: this,
      consumer: name,
      sink: new PutMetricDataSink({ awsSdkV3Client: new CloudWatchClient({}), flushDelayMs: 0 }),
      periodSeconds: 3600,
      now: () => clock.now(),
    });
  }

  public get loadedGeneration(): number | undefined {
    return this.generation;
  }

  /** (Re)starts: reads AWSCURRENT, opens a session with it, reports. */
  public async start(): Promise<void> {
    await this.close();
    const s = this.h.current();
    const client = await openClient({ host: s.host, port: s.port, dbname: s.dbname, ssl: s.ssl }, s, {
      caBundlePath: this.h.config.caBundlePath,
      applicationName: this.name,
    });
    client.on('error', () => undefined);
    await client.query('SELECT count(*) FROM items');
    this.client = client;
    this.generation = s.generation;
    await this.reporter.report();
  }

  /** The session's user, or undefined when the session is gone. */
  public async sessionUser(): Promise<string | undefined> {
    try {
      return (await this.client!.query<{ u: string }>('SELECT session_user AS u')).rows[0].u;
    } catch {
      return undefined;
    }
  }

  public async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}
