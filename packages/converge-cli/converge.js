#!/usr/bin/env node
'use strict';
// `npx converge` from this repository: npm links this workspace's bin into node_modules/.bin, so npx
// runs it directly. (A bin on the root package itself would make npx load the whole dependency tree
// first, about 1.5 s, before the command starts.) The command itself is cli/bin.js.
require('../../cli/bin.js');
