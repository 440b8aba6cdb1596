/**
 * What the next rotation's revocation guard would decide about the consumers right now, and, when
 * it would hold, what it waits for in plain words. `converge rotate` asks before it starts a
 * rotation (cli/commands/rotate.ts), so that a rotation is not started only to fail in setSecret
 * with a guard error.
 *
 * The same inputs as the guard in the function (lambda/rotation/revocation-guard.ts): the registry
 * and metric namespace from the rotation function's environment, `LoadedGeneration` read with the
 * Minimum and Maximum (`readGenerations`), AWSCURRENT's generation, and the abort record
 * (`converge:aborted`, lambda/rotation/aborted.ts), decided by `decideRevocation`. The guard's other
 * half, the previous user's open sessions, needs the master's login and is not checked here: the
 * function still counts them.
 *
 * No password is read or printed: AWSCURRENT's generation comes from the version's record tag
 * (`converge:version:<versionId>`, written by the function) when there is one, else from
 * GetSecretValue of AWSCURRENT, of which only `generation` is kept.
 */
import { readAbortRecord, type AbortRecord } from '../../lambda/rotation/aborted';
import {
  decideRevocation,
  type ConsumerEvidence,
  type GateDecision,
} from '../../lambda/rotation/gates/decision';
import { readGenerations, type CostedReadout } from '../../lambda/rotation/gates/read-generations';
import { ConvergeError, type StaleConsumer } from '../../lambda/shared/errors';
import {
  REVOCATION_STATISTICS,
  secretNameDimension,
} from '../../lambda/shared/metric-contract';
import type { ConsumerRegistration } from '../../lambda/shared/registry';
import type { CliClients } from '../clients';
import { readFunctionSettings } from './function-settings';
import type { SecretState } from './secret-state';

/** How far back consumers are read (for the last data point of a silent one), as `converge status` does. */
const LOOKBACK_SECONDS = 3600;

/** The guard's verdict as the CLI can know it. */
export interface GuardOutlook {
  /** `unknown`: something needed could not be read (see `error`); the function decides alone. */
  readonly verdict: 'admit' | 'hold' | 'unknown';
  /** AWSCURRENT's generation, when known. */
  readonly currentGeneration?: number;
  /** The last abort, when recorded. */
  readonly aborted?: AbortRecord;
  /** What blocks, each with what it waits for in plain words (empty unless `hold`). */
  readonly waits: readonly { readonly blocking: StaleConsumer; readonly text: string }[];
  /** Why the outlook is `admit` without a decision, or what could not be read. */
  readonly note?: string;
  readonly error?: string;
  readonly decision?: GateDecision;
}

/**
 * @example
 * const o = await revocationOutlook(clients, state, Date.now());
 * if (o.verdict === 'hold') for (const w of o.waits) console.error(w.text);
 */
export async function revocationOutlook(
  clients: CliClients,
  state: SecretState,
  now: number,
): Promise<GuardOutlook> {
  const aborted = readAbortRecord(state.description);
  // The first rotation creates the alternate user: there is nothing to revoke, no guard runs. Unless
  // an aborted rotation got as far as setSecret: then the alternate user exists without AWSPREVIOUS,
  // and the function's guard does run (on whoever adopted that aborted credential).
  if (!state.previous && !aborted)
    return {
      verdict: 'admit',
      aborted,
      waits: [],
      note: 'no AWSPREVIOUS and no aborted rotation yet: the guard does not run',
    };
  let registry: readonly ConsumerRegistration[];
  let namespace: string;
  let current: number;
  let readout: CostedReadout;
  try {
    ({ registry, namespace } = await readFunctionSettings(clients, state.rotationLambdaArn));
    if (registry.length === 0)
      return { verdict: 'admit', aborted, waits: [], note: 'no consumer is registered' };
    current = await currentGeneration(state);
    readout = await readGenerations(clients.cw, {
      namespace,
      secretName: secretNameDimension(state.name),
      consumers: registry,
      now,
      lookbackSeconds: LOOKBACK_SECONDS,
      statistics: REVOCATION_STATISTICS,
    });
  } catch (err) {
    return {
      verdict: 'unknown',
      aborted,
      waits: [],
      error: `${(err as Error).name}: ${(err as Error).message}`,
    };
  }
  const decision = decideRevocation(registry, readout, { current, aborted });
  const waits = decision.blocking.map((b) => ({
    blocking: b,
    text: waitingFor(
      b,
      decision.consumers.find((c) => c.consumer === b.consumer)!,
      readout,
      current,
      aborted,
    ),
  }));
  return {
    verdict: decision.admit ? 'admit' : 'hold',
    currentGeneration: current,
    aborted,
    waits,
    decision,
  };
}


/**
 * AWSCURRENT's generation, from the rotation function's record (no secret value is read: the operator
 * grant has no GetSecretValue). A secret last rotated before the records existed has none: the check
 * then cannot decide, and says so.
 */
async function currentGeneration(state: SecretState): Promise<number> {
  const g = state.current?.generation;
  if (g === undefined) {
    throw new ConvergeError(
      "AWSCURRENT's generation is not recorded on the secret yet (the next rotation's createSecret records it)",
    );
  }
  return g;
}

/** What one blocking consumer waits for, in the words an operator needs at 2 a.m. */
function waitingFor(
  b: StaleConsumer,
  e: ConsumerEvidence,
  readout: CostedReadout,
  current: number,
  aborted: AbortRecord | undefined,
): string {
  const window = `its ${e.maxStalenessSeconds} s freshness window`;
  const ago = (t: number) => `${Math.max(0, Math.round((readout.now - t) / 1000))} s ago`;
  const clock = (t: number) => new Date(t).toISOString().slice(11, 19) + 'Z';
  const periodMs = e.period * 1000;
  // The newest bucket holding `g`, and when it leaves the freshness window (if nothing newer holds g).
  const newestWith = (g: number) =>
    (readout.series.get(b.consumer) ?? [])
      .filter((p) => p.minimum === g || p.maximum === g)
      .reduce<number | undefined>(
        (t, p) => (t === undefined || p.timestamp > t ? p.timestamp : t),
        undefined,
      );
  const clears = (bucket: number) => {
    const at = bucket + periodMs + e.maxStalenessSeconds * 1000;
    return `that data leaves ${window} at ${clock(at)}, in ${Math.max(0, Math.ceil((at - readout.now) / 1000))} s`;
  };
  switch (b.reason) {
    case 'ahead': {
      const g = b.lastGeneration!;
      const bucket = newestWith(g);
      const when = bucket === undefined ? 'recently' : `in the ${e.period} s from ${clock(bucket)}`;
      if (aborted && g === aborted.generation) {
        const since = (readout.series.get(b.consumer) ?? []).some((p) => p.timestamp >= aborted.at);
        return (
          `waiting for ${b.consumer} to report generation ${current} after the abort at ${clock(aborted.at)} ` +
          `(it still reported ${g}, the aborted rotation's, ${when}${since ? '' : `, and nothing since the abort`}; ` +
          `live consumers move within their refresh interval` +
          `${bucket === undefined ? '' : `; once it has, ${clears(bucket)}`})`
        );
      }
      return (
        `waiting for ${b.consumer} to stop reporting generation ${g} (last ${when}): newer than current ${current} ` +
        'and not a rotation in progress, so a burnt credential of an aborted rotation, on the very user the next ' +
        `rotation overwrites; its processes move at their next refresh${bucket === undefined ? '' : `; then ${clears(bucket)}`}`
      );
    }
    case 'stale': {
      const how =
        e.mode === 'live'
          ? 'a live consumer moves within its refresh interval'
          : e.mode === 'scheduled'
            ? 'a scheduled job moves at its next run'
            : `a restart-only consumer moves only when restarted: restart ${b.consumer}`;
      return `waiting for ${b.consumer} to report generation ${current} (it still reports ${b.lastGeneration}; ${how}, and its old data then leaves ${window})`;
    }
    case 'silent':
      return (
        `${b.consumer} has not reported within ${window}` +
        `${e.lastSeen ? ` (last: generation ${e.lastSeen.generation}, ${ago(e.lastSeen.timestamp)})` : ' (no data in the last hour)'}: ` +
        'nothing shows it off the previous user; start its reporter, or remove it from the registry if it is gone'
      );
    default:
      return `${b.consumer}: CloudWatch could not be read for it`;
  }
}
