/**
 * The fleet of the model-based test, built from the real consumer library: `live` processes are
 * `RotatingPgPool`s that pre-load AWSPENDING and report through `GenerationReporter` into the
 * CloudWatch model; a `restart-only` service loads AWSCURRENT at start and keeps its session; a
 * `scheduled` job loads AWSCURRENT, runs one query and reports, each time it runs.
 *
 * Every call a process makes runs in its own fault scope (see faults.ts), so a process can be told
 * that its secret reads fail, and an outage refuses its connects. Processes act only when the
 * model tells them to (a command, or the world ticking while a gate sleeps), on virtual time.
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Client, PoolClient } from 'pg';
import {
  GenerationReporter,
  PutMetricDataSink,
  RotatingPgPool,
  SecretsManagerSource,
  type ReportSubject,
  type SecretVersion,
} from '../../consumer/index';
import { AuthenticationFailedError } from '../../lambda/shared/errors';
import { LOADED_GENERATION, secretNameDimension } from '../../lambda/shared/metric-contract';
import { openClient, withClient } from '../../lambda/shared/pg-connection';
import type { ConsumerRegistration } from '../../lambda/shared/registry';
import { parseSecret, type DbSecret } from '../../lambda/shared/secret';
import { runScoped, type OtherScope } from './faults';

/** What a process needs from the world. */
export interface FleetContext {
  readonly secretArn: string;
  readonly caBundlePath?: string;
  /** Virtual epoch milliseconds. */
  now(): number;
  /** Records one LoadedGeneration data point as published (for invariant 3). */
  recordReport(consumer: string, generation: number, t: number): void;
}

/** A query that failed, and whether a credential change caused it. */
export interface QueryFailure {
  readonly process: string;
  readonly consumer: string;
  readonly mode: ConsumerRegistration['mode'];
  readonly credentialCaused: boolean;
  readonly error: string;
}

/** SQLSTATEs of a refused login: wrong password (28P01) or role not permitted / unknown (28000). */
function credentialCaused(err: unknown): boolean {
  if (err instanceof AuthenticationFailedError) return true;
  const code =
    (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
  return code === '28P01' || code === '28000';
}

/** Common to every process: its name, consumer, fault scope and query log. */
abstract class FleetProcess {
  public readonly scope: OtherScope = { actor: 'consumer' };
  public readonly failures: QueryFailure[] = [];
  public queries = 0;

  protected constructor(
    protected readonly ctx: FleetContext,
    public readonly registration: ConsumerRegistration,
    public readonly id: string,
  ) {}

  protected scoped<T>(fn: () => Promise<T>): Promise<T> {
    return runScoped(this.scope, fn);
  }

  protected async recordQuery(run: () => Promise<unknown>): Promise<void> {
    this.queries++;
    try {
      await this.scoped(run);
    } catch (err) {
      this.failures.push({
        process: this.id,
        consumer: this.registration.name,
        mode: this.registration.mode,
        credentialCaused: credentialCaused(err),
        error: `${(err as Error).name}: ${(err as Error).message}`,
      });
    }
  }

  protected async publish(reporter: GenerationReporter): Promise<void> {
    const points = await this.scoped(() => reporter.report()).catch(() => []);
    for (const p of points) {
      if (p.name === LOADED_GENERATION)
        this.ctx.recordReport(this.registration.name, p.value, this.ctx.now());
    }
  }

  /** The credential the process would connect with now (undefined: none loaded). */
  public abstract inUse(): DbSecret | undefined;
  /** One step of the world: refresh, report and query as the process's mode does. */
  public abstract tick(): Promise<void>;
  /** Issues one query the way the application does. */
  public abstract query(): Promise<void>;
  public abstract stop(): Promise<void>;
}

/** How often a live process reads the secret when time passes: the library's default TTL. */
const REFRESH_TTL_MS = 60_000;

/** One process of a `live` consumer. */
export class LiveProcess extends FleetProcess {
  public pool!: RotatingPgPool;
  private reporter!: GenerationReporter;
  /** A client checked out for a long time (a long transaction, a LISTEN, a cursor). */
  public held: PoolClient | undefined;
  /** Stopped: no refresh, no report, no query; its checked-out client stays open. */
  public hung = false;
  private refreshedAt = Number.NEGATIVE_INFINITY;

  public static async start(
    ctx: FleetContext,
    registration: ConsumerRegistration,
    id: string,
  ): Promise<LiveProcess> {
    const p = new LiveProcess(ctx, registration, id);
    await p.boot();
    return p;
  }

  private async boot(): Promise<void> {
    this.pool = new RotatingPgPool({
      source: new SecretsManagerSource({ secretId: this.ctx.secretArn, includePending: true }),
      caBundlePath: this.ctx.caBundlePath,
      max: 3,
      idleTimeoutMillis: 0,
      connectTimeoutMs: 3_000,
      applicationName: this.id,
      refresh: { ttlMs: 3_600_000, refreshInBackground: false, clock: () => this.ctx.now() },
    });
    this.pool.on('error', () => undefined);
    this.pool.on('reloadFailure', () => undefined);
    this.pool.on('pendingRejected', () => undefined);
    this.reporter = new GenerationReporter({
      subject: this.pool,
      consumer: this.registration.name,
      sink: new PutMetricDataSink({ awsSdkV3Client: new CloudWatchClient({}), flushDelayMs: 0 }),
      periodSeconds: 3600,
      reportOnChange: false,
      now: () => this.ctx.now(),
    });
    this.reporter.on('publishFailure', () => undefined);
    await this.scoped(() => this.pool.ready()).catch(() => undefined);
    await this.publish(this.reporter);
  }

  public inUse(): SecretVersion | undefined {
    return this.pool.credential;
  }

  public async refresh(): Promise<void> {
    this.refreshedAt = this.ctx.now();
    await this.scoped(() => this.pool.refreshNow()).catch(() => undefined);
  }

  public async tick(): Promise<void> {
    if (this.hung) return;
    // The library's default TTL: the secret is read again once a minute (reports go out every tick).
    if (this.ctx.now() - this.refreshedAt >= REFRESH_TTL_MS) await this.refresh();
    await this.publish(this.reporter);
    // Applications query all the time, also while a gate waits.
    await this.query();
  }

  public async query(): Promise<void> {
    if (this.hung) return;
    await this.recordQuery(() => this.pool.query('SELECT count(*) FROM items'));
    const held = this.held;
    if (held) await this.recordQuery(() => held.query('SELECT 1'));
  }

  public async hold(): Promise<void> {
    if (this.held || this.hung) return;
    this.held = await this.scoped(() => this.pool.connect()).catch(() => undefined);
    // As with pg.Pool, a checked-out client's errors (its session terminated) are the holder's to
    // handle; the next query on it fails and is recorded.
    this.held?.on('error', () => undefined);
  }

  public release(): void {
    const held = this.held;
    this.held = undefined;
    // A client whose connection died is closed rather than returned.
    held?.release(true);
  }

  /** Hangs holding a connection: it stops reporting, but its session stays open. */
  public async hang(): Promise<void> {
    await this.hold();
    this.hung = true;
  }

  /** Resumes: its overdue timers fire at once (a refresh when the TTL has passed, a report, a query). */
  public async resume(): Promise<void> {
    if (!this.hung) return;
    this.hung = false;
    await this.tick();
  }

  /** A new process in place of this one (same consumer), with a fresh pool. */
  public async restart(): Promise<void> {
    await this.stop();
    this.hung = false;
    await this.boot();
  }

  public async stop(): Promise<void> {
    this.release();
    await this.pool.end().catch(() => undefined);
  }
}

/** Reads AWSCURRENT the way a consumer without the pool would. */
async function readCurrent(ctx: FleetContext): Promise<DbSecret> {
  const out = await new SecretsManagerClient({}).send(
    new GetSecretValueCommand({ SecretId: ctx.secretArn }),
  );
  return parseSecret(out.SecretString);
}

/** A fixed subject for the reporter of a process that is not a pool. */
class Loaded implements ReportSubject {
  public generation: number | undefined;
  public readonly reloadFailureCount = 0;
  public constructor(public readonly secretName: string) {}
  public get loadedGeneration(): number | undefined {
    return this.generation;
  }
}

function reporterFor(
  ctx: FleetContext,
  consumer: string,
  subject: ReportSubject,
): GenerationReporter {
  const reporter = new GenerationReporter({
    subject,
    consumer,
    sink: new PutMetricDataSink({ awsSdkV3Client: new CloudWatchClient({}), flushDelayMs: 0 }),
    periodSeconds: 3600,
    reportOnChange: false,
    now: () => ctx.now(),
  });
  reporter.on('publishFailure', () => undefined);
  return reporter;
}

/** A process without a pool: it reports the generation it loaded itself. */
abstract class LoadingProcess extends FleetProcess {
  protected readonly subject: Loaded;
  protected readonly reporter: GenerationReporter;

  public constructor(ctx: FleetContext, registration: ConsumerRegistration, id: string) {
    super(ctx, registration, id);
    this.subject = new Loaded(secretNameDimension(ctx.secretArn));
    this.reporter = reporterFor(ctx, registration.name, this.subject);
  }
}

/** The `restart-only` service: AWSCURRENT at start, one long session, reports until restarted. */
export class RestartOnlyProcess extends LoadingProcess {
  private client: Client | undefined;
  private credential: DbSecret | undefined;

  public inUse(): DbSecret | undefined {
    return this.credential;
  }

  public async restart(): Promise<void> {
    await this.stop();
    await this.scoped(async () => {
      const s = await readCurrent(this.ctx);
      const client = await openClient(
        { host: s.host, port: s.port, dbname: s.dbname, ssl: s.ssl },
        s,
        {
          caBundlePath: this.ctx.caBundlePath,
          applicationName: this.id,
          connectTimeoutMs: 3_000,
        },
      );
      client.on('error', () => undefined);
      this.client = client;
      this.credential = s;
      this.subject.generation = s.generation;
    }).catch(() => undefined);
    await this.publish(this.reporter);
  }

  public async tick(): Promise<void> {
    await this.publish(this.reporter);
  }

  public async query(): Promise<void> {
    const client = this.client;
    if (client) await this.recordQuery(() => client.query('SELECT count(*) FROM items'));
  }

  public async stop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}

/** The `scheduled` job: each run loads AWSCURRENT, runs one query, reports, and exits. */
export class ScheduledJob extends LoadingProcess {
  public inUse(): DbSecret | undefined {
    return undefined;
  }

  /** One run of the job. */
  public async run(): Promise<void> {
    let loaded: DbSecret | undefined;
    await this.recordQuery(async () => {
      const s = await readCurrent(this.ctx).catch(() => undefined);
      if (!s) return; // the store failed: the job does not run this time
      loaded = s;
      await withClient(
        { host: s.host, port: s.port, dbname: s.dbname, ssl: s.ssl },
        s,
        { caBundlePath: this.ctx.caBundlePath, connectTimeoutMs: 3_000 },
        (c) => c.query('SELECT count(*) FROM items'),
      );
    });
    if (!loaded) return;
    this.subject.generation = loaded.generation;
    await this.publish(this.reporter);
  }

  public async tick(): Promise<void> {
    // Runs only when the model says so (or when the world quiesces).
  }

  public async query(): Promise<void> {}

  public async stop(): Promise<void> {}
}

export type AnyProcess = LiveProcess | RestartOnlyProcess | ScheduledJob;
