/**
 * The drill's consumers: each one a real {@link RotatingPgPool} with a {@link GenerationReporter} and
 * two query loops, as an application embeds them (README.md, "Consumers: the library"). A scenario
 * breaks one of them the way production consumers break:
 *
 * - {@link ConsumerRunner.freeze}: its secret source stops refreshing (it keeps the snapshot it has,
 *   never sees AWSPENDING): a live consumer that never adopts;
 * - {@link ConsumerRunner.silence}: its reporter stops (the pool keeps working): a consumer that
 *   sends no data;
 * - not calling {@link ConsumerRunner.restart}: a restart-only consumer nobody restarted.
 *
 * `restart()` is what a deploy or the next run of a job does: a new pool and reporter with a fresh
 * source (not frozen, reporting), after which the old pool drains and ends.
 */
import { hostname } from 'node:os';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  GenerationReporter,
  PutMetricDataSink,
  RotatingPgPool,
  SecretsManagerSource,
  type SecretFetchOptions,
  type SecretSnapshot,
  type SecretSource,
} from '../../consumer/index';
import type { ConsumerMode } from '../../lambda/shared/registry';

/** A registered drill consumer. */
export interface DrillConsumer {
  readonly name: string;
  readonly mode: ConsumerMode;
}

/** What a scenario did to a consumer, shown next to its generation in progress lines. */
export type ConsumerCondition = 'stuck' | 'silent' | 'not restarted';

/** One process of a consumer as the drill knows it (every drill consumer runs in the drill's process). */
export interface DrillProcess {
  readonly host: string;
  readonly pid: number;
  readonly generation?: number;
}

/** Queries and failures of the whole drill. */
export interface LoadCounters {
  queries: number;
  failed: number;
  firstFailure?: string;
}

/** Where the consumers connect and report. */
export interface ConsumerEnvironment {
  readonly sm: SecretsManagerClient;
  readonly cw: CloudWatchClient;
  readonly secretArn: string;
  readonly caBundlePath?: string;
  /** Live consumers' refresh interval, seconds. */
  readonly refreshSeconds: number;
  /** Reporters' period, seconds (the drill compresses time: 1). */
  readonly reportPeriodSeconds: number;
  readonly counters: LoadCounters;
  /** While false, the query loops end. */
  readonly running: () => boolean;
}

/** A running drill consumer. */
export interface ConsumerRunner {
  readonly consumer: DrillConsumer;
  /** Resolves once its pool has loaded a credential and its loops run. */
  readonly ready: Promise<void>;
  /** The generation its pool uses for new connections. */
  readonly generation: () => number | undefined;
  /** Failed queries of this consumer. */
  readonly failed: () => number;
  /** What a scenario did to it (until the next restart). */
  readonly condition: () => ConsumerCondition | undefined;
  /** Marks it (e.g. `not restarted`) without changing what it does. */
  mark(condition: ConsumerCondition | undefined): void;
  /** Its secret source stops refreshing: it keeps the credential it has. */
  freeze(): void;
  /** Its reporter stops (a last report is sent, then nothing). */
  silence(): Promise<void>;
  /** A new process: fresh source, pool and reporter; the old pool drains and ends. */
  restart(): Promise<void>;
  /** The processes as the drill knows them. */
  processes(): DrillProcess[];
  stop(): Promise<void>;
}

/**
 * A source that can be frozen: from then on it answers the last snapshot it returned, as a
 * process whose refresh is broken (or that reads a file nobody re-renders) does.
 *
 * @example
 * const source = new FreezableSource(new SecretsManagerSource({ secretId }));
 * source.frozen = true;
 */
export class FreezableSource implements SecretSource {
  public frozen = false;
  private last: SecretSnapshot | undefined;

  public constructor(private readonly inner: SecretSource) {}

  public get secretName(): string {
    return this.inner.secretName;
  }

  public async fetch(
    previous?: SecretSnapshot,
    options?: SecretFetchOptions,
  ): Promise<SecretSnapshot> {
    if (this.frozen && this.last) return this.last;
    this.last = await this.inner.fetch(previous, options);
    return this.last;
  }
}

/**
 * Starts a consumer: pool, reporter, two query loops (scheduled consumers pause 50 ms between
 * iterations, as a job that does other work).
 *
 * @example
 * const runner = startConsumer({ name: 'drill-live-1', mode: 'live' }, env);
 * await runner.ready;
 */
export function startConsumer(c: DrillConsumer, env: ConsumerEnvironment): ConsumerRunner {
  let source = newSource();
  let pool = newPool(source);
  let reporter: GenerationReporter | undefined = newReporter(pool);
  let restarting: Promise<void> | undefined;
  let condition: ConsumerCondition | undefined;
  let failed = 0;
  const loops: Promise<void>[] = [];
  const ready = pool.ready().then(() => {
    for (let i = 0; i < 2; i++) loops.push(loop(i));
  });

  async function loop(i: number): Promise<void> {
    while (env.running()) {
      try {
        if (restarting) await restarting;
        await pool.query('INSERT INTO items (note) VALUES ($1)', [`${c.name}-${i}`]);
        await pool.query('SELECT id, note FROM items ORDER BY id DESC LIMIT 5');
        env.counters.queries += 2;
      } catch (err) {
        failed++;
        env.counters.failed++;
        env.counters.firstFailure ??= `${c.name}: ${(err as Error).message}`;
      }
      if (c.mode === 'scheduled') await sleep(50);
    }
  }

  function newSource(): FreezableSource {
    return new FreezableSource(
      new SecretsManagerSource({
        awsSdkV3Client: env.sm,
        secretId: env.secretArn,
        includePending: c.mode === 'live',
      }),
    );
  }

  function newPool(s: SecretSource): RotatingPgPool {
    const p = new RotatingPgPool({
      source: s,
      // Scheduled and restart-only consumers never refresh in place: they move on their next run.
      refresh: {
        ttlMs: c.mode === 'live' ? env.refreshSeconds * 1000 : 24 * 3600_000,
        jitter: 0.2,
      },
      caBundlePath: env.caBundlePath,
      max: 4,
      maxLifetimeSeconds: 30,
      consumer: c.name,
    });
    // An idle connection the server ends (an emergency rotation terminates the revoked user's
    // sessions) is no failed query. Like pg.Pool, the pool reports it as `error`, which would crash
    // the drill without a listener; the next query opens a new connection.
    p.on('error', () => undefined);
    return p;
  }

  function newReporter(p: RotatingPgPool): GenerationReporter {
    return new GenerationReporter({
      subject: p,
      consumer: c.name,
      sink: new PutMetricDataSink({ awsSdkV3Client: env.cw, flushDelayMs: 100 }),
      periodSeconds: env.reportPeriodSeconds,
      highResolution: true,
    }).start();
  }

  return {
    consumer: c,
    ready,
    generation: () => pool.loadedGeneration,
    failed: () => failed,
    condition: () => condition,
    mark(next) {
      condition = next;
    },
    freeze() {
      source.frozen = true;
      condition = 'stuck';
    },
    async silence() {
      const r = reporter;
      reporter = undefined;
      condition = 'silent';
      await r?.stop();
    },
    restart(): Promise<void> {
      restarting = (async () => {
        const old = pool;
        const oldReporter = reporter;
        source = newSource();
        pool = newPool(source);
        await pool.ready();
        reporter = newReporter(pool);
        condition = undefined;
        await oldReporter?.stop();
        await old.end();
      })();
      return restarting.finally(() => (restarting = undefined));
    },
    processes() {
      return [{ host: hostname(), pid: process.pid, generation: pool.loadedGeneration }];
    },
    async stop() {
      await Promise.all(loops);
      await reporter?.stop();
      await pool.end();
    },
  };
}

/**
 * `drill-live-1 g3, drill-live-2 g2 (stuck), ...`: the consumers as progress lines show them.
 *
 * @example
 * labelConsumers(runners); // 'drill-live-1 g1, drill-live-2 g0 (stuck)'
 */
export function labelConsumers(runners: readonly ConsumerRunner[]): string {
  return runners
    .map((r) => {
      const g = r.generation();
      const condition = r.condition();
      return `${r.consumer.name} ${g === undefined ? 'g-' : `g${g}`}${condition ? ` (${condition})` : ''}`;
    })
    .join(', ');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
