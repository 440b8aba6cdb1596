import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSource } from '../../../consumer/file-source';
import { refreshingSnapshot } from '../../../consumer/refreshing-secret';
import { InvalidSecretError, SecretUnavailableError } from '../../../lambda/shared/errors';
import { expectNoSecretsInOutput } from '../../support/captured-output';
import { secretJson } from './secret-fixtures';

const G1 = { username: 'orders', password: 'pw-file-generation-one', generation: 1 };
const G2 = { username: 'orders_clone', password: 'pw-file-generation-two', generation: 2 };

describe('Class: FileSource', () => {
  let dir: string;
  let path: string;
  const stops: (() => void)[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'converge-file-source-'));
    path = join(dir, 'db.json');
  });

  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('Method: fetch', () => {
    it('reads the rendered secret, with a content hash as version id', async () => {
      // Prepare
      writeFileSync(path, secretJson(G1));
      const source = new FileSource({ path, secretName: 'orders-db' });
      // Act
      const first = await source.fetch();
      const again = await source.fetch();
      writeFileSync(path, secretJson(G2));
      const changed = await source.fetch();
      // Assess
      expect(first.current).toMatchObject({ username: 'orders', generation: 1 });
      expect(first.current.versionId).toMatch(/^sha256:[0-9a-f]{32}$/);
      expect(again.current.versionId).toBe(first.current.versionId);
      expect(changed.current.versionId).not.toBe(first.current.versionId);
      expect(source.secretName).toBe('orders-db');
    });

    it('refuses to start without the file', async () => {
      // Prepare
      const source = new FileSource({ path, secretName: 'orders-db' });
      // Act / Assess
      await expect(source.fetch()).rejects.toThrow(SecretUnavailableError);
      await expect(source.fetch()).rejects.toThrow(/does not exist/);
    });

    it('rejects a half-written file without echoing its content', async () => {
      // Prepare
      const full = secretJson(G1);
      writeFileSync(path, full.slice(0, full.indexOf(G1.password) + 10));
      const source = new FileSource({ path, secretName: 'orders-db' });
      // Act
      const err = await source.fetch().catch((e: unknown) => e);
      // Assess
      expect(err).toBeInstanceOf(InvalidSecretError);
      expectNoSecretsInOutput([G1.password, G1.password.slice(0, 10)], [err]);
    });

    it('reads a pending file for live consumers, ignoring it when missing, empty or equal to the current file', async () => {
      // Prepare
      const pendingPath = join(dir, 'db.pending.json');
      writeFileSync(path, secretJson(G1));
      const source = new FileSource({ path, pendingPath, secretName: 'orders-db' });
      // Act
      const missing = await source.fetch();
      writeFileSync(pendingPath, '');
      const empty = await source.fetch();
      writeFileSync(pendingPath, secretJson(G1));
      const same = await source.fetch();
      writeFileSync(pendingPath, secretJson(G2));
      const rotating = await source.fetch();
      // Assess
      expect([missing.pending, empty.pending, same.pending]).toEqual([undefined, undefined, undefined]);
      expect(rotating.pending).toMatchObject({ username: 'orders_clone', generation: 2 });
    });
  });

  describe('Method: watch', () => {
    it('notifies on an atomic replacement (rename into place)', async () => {
      // Prepare
      writeFileSync(path, secretJson(G1));
      const source = new FileSource({ path, secretName: 'orders-db', debounceMs: 5 });
      const notified = new Promise<void>((resolve) => stops.push(source.watch(resolve)));
      // Act
      writeFileSync(join(dir, '.db.json.tmp'), secretJson(G2));
      renameSync(join(dir, '.db.json.tmp'), path);
      await notified;
      // Assess
      expect((await source.fetch()).current.username).toBe('orders_clone');
    });

    it('notifies on an in-place write, and no more once stopped', async () => {
      // Prepare
      writeFileSync(path, secretJson(G1));
      const source = new FileSource({ path, secretName: 'orders-db', debounceMs: 5 });
      let count = 0;
      let resolveFirst: () => void = () => undefined;
      const first = new Promise<void>((resolve) => (resolveFirst = resolve));
      const stop = source.watch(() => {
        count++;
        resolveFirst();
      });
      // Act
      writeFileSync(path, secretJson(G2));
      await first;
      stop();
      writeFileSync(path, secretJson(G1));
      await new Promise((r) => setTimeout(r, 50));
      // Assess
      expect(count).toBe(1);
    });
  });

  describe('Kubernetes secret volume layout (..data swapped atomically)', () => {
    /**
     * What kubelet's atomic writer and the Secrets Store CSI driver do: the files live in a
     * timestamped directory, `..data` links to it and `secret.json` links to `..data/secret.json`;
     * an update writes a new timestamped directory, points `..data_tmp` at it, renames `..data_tmp`
     * over `..data` and deletes the old directory.
     */
    function volume(root: string) {
      let serial = 0;
      let live: string | undefined;
      return {
        path: join(root, 'secret.json'),
        /** Creates the layout in `root` (which must exist) with a first value. */
        create(text: string) {
          live = this.write(text);
          symlinkSync(live, join(root, '..data'));
          symlinkSync(join('..data', 'secret.json'), join(root, 'secret.json'));
        },
        write(text: string): string {
          serial++;
          const dirName = `..2026_11_30_10_00_${String(serial).padStart(2, '0')}.${process.pid}`;
          mkdirSync(join(root, dirName));
          writeFileSync(join(root, dirName, 'secret.json'), text);
          return dirName;
        },
        /** One atomic update. */
        swap(text: string) {
          const next = this.write(text);
          symlinkSync(next, join(root, '..data_tmp'));
          renameSync(join(root, '..data_tmp'), join(root, '..data'));
          rmSync(join(root, live!), { recursive: true });
          live = next;
        },
      };
    }

    /** The cache as the pool builds it, with a TTL long enough that only the watcher can explain a pickup. */
    function cache(path: string) {
      const secret = refreshingSnapshot(new FileSource({ path, secretName: 'orders-db', debounceMs: 5 }), {
        ttlMs: 3_600_000,
        refreshInBackground: false,
      });
      stops.push(() => secret.close());
      return secret;
    }

    async function sees(secret: ReturnType<typeof cache>, generation: number): Promise<void> {
      const deadline = Date.now() + 15_000;
      while (secret.peek()?.current.generation !== generation) {
        if (Date.now() > deadline) {
          throw new Error(`generation ${generation} not seen (still ${secret.peek()?.current.generation}): the watcher missed the change`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    }

    const gen = (generation: number) => secretJson({ ...G1, password: `pw-k8s-${generation}`, generation });

    it('sees each of several ..data swaps in a row through the watcher', async () => {
      // Prepare
      const v = volume(dir);
      v.create(gen(1));
      const secret = cache(v.path);
      expect((await secret.get()).current.generation).toBe(1);
      // Act / Assess: each swap is seen long before the one-hour TTL
      for (const generation of [2, 3, 4, 5]) {
        v.swap(gen(generation));
        await sees(secret, generation);
      }
      expect(secret.fetches).toBeGreaterThanOrEqual(5);
    });

    it('watches the directory again after it is deleted and recreated, then follows ..data swaps in it', async () => {
      // Prepare
      const v = volume(dir);
      v.create(gen(1));
      const secret = cache(v.path);
      await secret.get();
      // Act 1: the volume directory is deleted and recreated (a remount), with a new value
      rmSync(dir, { recursive: true });
      mkdirSync(dir);
      const v2 = volume(dir);
      v2.create(gen(2));
      // Assess 1
      await sees(secret, 2);
      // Act 2 / Assess 2: later swaps in the new directory are seen too
      for (const generation of [3, 4]) {
        v2.swap(gen(generation));
        await sees(secret, generation);
      }
    });

    it('watches the directory again after it is renamed away and replaced', async () => {
      // Prepare
      const v = volume(dir);
      v.create(gen(1));
      const secret = cache(v.path);
      await secret.get();
      // Act
      renameSync(dir, `${dir}.old`);
      stops.push(() => rmSync(`${dir}.old`, { recursive: true, force: true }));
      mkdirSync(dir);
      const v2 = volume(dir);
      v2.create(gen(2));
      await sees(secret, 2);
      v2.swap(gen(3));
      // Assess
      await sees(secret, 3);
    });
  });

  describe('Constructor', () => {
    it('requires the SecretName dimension, which cannot be guessed from a file name', () => {
      // Act / Assess
      expect(() => new FileSource({ path: '/mnt/secrets/db.json', secretName: '' })).toThrow(
        /FileSource needs the secretName metric dimension, got ""/,
      );
    });
  });
});
