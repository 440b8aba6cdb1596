#!/usr/bin/env node
'use strict';
// The `converge` command. It runs the compiled CLI, dist/cli/main.js, built from cli/main.ts by
// scripts/build-cli.mjs (`npm run build:cli`; `npm ci` runs it through the `prepare` script).
//
// When that build is missing, or older than a source file that went into it (dist/cli/build.json
// lists them: an edit, a checkout), the TypeScript sources run through tsx instead, after one line
// on stderr saying so: slower to start, but never stale code.
//
// On Node.js below 22, the AWS SDK's multi-line NodeVersionSupportWarning is replaced by one short
// line on stderr (stdout stays clean for --json); NODE_NO_WARNINGS=1 or --no-warnings silences it.
const { readFileSync, statSync } = require('node:fs');
const { join } = require('node:path');

require('./node-warning.js').shortenNodeVersionWarning();

const root = join(__dirname, '..');
const build = compiledCli(root);
if (build.ok) {
  require(build.main).main(process.argv.slice(2));
} else {
  process.stderr.write(
    `converge: ${build.why}; running the TypeScript sources through tsx (slower start). Run: npm run build:cli\n`,
  );
  // tsx's loader (what `node --import tsx` runs) registers both hooks: CommonJS for require('./main.ts'),
  // ESM for the import() with which the CLI loads each command.
  import('tsx').then(
    () => require('./main.ts').main(process.argv.slice(2)),
    (err) => {
      process.stderr.write(
        `converge: cannot load tsx (${err.message.split('\n')[0]}); run npm ci\n`,
      );
      process.exit(1);
    },
  );
}

/** The compiled CLI if it exists and no source in it changed since it was built. */
function compiledCli(repoRoot) {
  const main = join(repoRoot, 'dist', 'cli', 'main.js');
  let info;
  try {
    info = JSON.parse(readFileSync(join(repoRoot, 'dist', 'cli', 'build.json'), 'utf8'));
    statSync(main);
  } catch {
    return { ok: false, why: 'the compiled CLI (dist/cli/main.js) is missing' };
  }
  for (const input of info.inputs) {
    let changed;
    try {
      changed = statSync(join(repoRoot, input)).mtimeMs > info.startedAtMs;
    } catch {
      changed = true;
    }
    if (changed)
      return { ok: false, why: `the compiled CLI (dist/cli/main.js) is older than ${input}` };
  }
  return { ok: true, main };
}
