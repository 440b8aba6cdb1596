/**
 * Revocation guard: setSecret calls {@link revocationGuard} to overwrite the password of an existing
 * alternate user (the AWSPREVIOUS user). That change breaks every process still using the old
 * password at its next connect, so it needs evidence that nothing does:
 *
 * (a) every registered consumer, of any mode, is fresh and reports the current generation
 *     (silence blocks: it cannot prove that the old credential is unused; CloudWatch failing
 *     blocks: fail closed), and
 * (b) no session of that user is open, on the server the master is connected to or on any other
 *     member of the database (Aurora readers, read replicas).
 *
 * The order closes the race between the check and the change: consumers are checked and sessions
 * counted first (either blocks without changing anything); then the user's LOGIN is taken away and
 * committed (new connections are refused from then on); then the sessions are counted again; then
 * the password is set and LOGIN restored in one transaction. If the second count blocks, LOGIN is
 * restored and {@link RevocationBlockedError} names what still holds the credential. A client that
 * tries to log in with the old password in that short window is refused by design: the consumer
 * evidence and the first count already said nobody uses it.
 *
 * An emergency rotation (suspected compromise) does not wait: it logs what it overrides, terminates
 * the user's sessions everywhere and logs each one (pid, application_name, client address).
 */
import type { Client } from 'pg';
import { RevocationBlockedError, type StaleConsumer } from '../shared/errors';
import {
  REVOCATION_STATISTICS,
  REVOCATION_WINDOW_MS,
  SESSIONS_TERMINATED,
} from '../shared/metric-contract';
import { alternateUsername, type DbSecret } from '../shared/secret';
import { readAbortRecord } from './aborted';
import { withMasterSession } from './connections';
import type { StepContext } from './context';
import { emitFunctionMetric } from './function-metrics';
import { decideRevocation, type GateDecision } from './gates/decision';
import { consumerEvidence } from './gates/evidence';
import type { ScopedSession, SessionScope } from './gates/session-scope';
import { loadMaster } from './master-secret';
import { TAG_EMERGENCY } from './overrides';
import { lockGuard, restoreAbandonedLogin, setLogin, unlockGuard } from './roles';
import { readCurrent } from './secrets';

export interface RevocationGuardInput {
  /** The user whose password is about to be overwritten. */
  readonly username: string;
  /** The AWSCURRENT secret (its generation is what every consumer must report). */
  readonly current: DbSecret;
  /** This rotation's AWSPENDING secret (a consumer already on it is fine). */
  readonly pending?: DbSecret;
  /** A master session on the secret's database. */
  readonly master: Client;
  /** Where sessions of the user are looked for (the master's server and the other members). */
  readonly sessions: SessionScope;
}

/** What the guard found (returned for logs and the CLI; the guard itself throws on a block). */
export interface RevocationEvidence {
  readonly blocking: readonly StaleConsumer[];
  readonly sessions: readonly ScopedSession[];
  readonly decision?: GateDecision;
  readonly error?: Error;
}

/**
 * Checks the evidence and, only when it allows, runs `change` (which sets the new password and
 * LOGIN in one transaction) with the user's LOGIN taken away between the session count and the
 * change.
 *
 * @throws {@link RevocationBlockedError} when a consumer or a session may still use the user
 *
 * @example
 * await revocationGuard(ctx, { username, current, pending, master, sessions }, () => setRolePassword(master, ...));
 */
export async function revocationGuard(
  ctx: StepContext,
  input: RevocationGuardInput,
  change: () => Promise<void>,
): Promise<void> {
  const { username, current } = input;
  const emergency = ctx.overrides.emergency;
  const consumers = await consumerGate(ctx, input);

  if (!emergency) {
    // Sessions already open block before LOGIN is touched: a guard that blocks changes nothing, so
    // one that dies here (a timeout, a killed sandbox) leaves nothing to restore.
    const sessions = await input.sessions.list(username);
    if (consumers.blocking.length > 0 || sessions.length > 0) {
      throw blocked(ctx, input, { ...consumers, sessions });
    }
  }
  if (emergency) {
    ctx.logger.warn(
      'REVOCATION GUARD OVERRIDDEN by emergency rotation: not waiting for consumers',
      {
        override: TAG_EMERGENCY,
        username,
        currentGeneration: current.generation,
        consumersNotMoved: consumers.blocking,
        evaluationError: consumers.error?.message,
      },
    );
  }

  const disabledAt = ctx.clock.now();
  // The lock tells restoreAbandonedLogin (roles.ts) that LOGIN is off on purpose right now; if this
  // invocation dies before LOGIN is back, the lock goes with its session and LOGIN is restored later.
  await lockGuard(input.master, username);
  await setLogin(input.master, username, false);
  let changed = false;
  try {
    const sessions = await input.sessions.list(username);
    if (sessions.length > 0 && !emergency) throw blocked(ctx, input, { ...consumers, sessions });
    if (sessions.length > 0)
      await terminate(ctx, input, 'EMERGENCY: terminated sessions of the revoked user');
    await change();
    changed = true;
  } finally {
    if (!changed)
      await setLogin(input.master, username, true).catch((err: unknown) => {
        ctx.logger.error(
          'could not restore LOGIN after the revocation guard stopped; the next attempt restores it',
          {
            username,
            errorName: (err as Error).name,
            errorMessage: (err as Error).message,
          },
        );
      });
    await unlockGuard(input.master, username).catch(() => undefined);
  }
  const windowMs = ctx.clock.now() - disabledAt;
  emitFunctionMetric(ctx, REVOCATION_WINDOW_MS, windowMs, 'Milliseconds');
  if (emergency) {
    // A session that was half-way through authenticating when LOGIN went away may have survived.
    await terminate(
      ctx,
      input,
      'EMERGENCY: terminated sessions opened with the old password during the change',
    );
  }
  ctx.logger.info(
    'revocation guard: no consumer or session used the previous user; its password was replaced',
    {
      username,
      currentGeneration: current.generation,
      consumers: consumers.decision?.consumers.length ?? 0,
      loginDisabledMs: windowMs,
    },
  );
}

/**
 * Collects both kinds of evidence without deciding or changing anything. CloudWatch failures become
 * `unverified` consumers (with the error attached); database failures throw.
 *
 * @example
 * const { blocking, sessions } = await gatherRevocationEvidence(ctx, { username, current, master, sessions });
 */
export async function gatherRevocationEvidence(
  ctx: StepContext,
  input: RevocationGuardInput,
): Promise<RevocationEvidence> {
  const consumers = await consumerGate(ctx, input);
  return { ...consumers, sessions: await input.sessions.list(input.username) };
}

async function consumerGate(
  ctx: StepContext,
  input: RevocationGuardInput,
): Promise<Omit<RevocationEvidence, 'sessions'>> {
  const registry = ctx.config.consumers;
  const { decision, blocking, error } = await consumerEvidence(
    ctx,
    registry,
    (readout) =>
      decideRevocation(registry, readout, {
        current: input.current.generation,
        pending: input.pending?.generation,
        // Points an aborted rotation's credential left before `converge abort` (gates/decision.ts).
        aborted: readAbortRecord(ctx.description),
      }),
    { statistics: REVOCATION_STATISTICS },
  );
  return { blocking, decision, error };
}

function blocked(
  ctx: StepContext,
  input: RevocationGuardInput,
  evidence: RevocationEvidence,
): RevocationBlockedError {
  ctx.logger.warn(
    'revocation guard: the previous user is still in use; not overwriting its password',
    {
      username: input.username,
      currentGeneration: input.current.generation,
      blocking: evidence.blocking,
      sessions: evidence.sessions.map(describeSession),
      evaluationError: evidence.error?.message,
    },
  );
  return new RevocationBlockedError(input.username, evidence.blocking, evidence.sessions.length, {
    cause: evidence.error,
    sessionDetails: evidence.sessions,
  });
}

async function terminate(
  ctx: StepContext,
  input: RevocationGuardInput,
  message: string,
): Promise<void> {
  const terminated = await input.sessions.terminate(input.username);
  if (terminated.length === 0) return;
  emitFunctionMetric(ctx, SESSIONS_TERMINATED, terminated.length, 'Count');
  ctx.logger.warn(`${message} (${terminated.length})`, {
    username: input.username,
    terminated: terminated.map(describeSession),
  });
}

/** What a log line says about a session: never its query text. */
export function describeSession(s: ScopedSession) {
  return {
    pid: s.pid,
    member: s.member,
    applicationName: s.applicationName,
    clientAddr: s.clientAddr,
    database: s.database,
    backendStart: s.backendStart,
  };
}

/**
 * Once no rotation is waiting (after an abort, or a re-drive that found nothing to do): gives LOGIN
 * back to AWSCURRENT's alternate user (AWSPREVIOUS) if a guard took it away and died before its
 * change. See restoreAbandonedLogin in roles.ts. Returns whether LOGIN was restored.
 *
 * @example
 * if (await restoreLoginAfterAbandonedGuard({ ...deps, secretArn })) logger.warn('LOGIN restored');
 */
export async function restoreLoginAfterAbandonedGuard(
  ctx: Pick<StepContext, 'secretsManager' | 'rds' | 'secretArn' | 'config'>,
): Promise<boolean> {
  const current = await readCurrent(ctx);
  const master = await loadMaster(ctx, current);
  return withMasterSession(ctx, master, (c) =>
    restoreAbandonedLogin(c, { alternate: alternateUsername(current), current: current.username }),
  );
}
