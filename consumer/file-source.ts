/**
 * A {@link SecretSource} backed by a file that a sidecar agent or the Secrets Store CSI driver
 * renders and keeps current.
 *
 * The file is read at startup (a missing or invalid file then fails loudly: never run without a
 * credential), then watched. A half-written, unparsable or missing file makes that read fail; the
 * refreshing cache keeps the last good value and counts a reload failure, and the next change
 * event (or the TTL) reads it again. The watcher observes the directory, not the file, so atomic
 * replacement by rename and Kubernetes' `..data` symlink swap are seen as well as in-place writes;
 * a directory that is itself deleted and recreated, renamed, or replaced behind a symlink is
 * watched again (see {@link FileSource.watch}).
 */
import { createHash } from 'node:crypto';
import { statSync, watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { ConvergeError, SecretUnavailableError, redactedCause } from '../lambda/shared/errors';
import { parseSecret } from '../lambda/shared/secret';
import type { SecretFetchOptions, SecretSnapshot, SecretSource, SecretVersion } from './secret-source';

/** Options of {@link FileSource}. */
export interface FileSourceOptions {
  /** Path of the rendered secret (the AWSCURRENT JSON). */
  readonly path: string;
  /**
   * The `SecretName` metric dimension: the name of the Secrets Manager secret the file is rendered
   * from (the gates look consumers up by it, so it cannot be guessed from a file name).
   */
  readonly secretName: string;
  /**
   * Path of a rendered AWSPENDING version (for example a second CSI object with
   * `objectVersionLabel: AWSPENDING`), for live consumers. A missing or empty file, or one equal to
   * the current file, means no rotation is in progress.
   *
   * @default - no pending credential is read
   */
  readonly pendingPath?: string;
  /**
   * Watch the files' directories and re-read on change.
   *
   * @default true
   */
  readonly watch?: boolean;
  /**
   * Quiet time after a change event before the file is read, so a burst of events causes one read.
   *
   * @default 25
   */
  readonly debounceMs?: number;
  /**
   * How often each watched directory is checked for having been replaced (deleted and recreated,
   * renamed, or its inode changed behind a symlink), which re-creates its watcher; also how soon a
   * directory that is missing is watched once it exists again. A replacement the watcher reports
   * (the directory deleted or moved) is handled at once.
   *
   * @default 1000
   */
  readonly rewatchDelayMs?: number;
}

/**
 * Reads the database secret from a file rendered by an agent; version ids are content hashes.
 *
 * @example
 * const source = new FileSource({ path: '/mnt/secrets/db.json', secretName: 'prod/orders-db' });
 * const pool = new RotatingPgPool({ source, caBundlePath: '/etc/ssl/rds-ca.pem' });
 */
export class FileSource implements SecretSource {
  public readonly secretName: string;
  private readonly path: string;
  private readonly pendingPath?: string;
  private readonly watchEnabled: boolean;
  private readonly debounceMs: number;
  private readonly rewatchDelayMs: number;

  public constructor(options: FileSourceOptions) {
    if (!options.path) throw new ConvergeError(`FileSource needs a path, got ${JSON.stringify(options.path)}`);
    if (!options.secretName) {
      throw new ConvergeError(`FileSource needs the secretName metric dimension, got ${JSON.stringify(options.secretName)}`);
    }
    this.path = resolve(options.path);
    this.pendingPath = options.pendingPath === undefined ? undefined : resolve(options.pendingPath);
    this.secretName = options.secretName;
    this.watchEnabled = options.watch ?? true;
    this.debounceMs = options.debounceMs ?? 25;
    this.rewatchDelayMs = options.rewatchDelayMs ?? 1_000;
  }

  /**
   * Reads and parses the file (and the pending file, when configured).
   *
   * @throws {@link SecretUnavailableError} when the file is missing or unreadable
   * @throws {@link InvalidSecretError} when its content is not a complete database secret (a torn write)
   */
  public async fetch(_previous?: SecretSnapshot, options: SecretFetchOptions = {}): Promise<SecretSnapshot> {
    const text = await this.read(this.path, options.signal);
    if (text === undefined) throw new SecretUnavailableError(`secret file "${this.path}" does not exist`);
    const current = version(text, `secret file "${this.path}"`);
    if (this.pendingPath === undefined) return { current };
    const pendingText = await this.read(this.pendingPath, options.signal);
    if (pendingText === undefined || pendingText.trim() === '') return { current };
    const pending = version(pendingText, `pending secret file "${this.pendingPath}"`);
    return pending.versionId === current.versionId ? { current } : { current, pending };
  }

  /**
   * Watches the directories of the files; returns the function that stops watching.
   *
   * A watch follows a directory's inode, and dies without an error when that directory is deleted
   * or renamed. So each watched directory's identity (device and inode) is recorded, checked again
   * when the watch reports the directory itself (deleted or moved), on a watcher error and every
   * `rewatchDelayMs`, and the watch is re-created on the directory now at that path (as soon as one
   * exists), followed by a change notification: a replaced directory is seen at once, not at the
   * next TTL.
   */
  public watch(onChange: () => void): () => void {
    if (!this.watchEnabled) return () => undefined;
    const names = new Set([basename(this.path), ...(this.pendingPath ? [basename(this.pendingPath)] : [])]);
    const dirs = new Set([dirname(this.path), ...(this.pendingPath ? [dirname(this.pendingPath)] : [])]);
    const watched = new Map<string, { readonly watcher: FSWatcher; readonly identity: string }>();
    let debounce: NodeJS.Timeout | undefined;
    let stopped = false;

    const changed = () => {
      if (stopped) return;
      if (debounce) clearTimeout(debounce);
      debounce = setTimeout(() => {
        debounce = undefined;
        if (!stopped) onChange();
      }, this.debounceMs);
      debounce.unref();
    };
    const start = (dir: string): boolean => {
      const identity = identityOf(dir);
      if (stopped || identity === undefined) return false;
      try {
        const w = watch(dir, { persistent: false }, (event, filename) => {
          const name = filename === null ? undefined : String(filename);
          // `..data` and friends: Kubernetes' atomic writer swaps a symlinked directory.
          if (name === undefined || names.has(name) || name.startsWith('..')) changed();
          // The event names the watched directory itself when it is deleted or moved away.
          if (event === 'rename' && name === basename(dir)) rewatch(dir, true);
        });
        w.on('error', () => rewatch(dir, true));
        watched.set(dir, { watcher: w, identity });
        return true;
      } catch {
        // Gone again in between: the next check tries once more.
        return false;
      }
    };
    /** Re-creates the watch when the directory at `dir` is not the one watched (or `force`), or is missing. */
    const rewatch = (dir: string, force = false) => {
      if (stopped) return;
      const current = watched.get(dir);
      if (current) {
        if (!force && identityOf(dir) === current.identity) return;
        current.watcher.close();
        watched.delete(dir);
        changed();
      }
      // The file may have changed while nothing watched it: read it again once watched.
      if (start(dir)) changed();
    };
    const check = setInterval(() => {
      for (const dir of dirs) rewatch(dir);
    }, this.rewatchDelayMs);
    check.unref();
    // A directory missing right now is watched as soon as it exists; the TTL keeps re-reading meanwhile.
    for (const dir of dirs) start(dir);
    return () => {
      stopped = true;
      clearInterval(check);
      if (debounce) clearTimeout(debounce);
      for (const { watcher } of watched.values()) watcher.close();
      watched.clear();
    };
  }

  /** The file's text, or undefined when it does not exist. */
  private async read(path: string, signal: AbortSignal | undefined): Promise<string | undefined> {
    try {
      return await readFile(path, { encoding: 'utf8', signal });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new SecretUnavailableError(`secret file "${path}" cannot be read`, { cause: redactedCause(err) });
    }
  }
}

/** Device and inode of the directory at `dir` (following symlinks), or undefined when there is none. */
function identityOf(dir: string): string | undefined {
  try {
    const st = statSync(dir);
    return st.isDirectory() ? `${st.dev}:${st.ino}` : undefined;
  } catch {
    return undefined;
  }
}

function version(text: string, label: string): SecretVersion {
  const digest = createHash('sha256').update(text).digest('hex').slice(0, 32);
  return { ...parseSecret(text, label), versionId: `sha256:${digest}` };
}
