/**
 * `npm run model -- --runs N [--seed S] [--max-commands M] [--json]`: the model-based test at any
 * budget, outside jest. Starts its own PostgreSQL (CONVERGE_PG_MAJOR picks the major, default 18),
 * runs N command sequences from seed S, and prints runs, commands executed, distinct
 * interleavings, invariant checks, failures (with fast-check's shrunk counterexample, seed and
 * replay path) and wall time. Exits 1 when an invariant broke.
 *
 * Like the jest setup (test/support/setup-env.ts), it sends every SDK client that is not answered
 * by a model to a closed port, so nothing can reach AWS.
 */
import { Command, Option } from 'commander';
import { startLocalPostgres } from '../../cli/local/postgres';
import { installOutputCapture } from '../support/captured-output';
import { runModel } from './property';
import { restoreSdkStubs } from './world';

Object.assign(process.env, {
  AWS_ENDPOINT_URL: 'http://127.0.0.1:1',
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'AKIDEXAMPLETESTONLY',
  AWS_SECRET_ACCESS_KEY: 'test-only-not-a-secret',
  AWS_MAX_ATTEMPTS: '1',
  AWS_EC2_METADATA_DISABLED: 'true',
  POWERTOOLS_DEV: 'true',
  POWERTOOLS_SERVICE_NAME: 'converge-model',
});
delete process.env.AWS_PROFILE;

async function main(): Promise<number> {
  const program = new Command('model')
    .addOption(new Option('--runs <n>', 'command sequences to run').default(200).argParser(Number))
    .addOption(
      new Option('--seed <s>', 'fast-check seed').default(Date.now() % 2 ** 31).argParser(Number),
    )
    .addOption(
      new Option('--max-commands <m>', 'longest command sequence').default(25).argParser(Number),
    )
    .option('--json', 'print the summary as JSON')
    .parse(process.argv);
  const o = program.opts<{ runs: number; seed: number; maxCommands: number; json?: boolean }>();
  const write = process.stdout.write.bind(process.stdout);
  const server = await startLocalPostgres();
  // Everything the product prints goes to the capture the password invariant scans, not the terminal.
  installOutputCapture();
  try {
    const summary = await runModel({
      server,
      runs: o.runs,
      seed: o.seed,
      maxCommands: o.maxCommands,
    });
    if (o.json) {
      write(`${JSON.stringify(summary, null, 2)}\n`);
    } else {
      write(
        [
          `model: ${summary.runs} runs, seed ${summary.seed}, PostgreSQL ${server.version}`,
          `  commands executed:     ${summary.commandsExecuted}`,
          `  distinct interleavings: ${summary.distinctInterleavings}`,
          `  invariant checks:      ${summary.invariantChecks} (${summary.realLogins} real logins)`,
          `  endings:               ${JSON.stringify(summary.endings)}`,
          `  final generations:     ${JSON.stringify(summary.finalGenerations)}`,
          `  invocations:           ${JSON.stringify(summary.invocations)}`,
          `  failures:              ${summary.failures.length}`,
          ...summary.failures.map(
            (f) => `    seed ${f.seed} path ${f.path}\n    ${f.error}\n    ${f.counterexample}`,
          ),
          `  wall time:             ${summary.wallSeconds} s`,
          '',
        ].join('\n'),
      );
    }
    return summary.failures.length === 0 ? 0 : 1;
  } finally {
    restoreSdkStubs();
    await server.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`model: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(2);
  },
);
