/**
 * Runs before every test file, after ./setup-env.ts: tells this file which PostgreSQL major its jest
 * project runs (the project's `globals.__CONVERGE_PG_MAJOR__`, see jest.config.js) by setting
 * CONVERGE_PG_MAJOR, which ./database.ts and startLocalPostgres() read. The variable lives in the test
 * file's own copy of process.env, so files of different projects in one worker do not mix.
 */
const major = (globalThis as { __CONVERGE_PG_MAJOR__?: unknown }).__CONVERGE_PG_MAJOR__;
if (major !== undefined) process.env.CONVERGE_PG_MAJOR = String(major);
