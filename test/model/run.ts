/**
 * `npm run model -- --runs N [--seed S] [--max-commands M] [--workers W] [--json]`: the model-based
 * test at any budget, outside jest. Starts one PostgreSQL (CONVERGE_PG_MAJOR picks the major,
 * default 18) and W worker processes at a time (default: one per core, at most 2). The N command
 * sequences go out in chunks of at most 500, chunk i from seed S + i, each in a fresh worker on its
 * own database. Prints runs, commands executed,
 * distinct interleavings, invariant checks, failures (with fast-check's shrunk counterexample, the
 * seed and the replay path) and wall time. Exits 1 when an invariant broke.
 *
 * To replay a failure, run its chunk's seed with one worker: `npm run model -- --runs R --seed <seed> --workers 1`.
 *
 * Like the jest setup (test/support/setup-env.ts), it sends every SDK client that is not answered
 * by a model to a closed port, so nothing can reach AWS.
 */
import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { Command, Option } from 'commander';
import { startLocalPostgres, type LocalPostgres } from '../../cli/local/postgres';
import { installOutputCapture } from '../support/captured-output';
import { mergeSummaries, runModel, type ModelSummary } from './property';
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

/** Most runs one worker process makes before a fresh one takes over. */
const CHUNK_RUNS = 500;

/** Set in a worker: the parent's server, as JSON (without `stop`). */
const SERVER_ENV = 'CONVERGE_MODEL_SERVER';

interface Options {
  runs: number;
  seed: number;
  maxCommands: number;
  workers: number;
  json?: boolean;
}

function options(): Options {
  const program = new Command('model')
    .addOption(new Option('--runs <n>', 'command sequences to run').default(200).argParser(Number))
    .addOption(
      new Option('--seed <s>', 'fast-check seed (worker i uses seed + i)')
        .default(Date.now() % 2 ** 31)
        .argParser(Number),
    )
    .addOption(
      new Option('--max-commands <m>', 'longest command sequence').default(20).argParser(Number),
    )
    .addOption(
      new Option('--workers <w>', 'worker processes')
        .default(Math.min(2, availableParallelism()))
        .argParser(Number),
    )
    .option('--json', 'print the summary as JSON')
    .parse(process.argv);
  const o = program.opts<Options>();
  const checks: [string, number, number][] = [
    ['runs', o.runs, 1],
    ['seed', o.seed, 0],
    ['max-commands', o.maxCommands, 1],
    ['workers', o.workers, 1],
  ];
  for (const [name, value, min] of checks) {
    if (!Number.isInteger(value) || value < min)
      throw new Error(`--${name} must be an integer of at least ${min}, got ${value}`);
  }
  return o;
}

/** A worker: runs its share against the parent's server and sends the summary back. */
async function worker(server: LocalPostgres, o: Options): Promise<void> {
  installOutputCapture();
  try {
    const summary = await runModel({
      server,
      runs: o.runs,
      seed: o.seed,
      maxCommands: o.maxCommands,
    });
    await new Promise<void>((resolve) => process.send!(summary, () => resolve()));
  } finally {
    restoreSdkStubs();
  }
}

function runWorker(
  server: LocalPostgres,
  o: Options,
  runs: number,
  seed: number,
): Promise<ModelSummary> {
  const info: Omit<LocalPostgres, 'stop'> = {
    host: server.host,
    port: server.port,
    major: server.major,
    version: server.version,
    superuser: server.superuser,
    caBundlePath: server.caBundlePath,
    tls: server.tls,
  };
  const args = [
    '--runs',
    String(runs),
    '--seed',
    String(seed),
    '--max-commands',
    String(o.maxCommands),
    '--workers',
    '1',
  ];
  const child = fork(__filename, args, {
    env: { ...process.env, [SERVER_ENV]: JSON.stringify(info) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    let summary: ModelSummary | undefined;
    child.on('message', (m) => (summary = m as ModelSummary));
    child.on('exit', (code) =>
      summary
        ? resolve(summary)
        : reject(new Error(`model worker (seed ${seed}) exited with ${code} and no summary`)),
    );
  });
}

function print(summary: ModelSummary, o: Options, version: string): void {
  const write = (t: string) => process.stdout.write(t);
  if (o.json) {
    const shown = { ...summary, interleavingKeys: undefined };
    write(
      `${JSON.stringify({ ...shown, workers: o.workers, maxCommands: o.maxCommands, postgres: version }, null, 2)}\n`,
    );
    return;
  }
  write(
    [
      `model: ${summary.runs} runs, seed ${summary.seed} (${o.workers} workers), PostgreSQL ${version}`,
      `  commands executed:      ${summary.commandsExecuted}`,
      `  distinct interleavings: ${summary.distinctInterleavings}`,
      `  invariant checks:       ${summary.invariantChecks} (${summary.realLogins} real logins)`,
      `  endings:                ${JSON.stringify(summary.endings)}`,
      `  final generations:      ${JSON.stringify(summary.finalGenerations)}`,
      `  invocations:            ${JSON.stringify(summary.invocations)}`,
      `  failures:               ${summary.failures.length}`,
      ...summary.failures.map(
        (f) => `    seed ${f.seed} path ${f.path}\n    ${f.error}\n    ${f.counterexample}`,
      ),
      `  wall time:              ${summary.wallSeconds} s`,
      '',
    ].join('\n'),
  );
}

async function main(): Promise<number> {
  const o = options();
  const shared = process.env[SERVER_ENV];
  if (shared) {
    await worker({ ...(JSON.parse(shared) as LocalPostgres), stop: async () => undefined }, o);
    return 0;
  }
  const started = Date.now();
  const server = await startLocalPostgres();
  try {
    // Runs go out in chunks of at most CHUNK_RUNS, each in a fresh worker process with seed S + i
    // (a worker's heap grows by about a megabyte per run), W chunks at a time.
    const workers = Math.min(o.workers, o.runs);
    // Every worker gets work: at least one chunk per worker, the runs shared out evenly.
    const count = Math.max(workers, Math.ceil(o.runs / CHUNK_RUNS));
    const chunks = Array.from(
      { length: count },
      (_, i) => Math.floor(o.runs / count) + (i < o.runs % count ? 1 : 0),
    );
    const parts: ModelSummary[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        for (let i = next++; i < chunks.length; i = next++)
          parts.push(await runWorker(server, o, chunks[i], o.seed + i));
      }),
    );
    const summary = mergeSummaries(o.seed, parts, Math.round((Date.now() - started) / 100) / 10);
    print(summary, { ...o, workers }, server.version);
    return summary.failures.length === 0 ? 0 : 1;
  } finally {
    await server.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`model: ${(err as Error).message}\n`);
    process.exit(2);
  },
);
