/**
 * One jest run covers unit, integration (real PostgreSQL), CDK and e2e (drill) tests, as jest projects:
 *
 * - `pg18`: every test, on PostgreSQL 18 (the default major).
 * - `pg14`, `pg15`, `pg16`, `pg17`: the rotation safety suites only (MATRIX_TESTS below), each on that
 *   major, because RDS and Aurora run 14-17 and PostgreSQL 16 changed what CREATEROLE may do.
 *
 * Each project's globalSetup starts that major's two servers (TLS, and plain for the TLS-refusal
 * test) and prints `PostgreSQL 16.14 started for pg16`; in the workers, test/support/setup-major.ts
 * sets CONVERGE_PG_MAJOR from the project's `globals`, so tlsServer(), plainServer() and
 * freshDatabase() (test/support/database.ts) and startLocalPostgres() use that project's major. Each
 * test file isolates itself with its own role and table names.
 *
 * CONVERGE_PG_MAJORS restricts the majors that run (comma-separated; default all five):
 *   CONVERGE_PG_MAJORS=16 npx jest            # the matrix suites on 16 only
 *   CONVERGE_PG_MAJORS=18 npx jest            # everything on 18, no matrix (as before the matrix)
 *   CONVERGE_PG_MAJORS=16,18 npx jest test/integration/rotation
 * The full suite runs only when 18 is listed. `--selectProjects pg16` works as well.
 *
 * test/support/pg-majors-processor.js adds `convergePgMajors` (tests per major) to `--json` reports;
 * .ci/run prints it.
 */
const DEFAULT_MAJOR = 18;
/** Kept in step with SUPPORTED_MAJORS in cli/local/postgres.ts. */
const SUPPORTED_MAJORS = [14, 15, 16, 17, 18];
/** What runs on every major besides the default one. */
const MATRIX_TESTS = [
  '**/test/integration/rotation/**/*.test.ts',
  '**/test/integration/gates/revocation*.test.ts',
];

function selectedMajors() {
  const raw = (process.env.CONVERGE_PG_MAJORS ?? '').trim();
  if (raw === '') return SUPPORTED_MAJORS;
  const majors = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const unknown = majors.filter((m) => !SUPPORTED_MAJORS.includes(m));
  if (unknown.length > 0 || majors.length === 0) {
    throw new Error(
      `CONVERGE_PG_MAJORS=${raw}: each entry must be one of ${SUPPORTED_MAJORS.join(', ')}`,
    );
  }
  return SUPPORTED_MAJORS.filter((m) => majors.includes(m));
}

/** One project: the same settings for every major, only tests and servers differ. */
function project(major) {
  const isDefault = major === DEFAULT_MAJOR;
  return {
    displayName: `pg${major}`,
    testEnvironment: 'node',
    roots: ['<rootDir>/test'],
    testMatch: isDefault ? ['**/*.test.ts'] : MATRIX_TESTS,
    transform: {
      '^.+\\.ts$': 'ts-jest',
    },
    globals: { __CONVERGE_PG_MAJOR__: major },
    // jest runs each distinct globalSetup path once, so every matrix major has its own (thin) file.
    globalSetup: isDefault
      ? '<rootDir>/test/support/global-setup.ts'
      : `<rootDir>/test/support/global-setup-pg${major}.ts`,
    // One shared teardown (run once) stops every server any project started.
    globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    setupFiles: ['<rootDir>/test/support/setup-env.ts', '<rootDir>/test/support/setup-major.ts'],
    setupFilesAfterEnv: ['<rootDir>/test/support/setup-after-env.ts'],
  };
}

/** @type {import('jest').Config} */
module.exports = {
  projects: selectedMajors().map(project),
  testResultsProcessor: '<rootDir>/test/support/pg-majors-processor.js',
  testTimeout: 60_000,
  maxWorkers: 2,
};
