import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSource } from '../../../consumer/file-source';
import { RotatingPgPool } from '../../../consumer/rotating-pg-pool';
import type { SecretVersion } from '../../../consumer/secret-source';
import { expectNoSecretsInOutput } from '../../support/captured-output';
import { consumerWorld, queryLoad, tlsOptions, until } from './fixtures';

describe('Class: RotatingPgPool with a FileSource', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'converge-file-pool-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('never loses its credential through atomic, torn and deleted rewrites, and adopts each new one once whole', async () => {
    // Prepare
    const w = await consumerWorld('cfile');
    const path = join(dir, 'db.json');
    const atomicWrite = (text: string) => {
      writeFileSync(`${path}.tmp`, text);
      renameSync(`${path}.tmp`, path);
    };
    atomicWrite(w.json(w.first));
    const pool = new RotatingPgPool({
      source: new FileSource({ path, secretName: 'orders-db', debounceMs: 10 }),
      refresh: { ttlMs: 3_600_000 },
      ...tlsOptions(w),
    });
    const failures: Error[] = [];
    const generations: number[] = [];
    pool.on('reloadFailure', (err) => failures.push(err));
    pool.on('credentialChange', (next) => generations.push(next.generation));
    await pool.ready();
    const load = queryLoad(pool, 4);
    const nextChange = () => new Promise<SecretVersion>((resolve) => pool.once('credentialChange', resolve));
    const nextFailure = () => new Promise<Error>((resolve) => pool.once('reloadFailure', resolve));
    const drained = () => until('the old inner pool to drain', () => pool.retiringCount === 0);
    const a = w.first.username;
    const b = `${a}_clone`;
    try {
      await until('load to be running', () => load.ok >= 20);

      // Act 1: the agent replaces the file atomically (write elsewhere, rename into place)
      let changed = nextChange();
      atomicWrite(w.json(await w.createUser(b, 2)));
      const afterRename = await changed;
      await drained();

      // Act 2: the agent rewrites in place and is caught mid-write
      const a3 = w.json(await w.changePassword(a, 3));
      let failed = nextFailure();
      writeFileSync(path, a3.slice(0, Math.floor(a3.length / 2)));
      const tornError = await failed;
      const duringTorn = pool.credential?.generation;
      const okDuringTorn = load.ok;
      await until('queries while the file is torn', () => load.ok >= okDuringTorn + 10);
      changed = nextChange();
      writeFileSync(path, a3);
      const afterTorn = await changed;
      await drained();

      // Act 3: the file disappears, then comes back
      const b4 = w.json(await w.changePassword(b, 4));
      failed = nextFailure();
      unlinkSync(path);
      const missingError = await failed;
      const duringMissing = pool.credential?.generation;
      const okDuringMissing = load.ok;
      await until('queries while the file is missing', () => load.ok >= okDuringMissing + 10);
      changed = nextChange();
      writeFileSync(path, b4);
      const afterRecreate = await changed;
      await drained();
      const seen = load.ok;
      await until('queries on the last credential', () => load.ok >= seen + 10);
      await load.stop();
      const sessionUsers = new Set((await w.sessions()).map((s) => s.usename));

      // Assess
      expect(load.failures).toEqual([]);
      expect([afterRename.username, afterTorn.username, afterRecreate.username]).toEqual([b, a, b]);
      expect(generations).toEqual([1, 2, 3, 4]);
      expect(duringTorn).toBe(2);
      expect(tornError.name).toBe('InvalidSecretError');
      expect(duringMissing).toBe(3);
      expect(missingError.message).toMatch(/does not exist/);
      expect(load.users).toEqual(new Set([a, b]));
      expect(sessionUsers).toEqual(new Set([b]));
      expectNoSecretsInOutput(w.passwords, failures);
    } finally {
      await load.stop();
      await pool.end();
    }
  });
});
