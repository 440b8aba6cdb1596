/**
 * Drill scenarios: the 2 a.m. pages a team rehearses (`converge drill --scenario <name>`). Each
 * scenario is a small file in ./scenarios/ that breaks one consumer on a {@link Stand}, captures
 * `converge status` during the hold it causes, plays the operator (the action status names), and
 * ends. {@link runScenario} runs one and returns its {@link ScenarioReport} (JSON): who blocked
 * (with processes), the status captured during the hold, what the operator did, each rotation, and
 * the final state.
 */
import { ConvergeError } from '../../lambda/shared/errors';
import type { StatusReport } from '../commands/status';
import type { LambdaModel } from '../local/lambda-model';
import type { LocalPostgres } from '../local/postgres';
import type { SecretsManagerModel } from '../local/secrets-manager-model';
import type { DrillConsumer, DrillProcess } from './consumers';
import { DRILL_STALENESS_SECONDS } from './drill';
import type { ScenarioName } from './scenario-names';
import type { GuardHold } from './service-retry';
import { openStand, type FinalState, type Stand, type StandRotation } from './stand';
import {
  blockingConsumers,
  hasContract,
  nextAction,
  rotationState,
  type StatusProcess,
} from './status-view';

export { SCENARIO_NAMES, type ScenarioName } from './scenario-names';

/** The four consumers every scenario starts with (as the default drill). */
export const SCENARIO_CONSUMERS: readonly DrillConsumer[] = [
  { name: 'drill-live-1', mode: 'live' },
  { name: 'drill-live-2', mode: 'live' },
  { name: 'drill-scheduled-3', mode: 'scheduled' },
  { name: 'drill-restart-only-4', mode: 'restart-only' },
];

/** A scenario on the stand. */
export interface Scenario {
  readonly name: Exclude<ScenarioName, 'healthy'>;
  /** One line: what breaks. */
  readonly summary: string;
  /** What will happen, printed before PostgreSQL starts. */
  readonly plan: readonly string[];
  run(stand: Stand, ctx: ScenarioContext): Promise<void>;
}

/** A consumer the captured status named as blocking, with its processes. */
export interface BlockingConsumer {
  readonly consumer: string;
  readonly blocks?: 'promotion' | 'revocation';
  readonly reason?: string;
  /** Stale since / silent since, as status shows it. */
  readonly since?: string;
  /** From the status report when it lists them, else as the drill knows them (`source`). */
  readonly processes: readonly (StatusProcess | DrillProcess)[];
  readonly source: 'status' | 'drill';
}

/** One capture of `converge status` at a hold, summarised (the full report is in `statusDuringHold`). */
export interface HoldCapture {
  readonly atSeconds: number;
  readonly rotationState: string;
  readonly blocking: readonly string[];
  readonly nextAction?: { kind: string; command?: string; consumer?: string };
  readonly health: string;
}

export interface OperatorAction {
  readonly atSeconds: number;
  readonly action: string;
  /** The converge command, or what was restarted. */
  readonly command: string;
}

export interface ScenarioRotation {
  readonly rotation: number;
  readonly versionId: string;
  readonly emergency: boolean;
  readonly ok: boolean;
  readonly error?: string;
  /** `converge rotate` until DescribeSecret showed the version AWSCURRENT. */
  readonly timeToPromotionMs?: number;
  /** Refusals of its setSecret by the revocation guard (the service retried them). */
  readonly guardHolds: number;
}

export interface ScenarioReport {
  readonly scenario: ScenarioName;
  readonly summary: string;
  /** The scenario ended as it should (see `problems` otherwise). */
  readonly ok: boolean;
  readonly problems: readonly string[];
  readonly consumers: readonly DrillConsumer[];
  readonly blocking: readonly BlockingConsumer[];
  readonly holds: readonly HoldCapture[];
  /** The `converge status --sessions --json` reports captured during the hold(s). */
  readonly statusDuringHold: readonly StatusReport[];
  readonly operatorActions: readonly OperatorAction[];
  readonly rotations: readonly ScenarioRotation[];
  readonly guardHolds: readonly GuardHold[];
  /** Sessions the rotation function logged as terminated (emergency), as its log names them. */
  readonly terminatedSessions?: readonly Record<string, unknown>[];
  readonly final: FinalState;
  /** `converge status --sessions --json` once the scenario is over (absent if it could not be read: see `notes`). */
  readonly statusAtEnd?: StatusReport;
  readonly elapsedSeconds: number;
  readonly notes: readonly string[];
}

/** What a scenario records through, on top of the stand. */
export interface ScenarioContext {
  /**
   * Captures `converge status` until it shows `consumer` BLOCKING, and no other consumer unless
   * `alsoBlocking` (the consumers the scenario did not break have moved by then), and
   * `rotationState` when given; records the report and the blocking consumer, and prints the hold.
   */
  captureHold(
    label: string,
    consumer: string,
    options?: {
      rotationState?: string;
      timeoutMs?: number;
      alsoBlocking?: boolean;
      gate?: 'promotion' | 'revocation';
    },
  ): Promise<StatusReport>;
  /** Prints and records an operator action, then runs it. */
  operator<T>(action: string, command: string, act: () => Promise<T>): Promise<T>;
  /** Waits for a rotation to end and records it. */
  finishRotation(r: StandRotation, options?: { emergency?: boolean }): Promise<ScenarioRotation>;
  problem(text: string): void;
  note(text: string): void;
  /** Sets the report's terminated sessions. */
  terminated(sessions: readonly Record<string, unknown>[]): void;
}

export interface RunScenarioOptions {
  readonly secretsManagerModel: SecretsManagerModel;
  readonly lambdaModel: LambdaModel;
  /** @default - an embedded PostgreSQL */
  readonly database?: LocalPostgres;
  /** Live consumers' refresh interval, seconds. @default 1 */
  readonly refreshSeconds?: number;
  readonly onProgress?: (line: string) => void;
  /**
   * Runs after the report is made and before the stand closes (`--keep`: serve it until Ctrl-C).
   * @default - the stand closes at once
   */
  readonly keep?: (stand: Stand, report: ScenarioReport) => Promise<void>;
}

/**
 * Runs `scenario` on a new stand and returns its report; never throws for what the scenario finds
 * (a wait that timed out is a problem in the report).
 *
 * @example
 * const report = await runScenario(SCENARIOS['stuck-live'], { secretsManagerModel, lambdaModel });
 * report.blocking[0].consumer; // 'drill-live-2'
 */
export async function runScenario(
  scenario: Scenario,
  options: RunScenarioOptions,
): Promise<ScenarioReport> {
  const stand = await openStand({
    consumers: SCENARIO_CONSUMERS,
    refreshSeconds: options.refreshSeconds,
    database: options.database,
    secretsManagerModel: options.secretsManagerModel,
    lambdaModel: options.lambdaModel,
    onProgress: options.onProgress,
  });
  const problems: string[] = [];
  const notes: string[] = [];
  const blocking: BlockingConsumer[] = [];
  const holds: HoldCapture[] = [];
  const statusDuringHold: StatusReport[] = [];
  const operatorActions: OperatorAction[] = [];
  const rotations: ScenarioRotation[] = [];
  let terminatedSessions: readonly Record<string, unknown>[] | undefined;
  const ctx: ScenarioContext = {
    async captureHold(label, consumer, o = {}) {
      let report: StatusReport | undefined;
      const seen = () =>
        report
          ? `; the last status showed rotation ${rotationState(report)}, blocking [${blockingConsumers(
              report,
              o.gate,
            )
              .map((c) => c.name)
              .join(
                ', ',
              )}], promotion ${report.gates.promotion.verdict} (${report.gates.promotion.reasons.join('; ')}), revocation ${report.gates.revocation.verdict} (${report.gates.revocation.reasons.join('; ')})`
          : '';
      await stand
        .waitFor(
          `converge status to show ${consumer}${o.alsoBlocking ? '' : ' alone'} BLOCKING${o.rotationState ? ` (rotation ${o.rotationState})` : ''}`,
          async () => {
            report = await stand.status();
            const names = blockingConsumers(report, o.gate).map((c) => c.name);
            const blocked = names.includes(consumer) && (o.alsoBlocking || names.length === 1);
            // A report without the contract's rotation state cannot tell the holds apart: blocking is enough.
            return (
              blocked &&
              (!o.rotationState ||
                !hasContract(report) ||
                rotationState(report) === o.rotationState)
            );
          },
          o.timeoutMs ?? 60_000,
        )
        .catch((err: Error) => {
          throw new ConvergeError(`${err.message}${seen()}`);
        });
      const r = report!;
      const named = blockingConsumers(r, o.gate);
      for (const c of named) {
        if (blocking.some((b) => b.consumer === c.name)) continue;
        const fromStatus =
          c.processes ??
          (nextAction(r)?.consumer === c.name ? nextAction(r)?.processes : undefined);
        blocking.push({
          consumer: c.name,
          blocks: c.blocks,
          reason: c.reason,
          since: c.since,
          processes:
            fromStatus && fromStatus.length > 0 ? fromStatus : stand.consumer(c.name).processes(),
          source: fromStatus && fromStatus.length > 0 ? 'status' : 'drill',
        });
      }
      const action = nextAction(r);
      holds.push({
        atSeconds: stand.elapsedSeconds(),
        rotationState: rotationState(r),
        blocking: named.map((c) => c.name),
        nextAction: action
          ? { kind: action.kind, command: action.command, consumer: action.consumer }
          : undefined,
        health: r.health.state,
      });
      statusDuringHold.push(r);
      stand.phase(
        `${label}: ${named.map((c) => `${c.name} BLOCKING${c.reason ? ` (${c.reason})` : ''}`).join(', ')}${action ? `; status says: ${action.kind}${action.command ? ` (${action.command})` : ''}` : ''}`,
      );
      return r;
    },
    async operator(action, command, act) {
      operatorActions.push({ atSeconds: stand.elapsedSeconds(), action, command });
      stand.phase(`operator: ${action}`);
      return act();
    },
    async finishRotation(r, o = {}) {
      const record = await r.settled;
      const promotedAt = await r.promoted;
      const error = record?.error ? `${record.error.name}: ${record.error.message}` : undefined;
      const result: ScenarioRotation = {
        rotation: rotations.length + 1,
        versionId: r.versionId,
        emergency: o.emergency ?? false,
        ok: !error && promotedAt !== undefined,
        error,
        timeToPromotionMs: promotedAt ? promotedAt - r.startedAt : undefined,
        guardHolds: stand.guardHolds.filter((h) => h.versionId === r.versionId).length,
      };
      rotations.push(result);
      stand.phase(
        result.ok
          ? `rotation ${result.rotation} promoted after ${((result.timeToPromotionMs ?? 0) / 1000).toFixed(1)}s`
          : `rotation ${result.rotation} FAILED: ${error ?? 'not promoted'}`,
      );
      return result;
    },
    problem: (text) => void problems.push(text),
    note: (text) => void notes.push(text),
    terminated: (sessions) => void (terminatedSessions = sessions),
  };
  try {
    try {
      await scenario.run(stand, ctx);
    } catch (err) {
      problems.push(`${(err as Error).name}: ${(err as Error).message}`);
    }
    stand.phase(
      problems.length === 0
        ? 'scenario complete'
        : `scenario ended with ${problems.length} problem(s)`,
    );
    // The state the scenario leaves behind, once the consumers' older data points have left their
    // freshness window (up to 3 windows; whatever status says then is what is reported).
    let statusAtEnd: StatusReport | undefined;
    try {
      const until = Date.now() + 3 * DRILL_STALENESS_SECONDS * 1000;
      statusAtEnd = await stand.status();
      while (
        problems.length === 0 &&
        statusAtEnd.health.state !== 'healthy' &&
        Date.now() < until
      ) {
        await new Promise((r) => setTimeout(r, 1000));
        statusAtEnd = await stand.status();
      }
    } catch (err) {
      notes.push(
        `status at the end could not be read: ${(err as Error).name}: ${(err as Error).message}`,
      );
    }
    const report: ScenarioReport = {
      scenario: scenario.name,
      summary: scenario.summary,
      ok: problems.length === 0,
      problems,
      consumers: SCENARIO_CONSUMERS,
      blocking,
      holds,
      statusDuringHold,
      operatorActions,
      rotations,
      guardHolds: [...stand.guardHolds],
      terminatedSessions,
      final: await stand.finalState(),
      statusAtEnd,
      elapsedSeconds: stand.elapsedSeconds(),
      notes,
    };
    if (options.keep) await options.keep(stand, report);
    return report;
  } finally {
    await stand.close();
  }
}
