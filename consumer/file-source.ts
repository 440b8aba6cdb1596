/**
 * A {@link SecretSource} backed by a file that a sidecar agent or the Secrets Store CSI driver
 * renders and keeps current.
 *
 * The file is read at startup (a missing or invalid file then fails loudly: never run without a
 * credential), then watched. A half-written, unparsable or missing file makes that read fail; the
 * refreshing cache keeps the last good value and counts a reload failure, and the next change
 * event (or the TTL) reads it again. The watcher observes the directory, not the file, so atomic
 * replacement by rename and Kubernetes' `..data` symlink swap are seen as well as in-place writes.
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { ConvergeError, SecretUnavailableError, redactedCause } from '../lambda/shared/errors';
import { parseSecret } from '../lambda/shared/secret';
import type { SecretSnapshot, SecretSource, SecretVersion } from './secret-source';

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
   * Delay before re-creating a watcher whose directory disappeared.
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
  public async fetch(): Promise<SecretSnapshot> {
    const text = await this.read(this.path);
    if (text === undefined) throw new SecretUnavailableError(`secret file "${this.path}" does not exist`);
    const current = version(text, `secret file "${this.path}"`);
    if (this.pendingPath === undefined) return { current };
    const pendingText = await this.read(this.pendingPath);
    if (pendingText === undefined || pendingText.trim() === '') return { current };
    const pending = version(pendingText, `pending secret file "${this.pendingPath}"`);
    return pending.versionId === current.versionId ? { current } : { current, pending };
  }

  /** Watches the directories of the files; returns the function that stops watching. */
  public watch(onChange: () => void): () => void {
    if (!this.watchEnabled) return () => undefined;
    const names = new Set([basename(this.path), ...(this.pendingPath ? [basename(this.pendingPath)] : [])]);
    const dirs = new Set([dirname(this.path), ...(this.pendingPath ? [dirname(this.pendingPath)] : [])]);
    const watchers = new Map<string, FSWatcher>();
    const timers = new Set<NodeJS.Timeout>();
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
    const later = (fn: () => void) => {
      const t = setTimeout(() => {
        timers.delete(t);
        fn();
      }, this.rewatchDelayMs);
      t.unref();
      timers.add(t);
    };
    const start = (dir: string) => {
      if (stopped) return;
      try {
        const w = watch(dir, { persistent: false }, (_event, filename) => {
          // `..data` and friends: Kubernetes' atomic writer swaps a symlinked directory.
          if (!filename || names.has(String(filename)) || String(filename).startsWith('..')) changed();
        });
        w.on('error', () => {
          w.close();
          watchers.delete(dir);
          changed();
          later(() => start(dir));
        });
        watchers.set(dir, w);
      } catch {
        // The directory is missing right now: the TTL keeps re-reading, and we try to watch again.
        later(() => start(dir));
      }
    };
    for (const dir of dirs) start(dir);
    return () => {
      stopped = true;
      if (debounce) clearTimeout(debounce);
      for (const t of timers) clearTimeout(t);
      for (const w of watchers.values()) w.close();
      watchers.clear();
    };
  }

  /** The file's text, or undefined when it does not exist. */
  private async read(path: string): Promise<string | undefined> {
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new SecretUnavailableError(`secret file "${path}" cannot be read`, { cause: redactedCause(err) });
    }
  }
}

function version(text: string, label: string): SecretVersion {
  const digest = createHash('sha256').update(text).digest('hex').slice(0, 32);
  return { ...parseSecret(text, label), versionId: `sha256:${digest}` };
}
