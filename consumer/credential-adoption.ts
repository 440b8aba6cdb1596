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
 *
 * What is adopted is what the reporter publishes as `LoadedGeneration`: a generation is reported
 * only once it has been proven to work here.
 */
import { EventEmitter } from 'node:events';
import type { RefreshingSecret } from './refreshing-secret';
import type { SecretSnapshot, SecretVersion } from './secret-source';

/** Proves that a credential can log in; throws when it cannot. */
export type CredentialValidator = (candidate: SecretVersion) => Promise<void>;

/** Options of {@link CredentialAdoption}. */
export interface CredentialAdoptionOptions {
  /** The refreshing snapshots (see {@link refreshingSnapshot}). */
  readonly secret: RefreshingSecret<SecretSnapshot>;
  /** Opens a connection with a pending credential (the pool passes one using its own TLS settings). */
  readonly validate: CredentialValidator;
}

/** Events of {@link CredentialAdoption}. */
export interface CredentialAdoptionEvents {
  /** New connections use `next` from now on. */
  adopt: [next: SecretVersion, previous: SecretVersion | undefined];
  /** A pending credential failed validation; the previous choice stands. Normal before setSecret. */
  pendingRejected: [candidate: SecretVersion, error: Error];
}

/**
 * Applies the adoption rule to every snapshot the refreshing secret loads.
 *
 * @example
 * const secret = refreshingSnapshot(new SecretsManagerSource({ secretId: 'app-db', includePending: true }));
 * const adoption = new CredentialAdoption({ secret, validate: (c) => tryLogin(c) });
 * const credential = await adoption.ready();
 * adoption.on('adopt', (next) => console.log(`now using generation ${next.generation}`));
 */
export class CredentialAdoption extends EventEmitter<CredentialAdoptionEvents> {
  private readonly secret: RefreshingSecret<SecretSnapshot>;
  private readonly validate: CredentialValidator;
  private adopted: SecretVersion | undefined;
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
   * Fetches the secret now (ignoring the TTL) and re-applies the rule.
   *
   * @throws the source's error when the fetch fails (the adopted credential is unchanged)
   *
   * @example
   * await adoption.refreshNow(); // e.g. after SQLSTATE 28P01
   */
  public async refreshNow(): Promise<SecretVersion> {
    const snapshot = await this.secret.refreshNow();
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
    let next = current;
    if (pending) {
      if (previous?.versionId === pending.versionId) {
        next = pending;
      } else {
        try {
          await this.validate(pending);
          next = pending;
        } catch (err) {
          this.notify('pendingRejected', pending, err instanceof Error ? err : new Error(String(err)));
        }
      }
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
