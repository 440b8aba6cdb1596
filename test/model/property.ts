/**
 * The model-based property and its runner, shared by the CI budget in `npm test`
 * (test/model/model.test.ts) and the long run (`npm run model`, test/model/run.ts).
 *
 * One run: a fresh world (database, secret, fleet) with a random registry and gate bound, a random
 * command sequence with every invariant checked after each command, then the world quiesces (faults
 * stop, hung processes resume, the clock runs on, Secrets Manager retries) and invariant 7 is
 * checked: every rotation ends promoted, aborted, or held with a typed reason `converge status`
 * shows, and nothing is half-done.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { HEALTH_EXIT_CODES } from '../../cli/commands/status';
import type { LocalPostgres } from '../../cli/local/postgres';
import type { Step } from '../../lambda/rotation';
import { ConvergeError, RevocationBlockedError } from '../../lambda/shared/errors';
import type { ConsumerRegistration } from '../../lambda/shared/registry';
import { clearCapturedOutput } from '../support/captured-output';
import { commandArbs, type Focus, type Real } from './commands';
import { LiveProcess, ScheduledJob } from './consumers';
import { ModelDatabase } from './database';
import { outage } from './faults';
import { Checker, checkCounts, InvariantViolation, Ledger } from './invariants';
import { World } from './world';

/** The registries a run draws from: always a live consumer, the others optional. */
export const registryArb: fc.Arbitrary<ConsumerRegistration[]> = fc
  .record({ worker: fc.boolean(), job: fc.boolean(), legacy: fc.boolean() })
  .map(({ worker, job, legacy }) => [
    { name: 'web', mode: 'live' as const, maxStalenessSeconds: 60 },
    ...(worker ? [{ name: 'worker', mode: 'live' as const, maxStalenessSeconds: 60 }] : []),
    ...(job ? [{ name: 'nightly', mode: 'scheduled' as const, maxStalenessSeconds: 600 }] : []),
    ...(legacy
      ? [{ name: 'legacy', mode: 'restart-only' as const, maxStalenessSeconds: 120 }]
      : []),
  ]);

/** Counters of a model run. */
export interface ModelStats {
  runs: number;
  commands: number;
  invariantChecks: number;
  logins: number;
  readonly interleavings: Set<string>;
  /** Rotations that ended promoted / aborted / held after quiescence. */
  readonly endings: Record<string, number>;
  /** Invocations by step and outcome (`setSecret: RevocationBlockedError`, `finishSecret: ok`...). */
  readonly invocations: Record<string, number>;
  /** Generation of AWSCURRENT at the end of each run, by value. */
  readonly finalGenerations: Record<string, number>;
}

export function newStats(): ModelStats {
  return {
    runs: 0,
    commands: 0,
    invariantChecks: 0,
    logins: 0,
    interleavings: new Set(),
    endings: {},
    invocations: {},
    finalGenerations: {},
  };
}

const QUIESCE_ROUNDS = 6;
/** Per round: processes act every 40 virtual seconds (within the 60 s freshness of live consumers) for 240 s. */
const TICKS_PER_ROUND = 6;
const QUIESCE_TICK_SECONDS = 40;

/**
 * What still holds a rotation that only the guard holds: consumers and sessions other than a
 * restart-only service's (which cannot move until someone restarts it). Empty: the hold is final
 * and legitimate.
 */
async function unexplainedHolders(r: Real, err: RevocationBlockedError): Promise<string[]> {
  const restartOnly = new Set(
    r.world.options.registry.filter((c) => c.mode === 'restart-only').map((c) => c.name),
  );
  const sessions = await r.checker.sessionsOf(err.username);
  return [
    ...err.blocking.filter((b) => !restartOnly.has(b.consumer)).map((b) => b.consumer),
    ...sessions
      .filter((s) => ![...restartOnly].some((name) => s.application_name.startsWith(`${name}#`)))
      .map((s) => `session ${s.application_name}`),
  ];
}

/**
 * Faults stop and the clock runs on; Secrets Manager retries the waiting rotation (from the step it
 * had reached) every few minutes. Returns how the rotation ended.
 */
async function quiesce(r: Real): Promise<string> {
  const { world, ledger } = r;
  outage.databaseDown = false;
  for (const p of world.processes) {
    if (p instanceof LiveProcess) {
      await p.resume();
      p.release();
    }
  }
  if (ledger.abortIncomplete) {
    // The operator runs the abort again (here: its re-drive), as the CLI tells them to.
    await world.invoke({ converge: 'redrive', SecretId: world.secretArn }, undefined, 'redrive');
    ledger.abortIncomplete = false;
  }
  let lastError: Error | undefined;
  for (let round = 0; round < QUIESCE_ROUNDS; round++) {
    const token = world.waitingToken();
    if (!token) break;
    world.beginCommand();
    for (let t = 0; t < TICKS_PER_ROUND; t++) {
      await world.tick(QUIESCE_TICK_SECONDS);
      if (t === 0) for (const p of world.processes) if (p instanceof ScheduledJob) await p.run();
    }
    // Judged from here: the retry below is what may change a password, at this virtual time.
    await r.checker.before({ reread: true });
    lastError = undefined;
    // Secrets Manager's retry brings the steps up to setSecret; from there the gate's re-drive
    // completes the rotation (it checks the evidence once, without waiting at the gate).
    const hasValue = world.versions().find((v) => v.id === token)?.secret !== undefined;
    const steps: Step[] = ledger.setSecretDone.has(token)
      ? []
      : [...(hasValue ? [] : (['createSecret'] as Step[])), 'setSecret'];
    for (const step of steps) {
      const record = await world.invoke({
        Step: step,
        SecretId: world.secretArn,
        ClientRequestToken: token,
      });
      if (record.outcome !== 'ok') {
        lastError = record.error;
        break;
      }
      if (step === 'setSecret') ledger.setSecretDone.add(token);
    }
    if (!lastError) {
      const redrive = await world.invoke(
        { converge: 'redrive', SecretId: world.secretArn },
        undefined,
        'redrive',
      );
      if (redrive.outcome === 'error') lastError = redrive.error;
      else if (redrive.result === 'held')
        lastError = new Error('the re-drive found the live consumers not moved (held)');
    }
    await world.queryRound();
    await r.checker.after();
    // A hold only a restart can end does not end by waiting longer.
    if (
      lastError instanceof RevocationBlockedError &&
      (await unexplainedHolders(r, lastError)).length === 0
    )
      break;
  }
  const waiting = world.waitingToken();
  if (!waiting) {
    return ledger.aborted.size > 0 && ledger.currentHistory.length === 1
      ? 'aborted'
      : 'promoted-or-idle';
  }
  // Once faults stopped and every live process moved, only a consumer that cannot move by itself (a
  // restart-only service nobody restarted) may still hold a rotation, and only the guard may hold it.
  if (!(lastError instanceof RevocationBlockedError)) {
    throw new InvariantViolation(
      7,
      `rotation ${waiting} is still waiting after the world quiesced: ${lastError ? `${lastError.name}: ${lastError.message}` : 'no error'}`,
    );
  }
  const holders = await unexplainedHolders(r, lastError);
  if (holders.length > 0) {
    throw new InvariantViolation(
      7,
      `rotation ${waiting} is still held after the world quiesced by ${holders.join(', ')}: ${lastError.message}`,
    );
  }
  const status = await world.cli(['status', world.secretArn]);
  // A waiting rotation is HOLDING for scripts (exit 3, see HEALTH_EXIT_CODES in cli/commands/status.ts).
  if (status.code !== HEALTH_EXIT_CODES.holding || !status.out.includes('rotation waiting')) {
    throw new InvariantViolation(
      7,
      `rotation ${waiting} is held (${lastError!.name}) but \`converge status\` does not show it waiting (exit ${status.code})`,
    );
  }
  return `held: ${lastError!.name}`;
}

export interface PropertyOptions {
  readonly database: ModelDatabase;
  readonly stats: ModelStats;
  /** Longest command sequence. */
  readonly maxCommands: number;
  /** What the commands concentrate on. @default 'all' */
  readonly focus?: Focus;
}

/**
 * The property: for every registry, gate bound and command sequence, every invariant holds after
 * every command and after quiescence.
 *
 * @example
 * const details = await fc.check(modelProperty({ server, stats, maxCommands: 25 }), { numRuns: 200, seed: 42 });
 */
export function modelProperty(options: PropertyOptions) {
  const { database, stats } = options;
  return fc.asyncProperty(
    registryArb,
    fc.constantFrom(60, 120, 300),
    fc.integer({ min: 1, max: 2 }),
    fc.commands(commandArbs(options.focus), { maxCommands: options.maxCommands, size: 'max' }),
    async (registry, gateMaxWaitSeconds, liveProcesses, cmds) => {
      stats.runs++;
      outage.databaseDown = false;
      const world = await World.create({
        database,
        registry,
        liveProcesses,
        gateMaxWaitSeconds,
        tag: randomBytes(4).toString('hex'),
      });
      const ledger = new Ledger();
      const checker = await Checker.open(world, ledger);
      const real: Real = { world, ledger, checker, service: { seen: [] }, executed: 0 };
      const checksBefore = checkCounts.checks;
      try {
        await fc.asyncModelRun(() => ({ model: {}, real }), cmds);
        const ending = await quiesce(real);
        stats.endings[ending] = (stats.endings[ending] ?? 0) + 1;
        stats.interleavings.add(
          [...cmds].map((c) => c.toString().replace(/[#(].*$/, '')).join(' > '),
        );
      } finally {
        stats.commands += real.executed;
        for (const i of world.invocations) {
          const what =
            i.outcome === 'error'
              ? i.error instanceof ConvergeError
                ? i.error.name
                : `untyped ${i.error!.name}: ${i.error!.message.slice(0, 80)}`
              : i.outcome === 'ok' && typeof i.result === 'string'
                ? i.result
                : i.outcome;
          const key = `${i.label}: ${what}`;
          stats.invocations[key] = (stats.invocations[key] ?? 0) + 1;
        }
        const generation = String(world.versionAt('AWSCURRENT')?.secret?.generation ?? '?');
        stats.finalGenerations[generation] = (stats.finalGenerations[generation] ?? 0) + 1;
        stats.invariantChecks += checkCounts.checks - checksBefore;
        outage.databaseDown = false;
        await checker.close();
        await world.dispose();
        clearCapturedOutput();
      }
    },
  );
}

/** What a model run reports (`npm run model -- --json` prints it). */
export interface ModelSummary {
  readonly runs: number;
  readonly seed: number;
  readonly commandsExecuted: number;
  readonly distinctInterleavings: number;
  readonly invariantChecks: number;
  readonly realLogins: number;
  readonly endings: Record<string, number>;
  readonly invocations: Record<string, number>;
  readonly finalGenerations: Record<string, number>;
  readonly failures: { seed: number; path?: string; counterexample: string; error: string }[];
  readonly wallSeconds: number;
  /** The interleavings themselves (command kinds in order), for merging shards; not printed. */
  readonly interleavingKeys?: readonly string[];
}

/**
 * Runs `runs` sequences from `seed` and summarizes; a failure carries fast-check's shrunk
 * counterexample, its seed and replay path.
 *
 * @example
 * const summary = await runModel({ server, runs: 200, seed: 42, maxCommands: 25 });
 */
export async function runModel(options: {
  server: LocalPostgres;
  runs: number;
  seed: number;
  maxCommands: number;
  focus?: Focus;
}): Promise<ModelSummary> {
  const stats = newStats();
  const database = await ModelDatabase.create(options.server);
  const started = Date.now();
  const loginsBefore = checkCounts.logins;
  const details = await fc
    .check(
      modelProperty({
        database,
        stats,
        maxCommands: options.maxCommands,
        focus: options.focus,
      }),
      {
        numRuns: options.runs,
        seed: options.seed,
      },
    )
    .finally(() => database.drop());
  const failures = details.failed
    ? [
        {
          seed: details.seed,
          path: details.counterexamplePath ?? undefined,
          counterexample: fc.stringify(details.counterexample),
          error:
            details.errorInstance instanceof Error
              ? `${details.errorInstance.name}: ${details.errorInstance.message}`
              : String(details.errorInstance),
        },
      ]
    : [];
  return {
    runs: details.numRuns,
    seed: options.seed,
    commandsExecuted: stats.commands,
    distinctInterleavings: stats.interleavings.size,
    invariantChecks: stats.invariantChecks,
    realLogins: checkCounts.logins - loginsBefore,
    endings: stats.endings,
    invocations: stats.invocations,
    finalGenerations: stats.finalGenerations,
    failures,
    wallSeconds: Math.round((Date.now() - started) / 100) / 10,
    interleavingKeys: [...stats.interleavings],
  };
}

function addCounts(
  into: Record<string, number>,
  from: Record<string, number>,
): Record<string, number> {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
  return into;
}

/**
 * One summary from the shards' summaries (each shard ran its own seed on its own database).
 *
 * @example
 * const total = mergeSummaries(seed, [a, b], wallSeconds);
 */
export function mergeSummaries(
  seed: number,
  parts: readonly ModelSummary[],
  wallSeconds: number,
): ModelSummary {
  const keys = new Set(parts.flatMap((p) => p.interleavingKeys ?? []));
  return {
    runs: parts.reduce((n, p) => n + p.runs, 0),
    seed,
    commandsExecuted: parts.reduce((n, p) => n + p.commandsExecuted, 0),
    distinctInterleavings: keys.size,
    invariantChecks: parts.reduce((n, p) => n + p.invariantChecks, 0),
    realLogins: parts.reduce((n, p) => n + p.realLogins, 0),
    endings: parts.reduce((acc, p) => addCounts(acc, p.endings), {} as Record<string, number>),
    invocations: parts.reduce(
      (acc, p) => addCounts(acc, p.invocations),
      {} as Record<string, number>,
    ),
    finalGenerations: parts.reduce(
      (acc, p) => addCounts(acc, p.finalGenerations),
      {} as Record<string, number>,
    ),
    failures: parts.flatMap((p) => p.failures),
    wallSeconds,
  };
}
