/**
 * One jest run covers unit, integration (real PostgreSQL), CDK and e2e (drill) tests.
 * A single TLS-enabled PostgreSQL (and a plain one for the TLS-refusal test) is started once in
 * globalSetup; each test file isolates itself with its own role and table names.
 */
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': 'ts-jest',
  },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  setupFiles: ['<rootDir>/test/support/setup-env.ts'],
  setupFilesAfterEnv: ['<rootDir>/test/support/setup-after-env.ts'],
  testTimeout: 60_000,
  maxWorkers: 2,
};
