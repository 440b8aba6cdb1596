import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSource } from '../../../consumer/file-source';
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

  describe('Constructor', () => {
    it('requires the SecretName dimension, which cannot be guessed from a file name', () => {
      // Act / Assess
      expect(() => new FileSource({ path: '/mnt/secrets/db.json', secretName: '' })).toThrow(
        /FileSource needs the secretName metric dimension, got ""/,
      );
    });
  });
});
