/**
 * The adoption rule: which credential this process uses for new connections.
 *
 * - No rotation in progress: the AWSCURRENT credential.
 * - A pending credential (live consumers only, see `includePending`) is adopted only after this
 *   process has itself opened a connection with it. Before setSecret the pending user cannot log
 *   in yet; a network path, a pg_hba rule or a missing grant may differ per process. Until the
 *   validation succeeds, and whenever it fails, the current credential is kept.
 * - A credential that is neither current nor pending any more (the rotation was aborted, or this
 *   process missed a whole rotation) is dropped for AWSCURRENT.
 * - A pending version that failed validation is not validated again on every refresh: each login
 *   attempt that fails is a failed login on the database (GuardDuty's RDS login-anomaly findings
 *   watch for streams of them), and a rotation can be held for hours before setSecret (the
 *   revocation guard waits for scheduled consumers). The same version is retried after a back-off
 *   that doubles per rejection ({@link PendingRetryOptions}); a new pending version is validated at
 *   once, and an explicit {@link CredentialAdoption.refreshNow} retries at once.
 *
 * What is adopted is what the reporter publishes as `LoadedGeneration`: a generation is reported
 * only once it has been proven to work here.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { ConvergeError } from '../lambda/shared/errors';
import type { RefreshingSecret } from './refreshing-secret';
import type { SecretSnapshot, SecretVersion } from './secret-source';

/** Proves that a credential can log in; throws when it cannot. */
export type CredentialValidator = (candidate: SecretVersion) => Promise<void>;

/**
 * How soon a rejected pending version is validated again. After its n-th consecutive rejection the
 * same version is not validated before `min(maxMs, baseMs * 2^(n-1))` has passed; refreshes in
 * between keep the current credential without a login attempt. The delay resets when the pending
 * version changes (a new rotation) or is adopted.
 *
 * The defaults keep a normal rotation as fast as before (setSecret follows createSecret within
 * seconds, so the first retries come 1, 2 and 4 s after the first rejection, or at the next refresh
 * when the TTL is longer) and bound the stream while a rotation is held before setSecret: at most
 * one failed login per process every 5 minutes once the delay reaches its cap, about 12 an hour
 * instead of one per refresh (60 an hour at the default 60 s TTL, 3600 at a 1 s TTL). The price is
 * that a process adopts the pending credential up to `maxMs` after a long hold ends, which the
 * promotion gate waits for.
 */
export interface PendingRetryOptions {
  /**
   * Delay after the first rejection of a pending version, milliseconds.
   *
   * @default 1000
   */
  readonly baseMs?: number;
  /**
   * Longest delay between two validations of the same pending version, milliseconds.
   *
   * @default 300000
   */
  readonly maxMs?: number;
}

/** Default {@link PendingRetryOptions.baseMs}. */
export const PENDING_RETRY_BASE_MS = 1_000;
/** Default {@link PendingRetryOptions.maxMs}. */
export const PENDING_RETRY_MAX_MS = 300_000;

/** Options of {@link CredentialAdoption}. */
export interface CredentialAdoptionOptions {
  /** The refreshing snapshots (see {@link refreshingSnapshot}). */
  readonly secret: RefreshingSecret<SecretSnapshot>;
  /** Opens a connection with a pending credential (the pool passes one using its own TLS settings). */
  readonly validate: CredentialValidator;
  /**
   * Back-off before a rejected pending version is validated again.
   *
   * @default - see {@link PendingRetryOptions}: 1 s doubling to 5 minutes
   */
  readonly pendingRetry?: PendingRetryOptions;
  /**
   * Monotonic clock in milliseconds for the back-off (tests inject one they advance by hand).
   *
   * @default - `performance.now()`
   */
  readonly clock?: () => number;
}

/** Details of a rejected pending version. */
export interface PendingRejectedInfo {
  /** Rejections of this pending version in a row, this one included. */
  readonly consecutiveRejections: number;
  /** How long refreshes keep the current credential before this version is validated again. */
  readonly retryInMs: number;
}

/** Events of {@link CredentialAdoption}. */
export interface CredentialAdoptionEvents {
  /** New connections use `next` from now on. */
  adopt: [next: SecretVersion, previous: SecretVersion | undefined];
  /** A pending credential failed validation; the previous choice stands. Normal before setSecret. */
  pendingRejected: [candidate: SecretVersion, error: Error, info: PendingRejectedInfo];
}

/**
 * Applies the adoption rule to every snapshot the refreshing secret loads.
 *
 * @example
 * const secret = refreshingSnapshot(new SecretsManagerSource({ secretId: 'app-db', includePending: true }));
 * const adoption = new CredentialAdoption({ secret, validate: (c) => tryLogin(c), pendingRetry: { baseMs: 2_000, maxMs: 600_000 } });
 * const credential = await adoption.ready();
 * adoption.on('adopt', (next) => console.log(`now using generation ${next.generation}`));
 */
export class CredentialAdoption extends EventEmitter<CredentialAdoptionEvents> {
  private readonly secret: RefreshingSecret<SecretSnapshot>;
  private readonly validate: CredentialValidator;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly clock: () => number;
  private adopted: SecretVersion | undefined;
  /** The pending version last rejected, and when it may be validated again. */
  private rejection: { readonly versionId: string; readonly count: number; readonly retryAt: number } | undefined;
  /** The next evaluation validates a rejected pending version without waiting (set by refreshNow). */
  private retryRejectedNow = false;
  /** Newest snapshot not evaluated yet. */
  private queued: SecretSnapshot | undefined;
  private evaluating: SecretSnapshot | undefined;
  private running: Promise<void> | undefined;
  private readonly onReload = (snapshot: SecretSnapshot) => {
    void this.offer(snapshot);
  };

  public constructor(options: CredentialAdoptionOptions) {
    super();
    this.secret = options.secret;
    this.validate = options.validate;
    this.retryBaseMs = positive('pendingRetry.baseMs', options.pendingRetry?.baseMs ?? PENDING_RETRY_BASE_MS);
    this.retryMaxMs = positive('pendingRetry.maxMs', options.pendingRetry?.maxMs ?? PENDING_RETRY_MAX_MS);
    if (this.retryMaxMs < this.retryBaseMs) {
      throw new ConvergeError(`pendingRetry.maxMs must not be smaller than pendingRetry.baseMs, got ${this.retryMaxMs} < ${this.retryBaseMs}`);
    }
    this.clock = options.clock ?? (() => performance.now());
    this.secret.on('reload', this.onReload);
  }

  /** The adopted credential (what new connections use), or undefined before {@link ready}. */
  public get credential(): SecretVersion | undefined {
    return this.adopted;
  }

  /**
   * Loads the secret if needed and returns the adopted credential.
   *
   * @throws {@link SecretUnavailableError} when no credential could ever be loaded
   *
   * @example
   * const { username, generation } = await adoption.ready();
   */
  public async ready(): Promise<SecretVersion> {
    if (this.adopted) return this.adopted;
    const snapshot = await this.secret.get();
    // Evaluating a snapshot always adopts something when nothing is adopted yet.
    if (!this.adopted) await this.offer(snapshot);
    return this.adopted!;
  }

  /**
   * Fetches the secret now (ignoring the TTL) and re-applies the rule. Like the secret's own
   * `refreshNow`, an explicit call ignores the back-off: a rejected pending version is validated
   * again at once, unless `retryRejectedPending` is false.
   *
   * @throws the source's error when the fetch fails (the adopted credential is unchanged)
   *
   * @example
   * await adoption.refreshNow(); // e.g. on SIGHUP
   * await adoption.refreshNow({ retryRejectedPending: false }); // e.g. after SQLSTATE 28P01 on the current credential
   */
  public async refreshNow(options: { readonly retryRejectedPending?: boolean } = {}): Promise<SecretVersion> {
    if (options.retryRejectedPending ?? true) this.retryRejectedNow = true;
    let snapshot: SecretSnapshot;
    try {
      snapshot = await this.secret.refreshNow();
    } catch (err) {
      this.retryRejectedNow = false;
      throw err;
    }
    // The fetch's `reload` event has already queued the snapshot: wait for its evaluation.
    await (this.running ?? (this.adopted ? undefined : this.offer(snapshot)));
    return this.adopted!;
  }

  /**
   * Stops following the refreshing secret (which stays open: its owner closes it).
   *
   * @example
   * adoption.close();
   */
  public close(): void {
    this.secret.off('reload', this.onReload);
  }

  /** Queues a snapshot for evaluation; resolves when every queued snapshot has been evaluated. */
  private offer(snapshot: SecretSnapshot): Promise<void> {
    if (snapshot !== this.evaluating) this.queued = snapshot;
    this.running ??= this.drain();
    return this.running;
  }

  private async drain(): Promise<void> {
    try {
      while (this.queued) {
        const snapshot = this.queued;
        this.queued = undefined;
        this.evaluating = snapshot;
        await this.evaluate(snapshot);
        this.evaluating = undefined;
      }
    } finally {
      this.evaluating = undefined;
      this.running = undefined;
    }
  }

  private async evaluate({ current, pending }: SecretSnapshot): Promise<void> {
    const previous = this.adopted;
    const retryNow = this.retryRejectedNow;
    this.retryRejectedNow = false;
    // The back-off belongs to one pending version: a new one (or none) starts afresh.
    if (this.rejection && this.rejection.versionId !== pending?.versionId) this.rejection = undefined;
    let next = current;
    if (pending) {
      if (previous?.versionId === pending.versionId) {
        next = pending;
      } else if (retryNow || !this.rejection || this.clock() >= this.rejection.retryAt) {
        try {
          await this.validate(pending);
          next = pending;
          this.rejection = undefined;
        } catch (err) {
          const count = (this.rejection?.count ?? 0) + 1;
          const retryInMs = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** (count - 1));
          this.rejection = { versionId: pending.versionId, count, retryAt: this.clock() + retryInMs };
          this.notify('pendingRejected', pending, err instanceof Error ? err : new Error(String(err)), {
            consecutiveRejections: count,
            retryInMs,
          });
        }
      }
      // Otherwise: rejected recently; the current credential stands without a login attempt.
    }
    if (next.versionId !== previous?.versionId) {
      this.adopted = next;
      this.notify('adopt', next, previous);
    }
  }

  /** A throwing listener must not stall the evaluation queue: its error surfaces on its own tick. */
  private notify<K extends keyof CredentialAdoptionEvents>(event: K, ...args: CredentialAdoptionEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: CredentialAdoptionEvents[K]) => boolean)(event, ...args);
    } catch (listenerError) {
      process.nextTick(() => {
        throw listenerError;
      });
    }
  }
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new ConvergeError(`${name} must be a positive number of milliseconds, got ${value}`);
  }
  return value;
}
