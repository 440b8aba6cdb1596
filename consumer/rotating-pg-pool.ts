/**
 * A `pg.Pool` facade that follows credential rotations without a restart or a failed query.
 *
 * Inside are one `pg.Pool` per database identity (user, host, port, database, TLS mode):
 *
 * - New connections use the adopted credential (see {@link CredentialAdoption}). A password change
 *   of the same user needs no new pool: the inner pool reads the password when it opens a
 *   connection.
 * - A username change opens a new inner pool and retires the old one with `pg.Pool#end()`, whose
 *   documented drain is exactly what a rotation needs: idle clients close at once, checked-out
 *   clients (an active query, an open transaction) keep working and close when released. No
 *   connection is ever killed by a swap.
 * - One permit per checked-out client, across all inner pools, keeps the total at `max` and means
 *   an inner pool never queues a request: a request queued inside a `pg.Pool` that is ending would
 *   never be served.
 * - A connect rejected with SQLSTATE 28P01/28000 (the cached credential was rotated away) refreshes
 *   the secret once and retries, up to `maxAuthRetries` times. While the refresh brings no other
 *   credential, connects that would log in with the rejected one fail fast, without a login
 *   attempt, for `authFailureBackoffMs` ({@link CredentialRejectedError}): a revoked credential costs
 *   about one failed login per period, not one per query.
 *
 * - Every connection it opens is named in `pg_stat_activity` once the pool knows its consumer name
 *   (the `consumer` option, or the {@link GenerationReporter} that reports it): application_name
 *   `cv1:<consumer>:<generation>:<host>:<pid>` (lambda/shared/application-name.ts), with the
 *   generation of the credential that connection logged in with.
 *
 * Errors never contain a password: connect failures are typed by {@link classifyConnectError}.
 */
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  Client,
  DatabaseError,
  Pool,
  type ClientConfig,
  type PoolClient,
  type PoolConfig,
  type QueryArrayConfig,
  type QueryArrayResult,
  type QueryConfig,
  type QueryConfigValues,
  type QueryResult,
  type QueryResultRow,
  type Submittable,
} from 'pg';
import { formatApplicationName } from '../lambda/shared/application-name';
import {
  AuthenticationFailedError,
  ConvergeError,
  CredentialRejectedError,
  DatabaseConnectionError,
  PoolEndedError,
} from '../lambda/shared/errors';
import {
  classifyConnectError,
  pgConfig,
  targetOf,
  withClient,
  type ConnectionOptions,
  type ConnectionTarget,
} from '../lambda/shared/pg-connection';
import {
  CredentialAdoption,
  type CredentialValidator,
  type PendingRejectedInfo,
  type PendingRetryOptions,
} from './credential-adoption';
import {
  refreshingSnapshot,
  type RefreshingSecret,
  type RefreshOptions,
} from './refreshing-secret';
import type { SecretSnapshot, SecretSource, SecretVersion } from './secret-source';

/** pg options the facade leaves to you; connection identity, TLS and sizing are set by the facade. */
export type PassThroughPoolConfig = Omit<
  PoolConfig,
  | 'host'
  | 'port'
  | 'database'
  | 'user'
  | 'password'
  | 'ssl'
  | 'connectionString'
  | 'max'
  | 'min'
  | 'idleTimeoutMillis'
  | 'maxLifetimeSeconds'
  | 'connectionTimeoutMillis'
>;

/** Options of {@link RotatingPgPool}. TLS and timeouts come from {@link ConnectionOptions}. */
export interface RotatingPgPoolOptions extends ConnectionOptions {
  /** Where the credential comes from: {@link SecretsManagerSource} or {@link FileSource}. */
  readonly source: SecretSource;
  /**
   * The consumer's registered name (the `Consumer` dimension of its metrics). While the pool knows
   * it, every connection it opens has the application_name `cv1:<consumer>:<generation>:<host>:<pid>`
   * (lambda/shared/application-name.ts), which the revocation guard, emergency rotations and
   * `converge status --sessions` use to name the consumer and process behind an open session; it
   * takes precedence over `applicationName`, which then only names connections of a pool that
   * does not know its consumer.
   *
   * @default - the `consumer` of the {@link GenerationReporter} created with this pool as its subject
   */
  readonly consumer?: string;
  /**
   * TTL, jitter and backoff of the secret cache.
   *
   * @default - see {@link RefreshOptions}
   */
  readonly refresh?: RefreshOptions;
  /**
   * Most clients checked out at once, over all inner pools.
   *
   * @default 10
   */
  readonly max?: number;
  /**
   * How long an idle client stays open.
   *
   * @default 10000
   */
  readonly idleTimeoutMillis?: number;
  /**
   * Connections older than this are closed when next idle or released (never while in use).
   * It bounds `PoolAgeSecondsMax`; 0 means no limit.
   *
   * @default 0
   */
  readonly maxLifetimeSeconds?: number;
  /**
   * Longest wait for a free client when `max` are checked out; 0 waits without limit (as `pg`).
   *
   * @default 0
   */
  readonly acquireTimeoutMillis?: number;
  /**
   * How many times a connect rejected with SQLSTATE 28P01/28000 retries. Before a retry the secret
   * is refreshed (at most once a second, shared by concurrent connects); when that brings no other
   * credential, the connect fails at once.
   *
   * @default 1
   */
  readonly maxAuthRetries?: number;
  /**
   * After PostgreSQL rejects the credential (SQLSTATE 28P01/28000) and a refresh brings no other
   * one, how long connects that would log in with that same credential fail fast with
   * {@link CredentialRejectedError} (`loginAttempted: false`) instead of making another failed login.
   * Connects that arrive while that refresh runs wait for it (it is bounded by
   * `refresh.fetchTimeoutMs`) and use what it brings. The period ends early when another credential
   * is adopted or a connection with this one succeeds; after it, the next connect tries a real login
   * again (and a rejection starts a new period). Idle pooled connections keep serving queries
   * throughout. 0 turns fail-fast off. Runs on `refresh.clock`.
   *
   * @default 1000
   */
  readonly authFailureBackoffMs?: number;
  /**
   * Further `pg.Pool` options (types, keepAlive, allowExitOnIdle, ...).
   *
   * @default - none
   */
  readonly pgOptions?: PassThroughPoolConfig;
  /**
   * How a pending credential is proven before adoption.
   *
   * @default - open a connection with it (same TLS settings as the pool) and run `SELECT 1`
   */
  readonly validate?: CredentialValidator;
  /**
   * Back-off before a pending credential that failed validation is tried again (each failed try is
   * a failed login on the database). Runs on the `refresh.clock`.
   *
   * @default - 1 s, doubling per rejection of the same version, at most 5 minutes (see {@link PendingRetryOptions})
   */
  readonly pendingRetry?: PendingRetryOptions;
}

/** One open connection, for diagnostics (and the tests that compare it with pg_stat_activity). */
export interface PooledConnectionInfo {
  /** Backend process id (pg_stat_activity.pid). */
  readonly processId: number | undefined;
  readonly username: string;
  /** Generation of the credential the connection was opened with. */
  readonly generation: number;
  /** The application_name the connection was opened with (pg_stat_activity.application_name). */
  readonly applicationName: string;
  readonly ageSeconds: number;
  /** Belongs to an inner pool that is draining after a username change. */
  readonly retired: boolean;
}

/** Events of {@link RotatingPgPool}: those of `pg.Pool`, plus rotation events. */
export interface RotatingPgPoolEvents {
  /** A new physical connection was opened. */
  connect: [client: PoolClient];
  acquire: [client: PoolClient];
  release: [err: Error | undefined, client: PoolClient];
  remove: [client: PoolClient];
  /** An idle client failed (as `pg.Pool`: without a listener, this is an uncaught error). */
  error: [err: Error, client: PoolClient];
  /** New connections use `next` from now on. */
  credentialChange: [next: SecretVersion, previous: SecretVersion | undefined];
  /** Reading the secret failed; the adopted credential stays in use. */
  reloadFailure: [error: Error];
  /** A pending credential could not log in yet; the current one stays in use (retried after `info.retryInMs`). */
  pendingRejected: [candidate: SecretVersion, error: Error, info: PendingRejectedInfo];
}

interface ConnectionRecord {
  readonly username: string;
  readonly generation: number;
  readonly applicationName: string;
  readonly openedAt: number;
}

/** What a connection logs in with, fixed when its client is created (see {@link RotatingPgPool.createInner}). */
interface Opening {
  readonly credential: SecretVersion;
  readonly applicationName: string;
}

interface InnerPool {
  readonly pool: Pool;
  readonly key: string;
  readonly target: ConnectionTarget;
  /** Latest credential of this identity; its password is read when a connection opens. */
  credential: SecretVersion;
  retired: boolean;
  ending?: Promise<void>;
  /** Called when the last connection has closed (set while ending). */
  onEmpty?: () => void;
  readonly connections: Map<PoolClient, ConnectionRecord>;
}

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  timer?: NodeJS.Timeout;
}

/** Least time between two secret refreshes caused by rejected credentials. */
export const AUTH_REFRESH_MIN_INTERVAL_MS = 1_000;

/**
 * Default {@link RotatingPgPoolOptions.authFailureBackoffMs}.
 *
 * @example
 * const pool = new RotatingPgPool({ source, authFailureBackoffMs: 5 * DEFAULT_AUTH_FAILURE_BACKOFF_MS });
 */
export const DEFAULT_AUTH_FAILURE_BACKOFF_MS = 1_000;

/** The adopted credential PostgreSQL rejected last, and until when connects with it fail fast. */
interface Rejection {
  readonly credential: SecretVersion;
  readonly target: ConnectionTarget;
  readonly code: string;
  readonly at: number;
  until: number;
}

type QueryCallback<T> = (err: Error | undefined, result: T) => void;

/**
 * A drop-in for `pg.Pool` whose credential follows Secrets Manager (or a rendered file) through
 * rotations: no restart, no failed query, and evidence of which generation it uses.
 *
 * It is a subclass of `pg.Pool`, so `pool instanceof pg.Pool` holds (also in a minified bundle,
 * where the class is renamed) and it type-checks wherever a `pg.Pool` is expected: Kysely's
 * `PostgresDialect`, Drizzle's `drizzle()` (which hands a transaction one checked-out client only
 * when it recognises a pool) and Prisma's `PrismaPg` (which otherwise opens a private pool of its
 * own). Every public member of `pg.Pool` is served by the rotating implementation; the base
 * class only holds the description in `options` and never opens a connection.
 *
 * - `options`: what the pool is sized and configured with (`max`, `idleTimeoutMillis`,
 *   `maxLifetimeSeconds`, `connectionTimeoutMillis`, `pgOptions`) and, once a credential is loaded,
 *   the `host`, `port`, `database` and `user` new connections use. It never holds a password, so
 *   `new pg.Pool(pool.options)` cannot log in.
 * - `error`: emitted, as by `pg.Pool`, when an idle client fails (for example its backend was
 *   terminated, SQLSTATE 57P01); the client is already closed and out of the pool. Without an
 *   `error` listener that is an uncaught exception, exactly as with `pg.Pool`. Connections the pool
 *   closes itself (at `end()`, after a username change, idle timeout, `maxLifetimeSeconds`) emit
 *   nothing, whatever the server says while they close.
 * - `pool.query(submittable)` (a cursor or stream) is refused with {@link ConvergeError}: check out
 *   a client with {@link connect} for those.
 *
 * @example
 * import { RotatingPgPool, SecretsManagerSource } from 'converge/consumer';
 *
 * const pool = new RotatingPgPool({
 *   source: new SecretsManagerSource({ secretId: 'prod/orders-db', includePending: true }),
 *   caBundlePath: '/etc/ssl/rds-global-bundle.pem',
 *   max: 20,
 * });
 * pool.on('error', (err) => log.warn({ err }, 'idle client failed'));
 * await pool.ready(); // fail fast at startup if no credential can be loaded
 * const { rows } = await pool.query('SELECT id FROM orders WHERE customer = $1', [customerId]);
 */
export class RotatingPgPool extends Pool {
  /** The secret cache (exposed for `refreshNow()` and its events). */
  public readonly secret: RefreshingSecret<SecretSnapshot>;
  /** The adoption rule (exposed for its events). */
  public readonly credentials: CredentialAdoption;
  public readonly secretName: string;

  // The members below are accessors over the rotating state, defined on the prototype by the
  // static block at the end of the class (TypeScript does not let an accessor override what
  // @types/pg declares as a property).
  /** Open connections (idle, checked out or connecting), over all inner pools. */
  declare public readonly totalCount: number;
  /** Idle connections, over all inner pools. */
  declare public readonly idleCount: number;
  /** Requests waiting for a client. */
  declare public readonly waitingCount: number;
  /** Connections past `maxLifetimeSeconds`, closed when next released or idle. */
  declare public readonly expiredCount: number;
  /** `end()` was called. */
  declare public readonly ending: boolean;
  /** `end()` has completed: every connection is closed. */
  declare public readonly ended: boolean;

  private readonly connectionOptions: ConnectionOptions;
  private readonly max: number;
  private readonly idleTimeoutMillis: number;
  private readonly maxLifetimeSeconds: number;
  private readonly acquireTimeoutMillis: number;
  private readonly maxAuthRetries: number;
  private readonly authFailureBackoffMs: number;
  private readonly clock: () => number;
  private rejection: Rejection | undefined;
  private readonly pgOptions: PassThroughPoolConfig;
  private consumerName: string | undefined;

  private active: InnerPool | undefined;
  /**
   * The inner pool that validated a credential of a new identity, holding the validation's
   * connection idle: its adoption takes it over, so the first query after a username change needs
   * no new login. Discarded when anything else is adopted.
   */
  private prepared: InnerPool | undefined;
  private readonly retiring = new Set<InnerPool>();
  private permits: number;
  private readonly waiters: Waiter[] = [];
  private starting: Promise<void> | undefined;
  private authRefresh: Promise<void> | undefined;
  private lastAuthRefreshAt = Number.NEGATIVE_INFINITY;
  private endCalled = false;
  private endedAll = false;
  private failureCount = 0;

  public constructor(options: RotatingPgPoolOptions) {
    const max = integer('max', options.max ?? 10, 1);
    const idleTimeoutMillis = integer('idleTimeoutMillis', options.idleTimeoutMillis ?? 10_000, 0);
    const maxLifetimeSeconds = integer('maxLifetimeSeconds', options.maxLifetimeSeconds ?? 0, 0);
    const pgOptions = options.pgOptions ?? {};
    // pg-pool's constructor copies this into `options` (filling in its own defaults) and assigns
    // `ending`/`ended`, which the static block's setters ignore. It opens nothing.
    super({
      ...pgOptions,
      max,
      idleTimeoutMillis,
      maxLifetimeSeconds,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      statement_timeout: options.statementTimeoutMs ?? 10_000,
    });
    // The base's client class would log in with `options`, which has no password: every
    // connection comes from an inner pool instead. Without `Client`, a library that opens a side
    // connection from a pool's `Client` (Kysely's query cancellation) uses a pooled one.
    delete (this as { Client?: unknown }).Client;
    this.max = max;
    this.idleTimeoutMillis = idleTimeoutMillis;
    this.maxLifetimeSeconds = maxLifetimeSeconds;
    this.acquireTimeoutMillis = integer(
      'acquireTimeoutMillis',
      options.acquireTimeoutMillis ?? 0,
      0,
    );
    this.maxAuthRetries = integer('maxAuthRetries', options.maxAuthRetries ?? 1, 0);
    this.authFailureBackoffMs = integer(
      'authFailureBackoffMs',
      options.authFailureBackoffMs ?? DEFAULT_AUTH_FAILURE_BACKOFF_MS,
      0,
    );
    this.clock = options.refresh?.clock ?? (() => performance.now());
    this.permits = this.max;
    this.pgOptions = pgOptions;
    if (options.consumer !== undefined) this.attributeTo(options.consumer);
    this.connectionOptions = {
      caBundlePath: options.caBundlePath,
      connectTimeoutMs: options.connectTimeoutMs,
      statementTimeoutMs: options.statementTimeoutMs,
      applicationName: options.applicationName,
    };
    this.secretName = options.source.secretName;
    this.secret = refreshingSnapshot(options.source, options.refresh);
    this.credentials = new CredentialAdoption({
      secret: this.secret,
      validate: options.validate ?? ((candidate) => this.validate(candidate)),
      pendingRetry: options.pendingRetry,
      clock: options.refresh?.clock,
    });
    this.secret.on('reloadFailure', (error) => {
      this.failureCount++;
      this.fire('reloadFailure', error);
    });
    this.credentials.on('pendingRejected', (candidate, error, info) =>
      this.fire('pendingRejected', candidate, error, info),
    );
    this.credentials.on('adopt', (next, previous) => this.adopt(next, previous));
  }

  /**
   * Subscribes to an event: those of `pg.Pool` (`connect`, `acquire`, `release`, `remove`,
   * `error`) and the rotation events of {@link RotatingPgPoolEvents}, typed.
   *
   * @example
   * pool.on('error', (err, client) => log.warn({ err }, 'idle client failed'));
   * pool.on('credentialChange', (next) => log.info({ generation: next.generation }, 'new credential'));
   */
  public override on<K extends keyof RotatingPgPoolEvents>(
    event: K,
    listener: (...args: RotatingPgPoolEvents[K]) => void,
  ): this;
  public override on(event: string | symbol, listener: (...args: never[]) => void): this;
  public override on(event: string | symbol, listener: (...args: never[]) => void): this {
    return super.on(event as 'error', listener as never);
  }

  /**
   * Subscribes to the next occurrence of an event (typed as {@link on}).
   *
   * @example
   * pool.once('credentialChange', (next) => log.info({ generation: next.generation }, 'first credential'));
   */
  public override once<K extends keyof RotatingPgPoolEvents>(
    event: K,
    listener: (...args: RotatingPgPoolEvents[K]) => void,
  ): this;
  public override once(event: string | symbol, listener: (...args: never[]) => void): this;
  public override once(event: string | symbol, listener: (...args: never[]) => void): this {
    return super.once(event, listener as never);
  }

  /**
   * Removes a listener added with {@link on} or {@link once}.
   *
   * @example
   * pool.off('error', onError);
   */
  public override off<K extends keyof RotatingPgPoolEvents>(
    event: K,
    listener: (...args: RotatingPgPoolEvents[K]) => void,
  ): this;
  public override off(event: string | symbol, listener: (...args: never[]) => void): this;
  public override off(event: string | symbol, listener: (...args: never[]) => void): this {
    return super.off(event, listener as never);
  }

  /**
   * Loads the credential (once). Call it at startup to fail fast; `query` and `connect` call it too.
   *
   * @throws {@link SecretUnavailableError} when no credential can be loaded
   *
   * @example
   * await pool.ready();
   */
  public async ready(): Promise<void> {
    if (this.active) return;
    this.starting ??= this.credentials.ready().then(
      () => {
        this.starting = undefined;
      },
      (err: unknown) => {
        this.starting = undefined;
        throw err;
      },
    );
    await this.starting;
  }

  /**
   * Checks out a client (as `pg.Pool#connect`). Release it with `client.release()`; pass an error
   * to close it instead of returning it to the pool.
   *
   * @example
   * const client = await pool.connect();
   * try {
   *   await client.query('BEGIN');
   *   await client.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [amount, id]);
   *   await client.query('COMMIT');
   * } catch (err) {
   *   await client.query('ROLLBACK');
   *   throw err;
   * } finally {
   *   client.release();
   * }
   */
  public override connect(): Promise<PoolClient>;
  public override connect(
    callback: (
      err: Error | undefined,
      client: PoolClient | undefined,
      done: (release?: Error | boolean) => void,
    ) => void,
  ): void;
  public override connect(
    callback?: (
      err: Error | undefined,
      client: PoolClient | undefined,
      done: (release?: Error | boolean) => void,
    ) => void,
  ): Promise<PoolClient> | void {
    const acquired = this.acquire();
    if (!callback) return acquired;
    acquired.then(
      (client) => callback(undefined, client, (release) => client.release(release)),
      (err: Error) => callback(err, undefined, () => undefined),
    );
  }

  /**
   * Runs one statement on a pooled client (as `pg.Pool#query`). For cursors and streams, check out
   * a client with {@link connect}: a submittable passed here is refused.
   *
   * @throws {@link ConvergeError} (synchronously) for a submittable (cursor, stream)
   *
   * @example
   * const { rows } = await pool.query<{ id: number }>('SELECT id FROM items WHERE note = $1', ['x']);
   */
  public override query<T extends Submittable>(queryStream: T): T;
  public override query<R extends unknown[] = unknown[], I = unknown[]>(
    queryConfig: QueryArrayConfig<I>,
    values?: QueryConfigValues<I>,
  ): Promise<QueryArrayResult<R>>;
  public override query<R extends QueryResultRow = QueryResultRow, I = unknown[]>(
    queryTextOrConfig: string | QueryConfig<I>,
    values?: QueryConfigValues<I>,
  ): Promise<QueryResult<R>>;
  public override query<R extends QueryResultRow = QueryResultRow, I = unknown[]>(
    queryTextOrConfig: string | QueryConfig<I>,
    callback: QueryCallback<QueryResult<R>>,
  ): void;
  public override query<R extends QueryResultRow = QueryResultRow, I = unknown[]>(
    queryText: string,
    values: QueryConfigValues<I>,
    callback: QueryCallback<QueryResult<R>>,
  ): void;
  public override query(text: unknown, values?: unknown, callback?: unknown): unknown {
    if (typeof (text as Partial<Submittable> | null)?.submit === 'function') {
      throw new ConvergeError(
        'pool.query() does not take a submittable (a cursor or stream): check out a client with pool.connect(), ' +
          'run client.query(submittable) on it and release the client when it is done',
      );
    }
    if (typeof values === 'function') {
      callback = values;
      values = undefined;
    }
    const result = this.runQuery(text as string | QueryConfig, values as unknown[] | undefined);
    if (typeof callback !== 'function') return result;
    const cb = callback as QueryCallback<unknown>;
    result.then(
      (r) => cb(undefined, r),
      (err: Error) => cb(err, undefined),
    );
    return undefined;
  }

  /**
   * Ends every inner pool (as `pg.Pool#end`): idle clients close now, checked-out clients when
   * released; waiting requests fail with {@link PoolEndedError}. Also stops the secret's refresh.
   *
   * @example
   * process.on('SIGTERM', () => void pool.end());
   */
  public override end(): Promise<void>;
  public override end(callback: () => void): void;
  public override end(callback?: () => void): Promise<void> | void {
    const ended = this.endAll();
    if (!callback) return ended;
    ended.then(callback, callback);
  }

  /**
   * Fetches the secret now and applies the adoption rule (for example on an operator signal).
   *
   * @example
   * process.on('SIGHUP', () => void pool.refreshNow().catch((err) => log.warn({ err }, 'refresh failed')));
   */
  public async refreshNow(): Promise<SecretVersion> {
    return this.credentials.refreshNow();
  }

  /** The credential new connections use, or undefined before {@link ready}. */
  public get credential(): SecretVersion | undefined {
    return this.credentials.credential;
  }

  /** Generation of the credential new connections use (the `LoadedGeneration` metric). */
  public get loadedGeneration(): number | undefined {
    return this.credentials.credential?.generation;
  }

  /**
   * The consumer name connections are attributed to (the `consumer` option, or the reporter's), or
   * undefined while the pool does not know it.
   */
  public get consumer(): string | undefined {
    return this.consumerName;
  }

  /**
   * Names the consumer that new connections are attributed to in their application_name, unless
   * the pool already has one (the `consumer` option wins). {@link GenerationReporter} calls it with
   * its own `consumer`, so a pool that is reported is attributed without further configuration.
   *
   * @throws {@link ConvergeError} when the name is empty
   *
   * @example
   * pool.attributeTo('orders-api');
   */
  public attributeTo(consumer: string): void {
    if (typeof consumer !== 'string' || consumer.length === 0) {
      throw new ConvergeError(
        `the consumer name must be a non-empty string, got ${JSON.stringify(consumer)}`,
      );
    }
    this.consumerName ??= consumer;
  }

  /**
   * The application_name of a connection logging in with a credential of `generation`:
   * `cv1:<consumer>:<generation>:<host>:<pid>` when the consumer is known, else the
   * `applicationName` option (undefined: pg-connection.ts's default).
   *
   * @example
   * pool.applicationNameFor(pool.loadedGeneration!); // 'cv1:orders-api:7:ip-10-0-1-23:4242'
   */
  public applicationNameFor(generation: number): string | undefined {
    if (this.consumerName === undefined) return this.connectionOptions.applicationName;
    return formatApplicationName({
      consumer: this.consumerName,
      generation,
      host: hostname(),
      pid: process.pid,
    });
  }

  /** Failed reloads of the secret since the pool was created (the `ReloadFailures` metric counts the increase). */
  public get reloadFailureCount(): number {
    return this.failureCount;
  }

  /**
   * Age in seconds of the oldest open connection, retiring ones included (the `PoolAgeSecondsMax`
   * metric); 0 when none is open.
   */
  public poolAgeSecondsMax(): number {
    return this.connections().reduce((max, c) => Math.max(max, c.ageSeconds), 0);
  }

  /** Subscribes to credential changes (the reporter publishes at once). Returns the unsubscribe function. */
  public onGenerationChange(listener: () => void): () => void {
    this.on('credentialChange', listener);
    return () => this.off('credentialChange', listener);
  }

  /**
   * Every open connection of every inner pool.
   *
   * @example
   * const stale = pool.connections().filter((c) => c.generation < pool.loadedGeneration!);
   */
  public connections(): PooledConnectionInfo[] {
    const now = performance.now();
    const out: PooledConnectionInfo[] = [];
    for (const inner of this.pools()) {
      for (const [client, record] of inner.connections) {
        out.push({
          processId: (client as unknown as { processID?: number }).processID,
          username: record.username,
          generation: record.generation,
          applicationName: record.applicationName,
          ageSeconds: (now - record.openedAt) / 1000,
          retired: inner.retired,
        });
      }
    }
    return out;
  }

  /** Inner pools still draining after a username change. */
  public get retiringCount(): number {
    return this.retiring.size;
  }

  private pools(): InnerPool[] {
    return this.active ? [this.active, ...this.retiring] : [...this.retiring];
  }

  private async acquire(): Promise<PoolClient> {
    if (this.endCalled) throw new PoolEndedError();
    // Fast paths without an extra await: the credential is loaded and a permit is free.
    if (!this.active) await this.ready();
    if (this.permits > 0) this.permits--;
    else await this.waitForPermit();
    let client: PoolClient;
    try {
      client = await this.connectInner();
    } catch (err) {
      this.givePermit();
      throw err;
    }
    const innerRelease = client.release;
    let released = false;
    client.release = (err?: Error | boolean) => {
      if (released)
        throw new ConvergeError(
          'Release called on client which has already been released to the pool.',
        );
      released = true;
      try {
        innerRelease.call(client, err);
      } finally {
        this.givePermit();
      }
    };
    return client;
  }

  private async connectInner(): Promise<PoolClient> {
    for (let attempt = 0; ; attempt++) {
      if (this.endCalled) throw new PoolEndedError();
      // The credential was just rejected and a refresh is looking for another: wait for its answer
      // rather than log in with the rejected one (the refresh is bounded by fetchTimeoutMs).
      if (
        this.authRefresh &&
        this.rejection?.credential.versionId === this.active!.credential.versionId
      ) {
        await this.authRefresh;
        if (this.endCalled) throw new PoolEndedError();
      }
      const inner = this.active!;
      const used = inner.credential;
      this.secret.refreshIfStale();
      const fast = this.failFast(inner);
      if (fast) throw fast;
      try {
        return await inner.pool.connect();
      } catch (err) {
        if (this.endCalled) throw new PoolEndedError();
        const typed = classifyConnectError(err, inner.target, used);
        if (!(typed instanceof AuthenticationFailedError)) throw typed;
        this.noteRejection(inner, used, typed);
        if (attempt >= this.maxAuthRetries) throw this.rejected(used, inner.target, typed, '');
        if (!(await this.newerCredentialThan(inner, used))) {
          throw this.rejected(
            used,
            inner.target,
            typed,
            '; a refresh of the secret brought no other credential',
          );
        }
      }
    }
  }

  /** Starts (or restarts) the fail-fast period of a credential PostgreSQL just rejected. */
  private noteRejection(
    inner: InnerPool,
    used: SecretVersion,
    error: AuthenticationFailedError,
  ): void {
    const now = this.clock();
    this.rejection = {
      credential: used,
      target: inner.target,
      code: error.code ?? '28P01',
      at: now,
      until: now + this.authFailureBackoffMs,
    };
  }

  /**
   * The error of a connect that would log in with a credential rejected moments ago, or undefined
   * when it may try: the period is over, another credential is in use, or an idle connection will
   * serve it without a login.
   */
  private failFast(inner: InnerPool): CredentialRejectedError | undefined {
    const r = this.rejection;
    if (
      !r ||
      this.authFailureBackoffMs === 0 ||
      r.credential.versionId !== inner.credential.versionId
    )
      return undefined;
    const now = this.clock();
    if (now >= r.until || inner.pool.idleCount > 0) return undefined;
    const c = r.credential;
    return new CredentialRejectedError(
      this.secretName,
      c.username,
      c.generation,
      false,
      `secret "${this.secretName}": the credential of user "${c.username}" (generation ${c.generation}) was rejected by ` +
        `PostgreSQL at ${r.target.host}:${r.target.port}/${r.target.dbname} (SQLSTATE ${r.code}) ${Math.round(now - r.at)} ms ago; ` +
        `failing fast without a login attempt for up to ${Math.ceil(r.until - now)} ms more (authFailureBackoffMs), ` +
        'until a refresh of the secret brings another credential',
      { code: r.code },
    );
  }

  /** A rejection after a real login attempt, naming the secret (the driver's error is the cause). */
  private rejected(
    c: SecretVersion,
    t: ConnectionTarget,
    error: AuthenticationFailedError,
    detail: string,
  ): CredentialRejectedError {
    return new CredentialRejectedError(
      this.secretName,
      c.username,
      c.generation,
      true,
      `secret "${this.secretName}": PostgreSQL rejected the credential of user "${c.username}" (generation ${c.generation}) ` +
        `at ${t.host}:${t.port}/${t.dbname} (SQLSTATE ${error.code ?? '28P01'})${detail}`,
      { cause: error, code: error.code },
    );
  }

  /**
   * After SQLSTATE 28P01/28000: whether a credential other than `used` is now adopted, refreshing
   * the secret first unless that was done less than {@link AUTH_REFRESH_MIN_INTERVAL_MS} ago. One
   * refresh serves every connect rejected at the same time, and a credential that is wrong in the
   * secret itself cannot turn connect attempts into a stream of Secrets Manager calls.
   */
  private async newerCredentialThan(inner: InnerPool, used: SecretVersion): Promise<boolean> {
    const changed = () =>
      this.active !== inner || this.active.credential.versionId !== used.versionId;
    if (changed()) return true;
    if (
      !this.authRefresh &&
      performance.now() - this.lastAuthRefreshAt < AUTH_REFRESH_MIN_INTERVAL_MS
    )
      return false;
    // A pending version rejected moments ago keeps its back-off: a failing current credential must
    // not turn into a stream of failed logins with the pending one too.
    this.authRefresh ??= this.credentials
      .refreshNow({ retryRejectedPending: false })
      .then(
        () => undefined,
        // Counted and emitted as a reload failure; the retry uses whatever is adopted.
        () => undefined,
      )
      .finally(() => {
        this.lastAuthRefreshAt = performance.now();
        this.authRefresh = undefined;
        // The fail-fast period runs at least authFailureBackoffMs past the refresh's answer.
        if (this.rejection)
          this.rejection.until = Math.max(
            this.rejection.until,
            this.clock() + this.authFailureBackoffMs,
          );
      });
    await this.authRefresh;
    return changed();
  }

  private async runQuery(
    text: string | QueryConfig,
    values: unknown[] | undefined,
  ): Promise<QueryResult> {
    const client = await this.acquire();
    let result: QueryResult;
    try {
      result = await client.query(text, values);
    } catch (err) {
      // An SQL error leaves the connection usable; anything else (timeout, broken socket) closes it.
      client.release(isStatementError(err) ? undefined : (err as Error));
      throw err;
    }
    client.release();
    return result;
  }

  private waitForPermit(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      if (this.acquireTimeoutMillis > 0) {
        waiter.timer = setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(
            new DatabaseConnectionError(
              `timeout exceeded when trying to connect: all ${this.max} clients stayed checked out for ${this.acquireTimeoutMillis} ms`,
              { code: 'ETIMEDOUT' },
            ),
          );
        }, this.acquireTimeoutMillis);
      }
      this.waiters.push(waiter);
    });
  }

  private givePermit(): void {
    const next = this.waiters.shift();
    if (next) {
      if (next.timer) clearTimeout(next.timer);
      next.resolve();
    } else {
      this.permits++;
    }
  }

  private adopt(next: SecretVersion, previous: SecretVersion | undefined): void {
    if (this.endCalled) return;
    // New connections use another credential: nothing to fail fast for.
    if (this.rejection && this.rejection.credential.versionId !== next.versionId)
      this.rejection = undefined;
    const key = identityKey(next);
    const prepared = this.prepared;
    this.prepared = undefined;
    if (this.active?.key === key) {
      this.active.credential = next;
    } else {
      const old = this.active;
      const warm = prepared?.key === key && prepared.credential.versionId === next.versionId;
      this.active = warm ? prepared : this.createInner(next, key);
      if (old) this.retire(old);
    }
    if (prepared && prepared !== this.active) void this.endInner(prepared);
    // `options` describes the pool as pg.Pool's does: where new connections go, as whom (no password).
    Object.assign(this.options, {
      host: next.host,
      port: next.port,
      database: next.dbname,
      user: next.username,
    });
    this.fire('credentialChange', next, previous);
  }

  private createInner(credential: SecretVersion, key: string): InnerPool {
    const target = targetOf(credential);
    const base = pgConfig(
      target,
      { username: credential.username, password: '' },
      this.connectionOptions,
    );
    const inner: InnerPool = {
      key,
      target,
      credential,
      retired: false,
      connections: new Map(),
      pool: undefined as unknown as Pool,
    };
    // pg-pool creates one client per connection it opens: the credential is read then (so a
    // password-only rotation needs no new pool), and the application_name is made from that same
    // credential's generation, so pg_stat_activity names the generation the connection logged in with.
    const openings = new WeakMap<object, Opening>();
    // Clients whose end() was called (pg-pool closing them, or a failure being handled), and those
    // that failed only after it: see the 'error' listener below.
    const closing = new WeakSet<object>();
    const failedWhileClosing = new WeakSet<object>();
    const nameFor = (generation: number) => this.applicationNameFor(generation);
    const Base = (this.pgOptions.Client ?? Client) as unknown as new (
      config: ClientConfig,
    ) => Client;
    class AttributedClient extends Base {
      public constructor(config: ClientConfig) {
        const used = inner.credential;
        const applicationName = nameFor(used.generation) ?? base.application_name ?? '';
        super({ ...config, password: () => used.password, application_name: applicationName });
        openings.set(this, { credential: used, applicationName });
      }

      public override end(): Promise<void>;
      public override end(callback: (err: Error) => void): void;
      public override end(callback?: (err: Error) => void): Promise<void> | void {
        closing.add(this);
        return callback ? super.end(callback) : super.end();
      }

      public override emit(event: string | symbol, ...args: unknown[]): boolean {
        if (event === 'error' && closing.has(this)) failedWhileClosing.add(this);
        return super.emit(event, ...args);
      }
    }
    const pool = new Pool({
      ...this.pgOptions,
      ...base,
      Client: AttributedClient as unknown as new () => Client,
      max: this.max,
      idleTimeoutMillis: this.idleTimeoutMillis,
      maxLifetimeSeconds: this.maxLifetimeSeconds,
    });
    (inner as { pool: Pool }).pool = pool;
    pool.on('connect', (client) => {
      // A login with the rejected credential worked after all (fixed in the database): stop failing fast.
      if (this.rejection?.credential.versionId === inner.credential.versionId)
        this.rejection = undefined;
      const opening = openings.get(client);
      inner.connections.set(client, {
        username: credential.username,
        generation: opening?.credential.generation ?? inner.credential.generation,
        applicationName: opening?.applicationName ?? base.application_name ?? '',
        openedAt: performance.now(),
      });
      this.fire('connect', client);
    });
    pool.on('acquire', (client) => this.fire('acquire', client));
    pool.on('release', (err: Error | undefined, client) => this.fire('release', err, client));
    pool.on('remove', (client) => {
      this.forget(inner, client);
      this.fire('remove', client);
    });
    pool.on('error', (err, client) => {
      this.forget(inner, client);
      // pg-pool reports an idle client's failure after it has already called end() on it (its
      // idle listener removes the client first), so "is it ending" cannot tell the two cases apart;
      // what can is whether end() came before the failure. A failure after it is a connection the
      // pool was closing anyway (end(), retirement, idle timeout, max lifetime): pg-pool keeps its
      // listener on it and its end() resolves before the close completes, so a server shutting down
      // reports "terminating connection" for a connection nobody uses any more. That is no news,
      // and must not crash a process that has ended its pool.
      if (this.endCalled || failedWhileClosing.has(client)) return;
      this.fire('error', err, client);
    });
    return inner;
  }

  /**
   * Drains an inner pool after a username change. `end()` waits one turn of the event loop so
   * that a `connect()` made on it just before the swap is served first (pg-pool hands idle clients
   * out on the next tick, and an ending pg-pool would never serve it).
   */
  private retire(inner: InnerPool): void {
    inner.retired = true;
    this.retiring.add(inner);
    setImmediate(() => {
      void this.endInner(inner).then(() => this.retiring.delete(inner));
    });
  }

  /**
   * Ends an inner pool and waits until its connections have really closed: `pg.Pool#end()`
   * resolves when the last client is handed to `client.end()`, not when it is closed. The wait is
   * bounded, so a socket that never reports its end cannot hold `end()` forever.
   */
  private endInner(inner: InnerPool): Promise<void> {
    inner.ending ??= (async () => {
      await inner.pool.end().catch(() => undefined);
      if (inner.connections.size === 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.connectionOptions.connectTimeoutMs ?? 5_000);
        timer.unref();
        inner.onEmpty = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    })();
    return inner.ending;
  }

  private forget(inner: InnerPool, client: PoolClient): void {
    inner.connections.delete(client);
    if (inner.connections.size === 0) inner.onEmpty?.();
  }

  private async endAll(): Promise<void> {
    if (this.endCalled) throw new PoolEndedError('Called end on pool more than once');
    this.endCalled = true;
    for (const waiter of this.waiters.splice(0)) {
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.reject(new PoolEndedError());
    }
    this.credentials.close();
    this.secret.close();
    const prepared = this.prepared;
    this.prepared = undefined;
    await Promise.all(
      [...this.pools(), ...(prepared ? [prepared] : [])].map((inner) => this.endInner(inner)),
    );
    this.retiring.clear();
    this.endedAll = true;
  }

  /**
   * Logs in with `candidate` and runs `SELECT 1`. For a new identity (the alternate user) the login
   * is the first connection of the inner pool its adoption will use, kept idle for it (see
   * {@link prepared}); a new password for the active identity is tried on a connection of its own.
   */
  private async validate(candidate: SecretVersion): Promise<void> {
    const key = identityKey(candidate);
    if (this.endCalled || this.active?.key === key) {
      const options = {
        ...this.connectionOptions,
        applicationName: this.applicationNameFor(candidate.generation),
      };
      await withClient(targetOf(candidate), candidate, options, (client) =>
        client.query('SELECT 1'),
      );
      return;
    }
    const inner = this.createInner(candidate, key);
    let client: PoolClient | undefined;
    try {
      client = await inner.pool.connect();
      await client.query('SELECT 1');
    } catch (err) {
      client?.release(true);
      void this.endInner(inner);
      throw classifyConnectError(err, inner.target, candidate);
    }
    client.release();
    if (this.endCalled) {
      void this.endInner(inner);
      throw new PoolEndedError();
    }
    const superseded = this.prepared;
    this.prepared = inner;
    if (superseded) void this.endInner(superseded);
  }

  /** `emit`, typed by {@link RotatingPgPoolEvents}. */
  private fire<K extends keyof RotatingPgPoolEvents>(
    event: K,
    ...args: RotatingPgPoolEvents[K]
  ): boolean {
    return this.emit(event, ...args);
  }

  static {
    const ignore = () => undefined;
    const accessor = (
      get: (pool: RotatingPgPool) => number | boolean,
      set?: () => void,
    ): PropertyDescriptor => ({
      get(this: RotatingPgPool) {
        return get(this);
      },
      set,
      configurable: true,
    });
    Object.defineProperties(RotatingPgPool.prototype, {
      totalCount: accessor((p) => p.pools().reduce((n, inner) => n + inner.pool.totalCount, 0)),
      idleCount: accessor((p) => p.pools().reduce((n, inner) => n + inner.pool.idleCount, 0)),
      waitingCount: accessor(
        (p) => p.waiters.length + p.pools().reduce((n, inner) => n + inner.pool.waitingCount, 0),
      ),
      expiredCount: accessor((p) => p.pools().reduce((n, inner) => n + inner.pool.expiredCount, 0)),
      // pg-pool's constructor assigns `ending = false` and `ended = false`: the state is this
      // pool's own, so those writes are ignored (a setter-less accessor would throw in strict mode).
      ending: accessor((p) => p.endCalled, ignore),
      ended: accessor((p) => p.endedAll, ignore),
      // The one method of pg-pool that opens a connection (with the base's `options`, which hold no
      // password). Nothing calls it, since connect() and query() are overridden; a base method
      // reached some other way fails here instead of logging in.
      newClient: {
        value() {
          throw new ConvergeError(
            'RotatingPgPool opens connections only through its inner pools (connect() and query())',
          );
        },
        configurable: true,
        writable: true,
      },
    });
  }
}

function identityKey(c: SecretVersion): string {
  return JSON.stringify([c.username, c.host, c.port, c.dbname, c.ssl]);
}

function isStatementError(err: unknown): boolean {
  return err instanceof DatabaseError && err.severity !== 'FATAL' && err.severity !== 'PANIC';
}

function integer(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new ConvergeError(`${name} must be an integer of at least ${min}, got ${value}`);
  }
  return value;
}
