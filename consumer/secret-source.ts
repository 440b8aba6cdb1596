/**
 * What every secret source yields: the credential that is AWSCURRENT and, while a rotation is in
 * progress and the consumer asked for it, the AWSPENDING one.
 */
import type { DbSecret } from '../lambda/shared/secret';

/**
 * One version of the database secret, parsed. `versionId` identifies the value: Secrets Manager's
 * VersionId, or a content hash for a file.
 */
export interface SecretVersion extends DbSecret {
  readonly versionId: string;
}

/**
 * What a source knows at one moment.
 *
 * `pending` is set only when the source was asked for it (live consumers) and a rotation is in
 * progress: a version labelled AWSPENDING that does not also carry AWSCURRENT and already has a value.
 */
export interface SecretSnapshot {
  readonly current: SecretVersion;
  readonly pending?: SecretVersion;
}

/**
 * Options of one {@link SecretSource.fetch}.
 *
 * @example
 * const snapshot = await source.fetch(undefined, { signal: AbortSignal.timeout(5_000) });
 */
export interface SecretFetchOptions {
  /**
   * Fires when the caller abandons the fetch (the refreshing cache's `fetchTimeoutMs`, or its
   * close): the source cancels its I/O and rejects.
   */
  readonly signal?: AbortSignal;
}

/**
 * Where credentials come from. Implementations: {@link SecretsManagerSource}, {@link FileSource}.
 *
 * @example
 * class StaticSource implements SecretSource {
 *   public readonly secretName = 'app-db';
 *   public async fetch() { return { current: { ...parseSecret(json), versionId: 'v1' } }; }
 * }
 */
export interface SecretSource {
  /** The secret's name: the `SecretName` dimension of the consumer's metrics. */
  readonly secretName: string;
  /**
   * Reads the secret. `previous` is the last snapshot this source returned successfully, so a
   * source can skip reading versions it already holds (values of a version never change).
   *
   * `options.signal` cancels the read (the refreshing cache aborts a fetch that outlives its
   * `fetchTimeoutMs`); a source passes it on to its I/O.
   *
   * @throws a typed error when nothing usable could be read; callers keep their last good value
   */
  fetch(previous?: SecretSnapshot, options?: SecretFetchOptions): Promise<SecretSnapshot>;
  /**
   * Optional change notification (a file watcher). Calls `onChange` when the secret may have
   * changed; returns a function that stops watching.
   */
  watch?(onChange: () => void): () => void;
}

/**
 * Whether two snapshots name the same versions (values of a version are immutable, so equal ids
 * mean equal credentials).
 *
 * @example
 * if (!sameSnapshot(before, after)) console.log('rotation observed');
 */
export function sameSnapshot(a: SecretSnapshot | undefined, b: SecretSnapshot | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return a.current.versionId === b.current.versionId && a.pending?.versionId === b.pending?.versionId;
}
