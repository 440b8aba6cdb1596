#!/usr/bin/env node
// The `converge` command. TypeScript sources run through tsx's require hook.
require('tsx/cjs');
require('./main.ts').main(process.argv.slice(2));
