/**
 * Runs before every test file. No test may reach AWS: every SDK client that is not mocked is sent to
 * a closed loopback port and fails at once, with one attempt and static fake credentials.
 */
process.env.AWS_ENDPOINT_URL = 'http://127.0.0.1:1';
process.env.AWS_REGION = 'us-east-1';
process.env.AWS_ACCESS_KEY_ID = 'AKIDEXAMPLETESTONLY';
process.env.AWS_SECRET_ACCESS_KEY = 'test-only-not-a-secret';
process.env.AWS_MAX_ATTEMPTS = '1';
process.env.AWS_EC2_METADATA_DISABLED = 'true';
process.env.POWERTOOLS_DEV = 'true';
process.env.POWERTOOLS_SERVICE_NAME = 'converge-test';
delete process.env.AWS_PROFILE;

// The AWS SDK warns once per process, in 9 lines, that it drops Node.js 20 in January 2027. In the
// test workers that buries CI's output (the CLI itself shortens it to one line: cli/bin.js, tested by
// test/e2e/cli-bin.test.ts); the tests drop it and keep every other warning.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const text = typeof warning === 'string' ? warning : warning?.message;
  if (typeof text === 'string' && text.startsWith('NodeVersionSupportWarning')) return;
  (emitWarning as (...args: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;
