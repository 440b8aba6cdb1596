/**
 * The refreshing cache between a secret source and everything that needs the credential.
 *
 * - TTL with jitter on a monotonic clock (`performance.now()`): wall-clock jumps neither extend nor
 *   shorten it, and the jitter spreads a fleet's refreshes instead of synchronising them.
 * - Single flight: any number of concurrent callers share one fetch.
 * - Failures keep the last good value and back off exponentially (capped) before the next attempt,
 *   so an outage of the store neither breaks the application nor gets hammered by it.
 * - Optional background refresh (an unref'd timer) so an idle process still notices a rotation.
 * - Every fetch is bounded: one that has not settled after `fetchTimeoutMs` is cancelled (its
 *   `AbortSignal` fires) and counts as a failure like any other, so a store that accepts a
 *   connection and never answers cannot stop the refreshes.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { ConvergeError, SecretFetchTimeoutError, SecretUnavailableError } from '../lambda/shared/errors';
import { sameSnapshot, type SecretSnapshot, type SecretSource } from './secret-source';

/**
 * Default {@link RefreshOptions.fetchTimeoutMs}.
 *
 * @example
 * const pool = new RotatingPgPool({ source, refresh: { fetchTimeoutMs: 2 * DEFAULT_FETCH_TIMEOUT_MS } });
 */
export const DEFAULT_FETCH_TIMEOUT_MS = 5_000;

/** Timing of a {@link RefreshingSecret}. */
export interface RefreshOptions {
  /**
   * How long a loaded value is used before it is fetched again. Keep it well below the time a
   * rotation waits for consumers (the promotion gate's wait) so live consumers adopt in time.
   *
   * @default 60000
   */
  readonly ttlMs?: number;
  /**
   * Fraction of the TTL (and of each backoff delay) removed at random, so processes started together
   * do not refresh together: the effective TTL lies in `[ttlMs * (1 - jitter), ttlMs]`.
   *
   * @default 0.1
   */
  readonly jitter?: number;
  /**
   * First delay after a failed fetch; each further consecutive failure doubles it.
   *
   * @default 1000
   */
  readonly backoffBaseMs?: number;
  /**
   * Longest delay between two attempts while the store keeps failing.
   *
   * @default 300000
   */
  readonly backoffMaxMs?: number;
  /**
   * Longest time one fetch may take. A fetch still running then is cancelled (the `AbortSignal`
   * passed to the source fires, which aborts the Secrets Manager request or the file read) and
   * counts as a failed fetch: `reloadFailure` with a {@link SecretFetchTimeoutError}, a backoff delay,
   * and the last good value kept. The next refresh starts a new fetch. The timer runs on real time,
   * not on `clock`.
   *
   * @default 5000
   */
  readonly fetchTimeoutMs?: number;
  /**
   * Monotonic clock in milliseconds (tests inject one they advance by hand).
   *
   * @default - `performance.now()`
   */
  readonly clock?: () => number;
  /**
   * Random numbers in [0, 1) for the jitter.
   *
   * @default Math.random
   */
  readonly random?: () => number;
  /**
   * Refresh on a timer when the TTL (or a backoff delay) ends, without waiting for a caller. The
   * timer is unref'd: it never keeps the process alive.
   *
   * @default true
   */
  readonly refreshInBackground?: boolean;
}

/** Options of {@link RefreshingSecret}. */
export interface RefreshingSecretOptions<T> extends RefreshOptions {
  /**
   * Loads the value; receives the last good value (undefined on the first load) and a signal that
   * fires when the fetch is abandoned (after `fetchTimeoutMs`, or on {@link RefreshingSecret.close}):
   * pass it on to the I/O so the abandoned request is cancelled.
   */
  readonly fetch: (previous: T | undefined, signal: AbortSignal) => Promise<T>;
  /**
   * Whether two values are the same (then no `change` is reported).
   *
   * @default - `===`
   */
  readonly isSame?: (a: T, b: T) => boolean;
  /**
   * Subscribes to change notifications (a file watcher) once the first value is loaded; each
   * notification triggers a fetch, even during a backoff delay. Returns the unsubscribe function, called by {@link RefreshingSecret.close}.
   *
   * @default - no notifications, the TTL alone drives refreshes
   */
  readonly subscribe?: (notify: () => void) => () => void;
  /**
   * What the value is, for error messages.
   *
   * @default 'secret'
   */
  readonly label?: string;
}

/** Details of a successful fetch. */
export interface ReloadInfo<T> {
  /** The value differs from the previous one (always true on the first load). */
  readonly changed: boolean;
  readonly previous?: T;
}

/** Details of a failed fetch. */
export interface ReloadFailureInfo {
  /** Failures in a row, this one included. */
  readonly consecutiveFailures: number;
  /** Delay before the next attempt that is not forced. */
  readonly retryInMs: number;
  /** A last good value exists and is still being served. */
  readonly servingLastGood: boolean;
}

/** Events of {@link RefreshingSecret}. */
export interface RefreshingSecretEvents<T> {
  /** A fetch succeeded (whether or not the value changed). */
  reload: [value: T, info: ReloadInfo<T>];
  /** A fetch failed; the last good value, if any, is kept. */
  reloadFailure: [error: Error, info: ReloadFailureInfo];
}

type Outcome = { readonly ok: true } | { readonly ok: false; readonly error: Error };

/**
 * A value loaded by `fetch`, cached for a TTL, refreshed by one fetch at a time, and kept through
 * failures of the store.
 *
 * @example
 * const secret = new RefreshingSecret({ fetch: (_prev, signal) => source.fetch(undefined, { signal }), ttlMs: 30_000, fetchTimeoutMs: 3_000 });
 * secret.on('reloadFailure', (err) => log.warn({ err }, 'secret refresh failed, serving cached value'));
 * const snapshot = await secret.get(); // cached after the first call; one fetch under any concurrency
 */
export class RefreshingSecret<T> extends EventEmitter<RefreshingSecretEvents<T>> {
  private readonly fetcher: (previous: T | undefined, signal: AbortSignal) => Promise<T>;
  private readonly isSame: (a: T, b: T) => boolean;
  private readonly ttlMs: number;
  private readonly jitter: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly fetchTimeoutMs: number;
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly background: boolean;
  private readonly label: string;
  private readonly subscribe?: (notify: () => void) => () => void;
  private unsubscribe: (() => void) | undefined;

  private value: T | undefined;
  private expiresAt = Number.NEGATIVE_INFINITY;
  private retryAt = Number.NEGATIVE_INFINITY;
  private failures = 0;
  private lastError: Error | undefined;
  private inFlight: Promise<Outcome> | undefined;
  /** Cancels the fetch in flight (its timeout, or close()). */
  private inFlightAbort: AbortController | undefined;
  /** A notification arrived while a fetch was in flight: fetch again when it ends. */
  private notifiedDuringFetch = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private fetchCount = 0;

  public constructor(options: RefreshingSecretOptions<T>) {
    super();
    this.fetcher = options.fetch;
    this.isSame = options.isSame ?? ((a, b) => a === b);
    this.ttlMs = positive('ttlMs', options.ttlMs ?? 60_000);
    this.jitter = options.jitter ?? 0.1;
    if (!(this.jitter >= 0 && this.jitter < 1)) {
      throw new ConvergeError(`jitter must be at least 0 and below 1, got ${options.jitter}`);
    }
    this.backoffBaseMs = positive('backoffBaseMs', options.backoffBaseMs ?? 1_000);
    this.backoffMaxMs = positive('backoffMaxMs', options.backoffMaxMs ?? 300_000);
    if (this.backoffMaxMs < this.backoffBaseMs) {
      throw new ConvergeError(
        `backoffMaxMs must not be smaller than backoffBaseMs, got ${this.backoffMaxMs} < ${this.backoffBaseMs}`,
      );
    }
    this.fetchTimeoutMs = positive('fetchTimeoutMs', options.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS);
    this.clock = options.clock ?? (() => performance.now());
    this.random = options.random ?? Math.random;
    this.background = options.refreshInBackground ?? true;
    this.label = options.label ?? 'secret';
    this.subscribe = options.subscribe;
  }

  /**
   * The value: cached while fresh; after the TTL, the result of one shared fetch (or the last good
   * value if that fetch fails or the store is in a backoff delay).
   *
   * @throws {@link SecretUnavailableError} only when no value was ever loaded
   *
   * @example
   * const { current } = await secret.get();
   */
  public async get(): Promise<T> {
    if (this.value !== undefined && !this.isStale()) return this.value;
    if (this.value === undefined && this.clock() < this.retryAt) throw this.unavailable();
    await this.refreshOnce();
    if (this.value === undefined) throw this.unavailable();
    return this.value;
  }

  /**
   * The last good value without any I/O, or undefined before the first successful load.
   *
   * @example
   * const snapshot = secret.peek();
   */
  public peek(): T | undefined {
    return this.value;
  }

  /**
   * Fetches now, ignoring the TTL and any backoff delay (joins a fetch already in flight).
   *
   * @returns the value after the fetch
   * @throws the fetch's error when it fails (the last good value is still kept and served)
   *
   * @example
   * // After PostgreSQL rejected the cached password:
   * await secret.refreshNow();
   */
  public async refreshNow(): Promise<T> {
    const outcome = await this.refreshOnce();
    if (!outcome.ok) throw outcome.error;
    return this.value as T;
  }

  /**
   * Starts a fetch in the background when the value is past its TTL (and no backoff delay is
   * running); never waits and never throws. Cheap enough to call on every database connect.
   *
   * @example
   * secret.refreshIfStale();
   */
  public refreshIfStale(): void {
    if (this.closed || this.inFlight || !this.isStale()) return;
    void this.refreshOnce();
  }

  /** Number of fetches started so far (for diagnostics and benchmarks). */
  public get fetches(): number {
    return this.fetchCount;
  }

  /** Consecutive failed fetches (0 after a success). */
  public get consecutiveFailures(): number {
    return this.failures;
  }

  /**
   * Stops the background timer and change notifications, and cancels a fetch in flight. The cached
   * value stays readable.
   *
   * @example
   * process.on('SIGTERM', () => secret.close());
   */
  public close(): void {
    this.closed = true;
    this.inFlightAbort?.abort(new ConvergeError(`${this.label}: refreshing stopped (close)`));
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  private isStale(): boolean {
    const now = this.clock();
    return now >= this.expiresAt && now >= this.retryAt;
  }

  private unavailable(): SecretUnavailableError {
    return new SecretUnavailableError(`${this.label}: no value could be loaded yet`, { cause: this.lastError });
  }

  private onNotify(): void {
    if (this.closed) return;
    if (this.inFlight) {
      this.notifiedDuringFetch = true;
      return;
    }
    void this.refreshOnce();
  }

  private refreshOnce(): Promise<Outcome> {
    if (!this.inFlight) {
      this.inFlight = this.fetchAndStore().finally(() => {
        this.inFlight = undefined;
        if (this.notifiedDuringFetch && !this.closed) {
          this.notifiedDuringFetch = false;
          void this.refreshOnce();
        }
      });
    }
    return this.inFlight;
  }

  private async fetchAndStore(): Promise<Outcome> {
    this.fetchCount++;
    const previous = this.value;
    const abort = new AbortController();
    this.inFlightAbort = abort;
    let next: T;
    try {
      next = await this.bounded(previous, abort);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      // Cancelled by close(): nobody is waiting for news any more.
      if (this.closed && abort.signal.aborted) return { ok: false, error };
      this.failures++;
      const delay = this.spread(Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** (this.failures - 1)));
      this.retryAt = this.clock() + delay;
      this.lastError = error;
      this.schedule(delay);
      this.notify('reloadFailure', error, {
        consecutiveFailures: this.failures,
        retryInMs: delay,
        servingLastGood: previous !== undefined,
      });
      return { ok: false, error };
    }
    const changed = previous === undefined || !this.isSame(previous, next);
    if (changed) this.value = next;
    this.failures = 0;
    this.lastError = undefined;
    this.retryAt = Number.NEGATIVE_INFINITY;
    const ttl = this.spread(this.ttlMs);
    this.expiresAt = this.clock() + ttl;
    this.schedule(ttl);
    // Watch only once a value is loaded: read at startup first, then watch.
    if (this.subscribe && !this.unsubscribe && !this.closed) this.unsubscribe = this.subscribe(() => this.onNotify());
    this.notify('reload', this.value as T, { changed, previous });
    return { ok: true };
  }

  /**
   * Runs the fetcher, but gives up after `fetchTimeoutMs`: the signal is aborted (cancelling the
   * request) and the fetch fails with {@link SecretFetchTimeoutError}. Whatever the abandoned fetch
   * settles with later is ignored.
   */
  private async bounded(previous: T | undefined, abort: AbortController): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new SecretFetchTimeoutError(
          this.fetchTimeoutMs,
          `${this.label}: the fetch did not finish within ${this.fetchTimeoutMs} ms (fetchTimeoutMs); it was cancelled and counts as a failed refresh`,
        );
        abort.abort(error);
        reject(error);
      }, this.fetchTimeoutMs);
      // The fetch's own I/O keeps the process alive while it matters; this timer never does.
      timer.unref();
    });
    const aborted = new Promise<never>((_, reject) => {
      abort.signal.addEventListener('abort', () => reject(abort.signal.reason as Error), { once: true });
    });
    const attempt = (async () => this.fetcher(previous, abort.signal))();
    // An abandoned fetch may still reject later: that is not an unhandled rejection.
    attempt.catch(() => undefined);
    try {
      return await Promise.race([attempt, timedOut, aborted]);
    } finally {
      clearTimeout(timer);
      if (this.inFlightAbort === abort) this.inFlightAbort = undefined;
    }
  }

  /** Removes up to `jitter` of a delay at random. */
  private spread(ms: number): number {
    return ms * (1 - this.jitter * this.random());
  }

  private schedule(delayMs: number): void {
    if (!this.background || this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.closed) void this.refreshOnce();
    }, Math.max(0, Math.ceil(delayMs)));
    this.timer.unref();
  }

  /**
   * Emits without letting a throwing listener turn a finished fetch into a failed one: the
   * listener's error is rethrown on its own tick, like any uncaught error in an event handler.
   */
  private notify<K extends keyof RefreshingSecretEvents<T>>(event: K, ...args: RefreshingSecretEvents<T>[K]): void {
    try {
      (this.emit as (e: K, ...a: RefreshingSecretEvents<T>[K]) => boolean)(event, ...args);
    } catch (listenerError) {
      process.nextTick(() => {
        throw listenerError;
      });
    }
  }
}

/**
 * A {@link RefreshingSecret} of a source's snapshots: passes the previous snapshot to the source,
 * compares snapshots by version ids, and wires the source's change notifications (file watcher).
 *
 * @example
 * const secret = refreshingSnapshot(new SecretsManagerSource({ secretId: 'app-db' }), { ttlMs: 30_000, fetchTimeoutMs: 5_000 });
 * const { current } = await secret.get();
 */
export function refreshingSnapshot(source: SecretSource, options: RefreshOptions = {}): RefreshingSecret<SecretSnapshot> {
  return new RefreshingSecret<SecretSnapshot>({
    ...options,
    fetch: (previous, signal) => source.fetch(previous, { signal }),
    isSame: sameSnapshot,
    subscribe: source.watch ? (notify) => source.watch!(notify) : undefined,
    label: `secret "${source.secretName}"`,
  });
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new ConvergeError(`${name} must be a positive number of milliseconds, got ${value}`);
  }
  return value;
}
