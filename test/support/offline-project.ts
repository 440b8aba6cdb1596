/**
 * A project outside this repository that installs converge's packed tarballs the way a user's
 * project would, without the network: its package-lock.json pins the tarballs (by their sha512)
 * and each third-party dependency at the exact version, address and integrity this repository's
 * package-lock.json records, so `npm ci --offline` takes them from npm's cache, which this
 * repository's own `npm ci` has filled. Nothing is linked to the repository's node_modules.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';

const REPO = join(__dirname, '..', '..');

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  link?: boolean;
  bin?: Record<string, string>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  [key: string]: unknown;
}

/** A packed package: its name, its tarball and the manifest inside it. */
export interface Tarball {
  readonly name: string;
  readonly path: string;
  readonly manifest: {
    version: string;
    bin?: Record<string, string>;
    peerDependencies?: Record<string, string>;
    peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  };
}

/**
 * Packs workspaces with `npm pack` into `destination`.
 *
 * @example
 * const [consumer] = packWorkspaces(['consumer'], tarballDir);
 */
export function packWorkspaces(workspaces: readonly string[], destination: string): Tarball[] {
  mkdirSync(destination, { recursive: true });
  const args = [
    'pack',
    '--json',
    '--pack-destination',
    destination,
    ...workspaces.flatMap((w) => ['--workspace', w]),
  ];
  const packed = run('npm', args, REPO);
  const results = JSON.parse(packed) as { name: string; filename: string }[];
  return results.map((r, i) => ({
    name: r.name,
    path: join(destination, r.filename),
    manifest: JSON.parse(readFileSync(join(REPO, workspaces[i], 'package.json'), 'utf8')),
  }));
}

/**
 * Writes package.json and package-lock.json for a project in `dir` that depends on the tarballs
 * and on `thirdParty` (names installed in this repository, at their locked versions), then runs
 * `npm ci --offline --ignore-scripts`. Returns npm's output.
 *
 * @example
 * installOffline(appDir, tarballs, ['pg', 'aws-cdk-lib', 'constructs']);
 */
export function installOffline(
  dir: string,
  tarballs: readonly Tarball[],
  thirdParty: readonly string[],
): string {
  const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const repoEntries = lock.packages;
  const entries: Record<string, LockEntry> = {};
  const dependencies: Record<string, string> = {};

  const resolveFrom = (from: string, name: string): string | undefined => {
    let base = from;
    for (;;) {
      const path = `${base ? `${base}/` : ''}node_modules/${name}`;
      if (repoEntries[path] && !repoEntries[path].link) return path;
      if (!base) return undefined;
      const i = base.lastIndexOf('/node_modules/');
      base = i < 0 ? '' : base.slice(0, i);
    }
  };
  const add = (path: string): void => {
    if (entries[path]) return;
    // Flags that describe the repository's own tree, not the user's project.
    const entry = { ...repoEntries[path] };
    for (const flag of ['dev', 'devOptional', 'peer']) delete entry[flag];
    entries[path] = entry;
    for (const name of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
      const found = resolveFrom(path, name);
      if (found) add(found);
    }
  };
  for (const name of thirdParty) {
    const path = `node_modules/${name}`;
    const entry = repoEntries[path];
    if (!entry || entry.link || !entry.version)
      throw new Error(`${name} is not installed in this repository`);
    dependencies[name] = entry.version;
    add(path);
  }
  for (const t of tarballs) {
    const spec = `file:${relative(dir, t.path)}`;
    dependencies[t.name] = spec;
    entries[`node_modules/${t.name}`] = {
      version: t.manifest.version,
      resolved: spec,
      integrity: `sha512-${createHash('sha512').update(readFileSync(t.path)).digest('base64')}`,
      ...(t.manifest.bin ? { bin: t.manifest.bin } : {}),
      ...(t.manifest.peerDependencies ? { peerDependencies: t.manifest.peerDependencies } : {}),
      ...(t.manifest.peerDependenciesMeta
        ? { peerDependenciesMeta: t.manifest.peerDependenciesMeta }
        : {}),
    };
  }
  const name = basename(dir);
  const manifest = { name, version: '1.0.0', private: true, dependencies };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(
    join(dir, 'package-lock.json'),
    `${JSON.stringify({ name, version: '1.0.0', lockfileVersion: 3, requires: true, packages: { '': manifest, ...entries } }, null, 2)}\n`,
  );
  return run('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], dir);
}

/**
 * Runs a command, returning stdout; throws with its output when it fails.
 *
 * @example
 * run('node', ['app.js'], appDir);
 */
export function run(
  command: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const r = spawnSync(command, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} (in ${cwd}) exited ${r.status ?? r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`,
    );
  }
  return r.stdout;
}
