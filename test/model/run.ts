/**
 * `npm run model -- --runs N [--seed S] [--max-commands M] [--workers W] [--json]`: the model-based
 * test at any budget, outside jest. Starts one PostgreSQL (CONVERGE_PG_MAJOR picks the major,
 * default 18) and W worker processes (default: one per core, at most 2). The N command sequences
 * go out in chunks of 100, chunk i from seed S + i, so the same N and S run the same sequences
 * whatever W is. Each chunk runs on a database of its own; a worker process is replaced after 500
 * runs. Prints runs, commands executed, distinct interleavings, invariant checks, failures (with
 * fast-check's shrunk counterexample, the seed and the replay path) and wall time. Exits 1 when an
 * invariant broke.
 *
 * To replay a failure, run its chunk's seed alone: `npm run model -- --runs 100 --seed <seed> --workers 1`.
 *
 * Like the jest setup (test/support/setup-env.ts), it sends every SDK client that is not answered
 * by a model to a closed port, so nothing can reach AWS.
 */
import { fork, type ChildProcess } from 'node:child_process';
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

/** Runs per chunk: chunk i runs this many sequences from seed S + i. */
const CHUNK_RUNS = 100;
/** Runs after which a worker process is replaced (its heap grows by about a megabyte per run). */
const WORKER_RUNS = 500;

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

/** What the parent sends a worker: one chunk to run, or `{ done: true }` when there is no more work. */
interface ChunkRequest {
  readonly runs: number;
  readonly seed: number;
}

/** A worker: runs the chunks the parent sends against the parent's server, one at a time. */
function worker(server: LocalPostgres, o: Options): Promise<void> {
  installOutputCapture();
  return new Promise((resolve, reject) => {
    process.on('message', (m: ChunkRequest | { done: true }) => {
      if ('done' in m) {
        restoreSdkStubs();
        resolve();
        return;
      }
      runModel({ server, runs: m.runs, seed: m.seed, maxCommands: o.maxCommands }).then(
        (summary) => process.send!(summary),
        reject,
      );
    });
  });
}

/** A worker process seen from the parent. */
class WorkerProcess {
  public runsDone = 0;
  private readonly child: ChildProcess;
  private pending?: { resolve: (s: ModelSummary) => void; reject: (e: Error) => void };
  private exited = false;

  public constructor(server: LocalPostgres, o: Options) {
    const info: Omit<LocalPostgres, 'stop'> = {
      host: server.host,
      port: server.port,
      major: server.major,
      version: server.version,
      superuser: server.superuser,
      caBundlePath: server.caBundlePath,
      tls: server.tls,
    };
    const args = ['--max-commands', String(o.maxCommands), '--workers', '1'];
    this.child = fork(__filename, args, {
      env: { ...process.env, [SERVER_ENV]: JSON.stringify(info) },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    this.child.on('message', (m) => {
      const p = this.pending;
      this.pending = undefined;
      p?.resolve(m as ModelSummary);
    });
    this.child.on('exit', (code) => {
      this.exited = true;
      this.pending?.reject(new Error(`model worker exited with ${code} in the middle of a chunk`));
      this.pending = undefined;
    });
  }

  public run(chunk: ChunkRequest): Promise<ModelSummary> {
    if (this.exited) return Promise.reject(new Error('model worker has exited'));
    this.runsDone += chunk.runs;
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.child.send(chunk);
    });
  }

  public stop(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.send({ done: true });
    });
  }
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
    // Chunks of CHUNK_RUNS, chunk i from seed S + i; each worker takes the next chunk when it is
    // free, and is replaced after WORKER_RUNS runs.
    const chunks = Array.from({ length: Math.ceil(o.runs / CHUNK_RUNS) }, (_, i) => ({
      runs: Math.min(CHUNK_RUNS, o.runs - i * CHUNK_RUNS),
      seed: o.seed + i,
    }));
    const workers = Math.min(o.workers, chunks.length);
    const parts: ModelSummary[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        let w: WorkerProcess | undefined;
        try {
          for (let i = next++; i < chunks.length; i = next++) {
            if (!w || w.runsDone >= WORKER_RUNS) {
              await w?.stop();
              w = new WorkerProcess(server, o);
            }
            parts.push(await w.run(chunks[i]));
          }
        } finally {
          await w?.stop();
        }
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
