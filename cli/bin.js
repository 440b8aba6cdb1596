#!/usr/bin/env node
// The `converge` command. TypeScript sources run through tsx's require hook (CommonJS only: cli/main.ts
// loads the drill with require(), not import(), so no ESM hook is needed).
require('tsx/cjs');
require('./main.ts').main(process.argv.slice(2));
