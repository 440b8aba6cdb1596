/**
 * The load and the checks every ORM of the compatibility suite goes through: a RotatingPgPool on a
 * secret rotated three times by the real rotation handler (test/support/rotation-harness.ts),
 * alternating users, while concurrent workers run transactions (committed and rolled back, with
 * async work between statements) and single queries through the ORM.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RotatingPgPool, type RotatingPgPoolOptions } from '../../../../consumer/rotating-pg-pool';
import { SecretsManagerSource } from '../../../../consumer/secrets-manager-source';
import { asSuperuser } from '../../../support/database';
import { createRotationHarness, type RotationHarness } from '../../../support/rotation-harness';
import { until } from '../fixtures';

/** What the load needs from an ORM: one transaction, one single query. */
export interface OrmUnderTest {
  /**
   * One transaction through the ORM: two inserts of `note` and a read, with `await sleep(5)`
   * between statements (see {@link pause}); commits when `commit`, else rolls back on purpose (that
   * is no failure). Returns the backend pid (pg_backend_pid()) each statement ran on.
   */
  transaction(note: string, commit: boolean): Promise<number[]>;
  /** session_user of the connection one single query (outside a transaction) runs on. */
  sessionUser(): Promise<string>;
}

/** The async work between two statements of a transaction. */
export const pause = (): Promise<void> => sleep(5);

/** SQL of the statements, the same for every ORM. */
export const SQL = {
  insert: 'INSERT INTO items (note) VALUES ($1) RETURNING pg_backend_pid() AS pid',
  read: 'SELECT pg_backend_pid() AS pid, count(*)::int AS n FROM items WHERE note = $1',
  sessionUser: 'SELECT session_user AS u',
} as const;

export interface TransactionRecord {
  readonly note: string;
  readonly commit: boolean;
  readonly pids: number[];
}

export interface AfterRotation {
  readonly generation: number;
  /** The user the rotation promoted. */
  readonly promoted: string;
  /** session_user of a single query through the ORM once the pool adopted it and drained the old user. */
  readonly ormSessionUser: string;
  /** Users of every session on the database at that moment. */
  readonly sessionUsers: string[];
  /** Generations of every connection the pool has open at that moment. */
  readonly poolGenerations: number[];
}

export interface CompatRun {
  readonly h: RotationHarness;
  readonly pool: RotatingPgPool;
  readonly consumer: string;
  readonly users: { readonly first: string; readonly clone: string };
  readonly transactions: TransactionRecord[];
  readonly singleQueries: number;
  readonly failures: unknown[];
  readonly poolErrors: Error[];
  readonly afterRotations: AfterRotation[];
  /** Count of rows per note, for every note the load wrote. */
  readonly rowsByNote: Map<string, number>;
  /** Sessions on the database left `idle in transaction` (or aborted) after the load. */
  readonly idleInTransaction: number;
  /** application_name of every session on the database after the load. */
  readonly applicationNames: string[];
  /** pids of every session on the database after the load, and of the pool's own connections. */
  readonly sessionPids: number[];
  readonly poolPids: number[];
}

export interface CompatOptions {
  /** Prefix of the database, roles and secret. */
  readonly prefix: string;
  /** The ORM on a pool. */
  readonly orm: (pool: RotatingPgPool) => OrmUnderTest | Promise<OrmUnderTest>;
  /** How the pool is created (a bundled copy of the class, for example). @default `new RotatingPgPool(options)` */
  readonly createPool?: (options: RotatingPgPoolOptions) => RotatingPgPool;
  /** Workers running the load. @default 4 */
  readonly workers?: number;
}

const ROTATIONS = 3;

const REPO = resolve(__dirname, '../../../..');

/**
 * Bundles `entry` (a TypeScript module) with esbuild, minified, to CommonJS under dist/ (so that
 * packages left external resolve from the repository's node_modules), and loads it. esbuild runs
 * in a child process: its JavaScript API refuses to run inside jest's module sandbox.
 * `externalPackages`: leave every npm package to `require` (else they are bundled in, which turns
 * an ESM-only package such as Kysely into CommonJS that jest can load).
 *
 * @example
 * const entry = loadBundle<typeof import('./drizzle-entry')>('drizzle-entry.ts', { externalPackages: true });
 */
export function loadBundle<T>(entry: string, options: { readonly externalPackages: boolean }): T {
  const outdir = join(REPO, 'dist', 'compat-test');
  mkdirSync(outdir, { recursive: true });
  const outfile = join(
    outdir,
    `${entry.replace(/\.ts$/, '')}-${randomBytes(4).toString('hex')}.js`,
  );
  const build = {
    entryPoints: [join(__dirname, entry)],
    outfile,
    bundle: true,
    minify: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    logLevel: 'error',
    ...(options.externalPackages ? { packages: 'external' } : {}),
  };
  const r = spawnSync(
    process.execPath,
    ['-e', `require('esbuild').buildSync(${JSON.stringify(build)})`],
    {
      cwd: REPO,
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(`esbuild failed for ${entry}: ${r.stderr}`);
  try {
    return require(outfile) as T;
  } finally {
    rmSync(outfile, { force: true });
  }
}

/**
 * Runs the load through `options.orm` across three rotations and gathers what the checks need; the
 * pool stays open (the caller ends it, possibly through the ORM).
 *
 * @example
 * const run = await rotateUnderLoad({ prefix: 'compat_kysely', orm: (pool) => kyselyOrm(pool) });
 * expectCompatible(run);
 */
export async function rotateUnderLoad(options: CompatOptions): Promise<CompatRun> {
  const h = await createRotationHarness({ prefix: options.prefix });
  const consumer = `compat-${options.prefix.replace(/_/g, '-')}`;
  const create = options.createPool ?? ((o: RotatingPgPoolOptions) => new RotatingPgPool(o));
  const pool = create({
    source: new SecretsManagerSource({ secretId: h.secretArn, includePending: true }),
    refresh: { ttlMs: 200, backoffBaseMs: 100, backoffMaxMs: 1_000 },
    caBundlePath: h.config.caBundlePath,
    max: 6,
    consumer,
  });
  const poolErrors: Error[] = [];
  pool.on('error', (err) => poolErrors.push(err));
  await pool.ready();
  const first = h.current().username;
  const orm = await options.orm(pool);

  const transactions: TransactionRecord[] = [];
  const failures: unknown[] = [];
  let singleQueries = 0;
  let running = true;
  const workers = Array.from({ length: options.workers ?? 4 }, async (_, w) => {
    // Bounded in count as well as by `running`.
    for (let n = 0; running && n < 5_000; n++) {
      try {
        if (n % 3 === 2) {
          await orm.sessionUser();
          singleQueries++;
        } else {
          const commit = n % 3 === 0;
          const note = `${options.prefix}-${w}-${n}-${commit ? 'commit' : 'rollback'}`;
          transactions.push({ note, commit, pids: await orm.transaction(note, commit) });
        }
      } catch (err) {
        failures.push(err);
      }
    }
  });

  const afterRotations: AfterRotation[] = [];
  try {
    await until('the load to be running', () => transactions.length >= 10);
    for (let i = 0; i < ROTATIONS; i++) {
      await h.rotate();
      const current = h.current();
      await until(
        `the pool to adopt generation ${current.generation}`,
        () => pool.loadedGeneration === current.generation,
        20_000,
      );
      // The next rotation's setSecret needs the previous user gone (revocation guard).
      await until('the old user to be drained', () => pool.retiringCount === 0, 20_000);
      const seen = transactions.length;
      await until(
        'transactions on the new credential',
        () => transactions.length >= seen + 10,
        20_000,
      );
      afterRotations.push({
        generation: current.generation,
        promoted: current.username,
        ormSessionUser: await orm.sessionUser(),
        sessionUsers: [...new Set((await sessions(h.db.dbname)).map((s) => s.usename))],
        poolGenerations: [...new Set(pool.connections().map((c) => c.generation))],
      });
    }
  } finally {
    running = false;
    await Promise.all(workers);
  }

  const notes = await asSuperuser(h.db.dbname, (c) =>
    c.query<{ note: string; n: number }>(
      'SELECT note, count(*)::int AS n FROM items WHERE note LIKE $1 GROUP BY note',
      [`${options.prefix}-%`],
    ),
  );
  const after = await sessions(h.db.dbname);
  return {
    h,
    pool,
    consumer,
    users: { first, clone: `${first}_clone` },
    transactions,
    singleQueries,
    failures,
    poolErrors,
    afterRotations,
    rowsByNote: new Map(notes.rows.map((r) => [r.note, r.n])),
    idleInTransaction: after.filter((s) => s.state?.startsWith('idle in transaction')).length,
    applicationNames: after.map((s) => s.application_name),
    sessionPids: after.map((s) => s.pid).sort((a, b) => a - b),
    poolPids: pool
      .connections()
      .map((c) => c.processId!)
      .sort((a, b) => a - b),
  };
}

/**
 * The checks every ORM must pass: no failed query, one backend per transaction, committed rows
 * present and rolled-back rows absent, no session left in a transaction, fresh connections on the
 * newly promoted user after each rotation, and every session the pool's own (attributed to its
 * consumer).
 *
 * @example
 * expectCompatible(await rotateUnderLoad({ prefix: 'compat_kysely', orm: kyselyOrm }));
 */
export function expectCompatible(run: CompatRun): void {
  expect(run.failures).toEqual([]);
  expect(run.poolErrors).toEqual([]);
  const committed = run.transactions.filter((t) => t.commit);
  const rolledBack = run.transactions.filter((t) => !t.commit);
  expect(committed.length).toBeGreaterThanOrEqual(20);
  expect(rolledBack.length).toBeGreaterThanOrEqual(20);
  expect(run.singleQueries).toBeGreaterThanOrEqual(10);
  // Every statement of a transaction ran on one backend.
  const crossing = run.transactions.filter(
    (t) => t.pids.length !== 3 || new Set(t.pids).size !== 1,
  );
  expect(crossing).toEqual([]);
  // Both inserts of each committed transaction, nothing of a rolled-back one.
  expect(run.rowsByNote).toEqual(new Map(committed.map((t) => [t.note, 2])));
  expect(run.idleInTransaction).toBe(0);
  // Three rotations, alternating users; each time the ORM's connections are the new user's only.
  const { first, clone } = run.users;
  expect(run.afterRotations.map((a) => a.promoted)).toEqual([clone, first, clone]);
  for (const a of run.afterRotations) {
    expect(a.ormSessionUser).toBe(a.promoted);
    expect(a.sessionUsers).toEqual([a.promoted]);
    expect(a.poolGenerations).toEqual([a.generation]);
  }
  // Every session on the database is one of the pool's, named for its consumer.
  expect(run.sessionPids).toEqual(run.poolPids);
  expect(run.sessionPids.length).toBeGreaterThan(0);
  for (const name of run.applicationNames)
    expect(name.startsWith(`cv1:${run.consumer}:`)).toBe(true);
  expect(run.h.passwords().some((p) => JSON.stringify(run.failures).includes(p))).toBe(false);
}

async function sessions(
  dbname: string,
): Promise<{ pid: number; usename: string; state: string | null; application_name: string }[]> {
  return asSuperuser('postgres', async (c) => {
    const r = await c.query<{
      pid: number;
      usename: string;
      state: string | null;
      application_name: string;
    }>(
      'SELECT pid, usename, state, application_name FROM pg_stat_activity ' +
        'WHERE datname = $1 AND usename IS NOT NULL AND pid <> pg_backend_pid() ORDER BY pid',
      [dbname],
    );
    return r.rows;
  });
}
