/**
 * Revocation guard (DESIGN.md 4.5): setSecret calls {@link revocationGuard} before the ALTER ROLE
 * that overwrites the password of an existing alternate user (the AWSPREVIOUS user). That ALTER
 * breaks every process still using the old password at its next connect, so it needs evidence:
 *
 * (a) every registered consumer, of any mode, is fresh and reports a generation >= AWSCURRENT's
 *     (silence blocks: it cannot prove that the old credential is unused; CloudWatch failing
 *     blocks: fail closed), and
 * (b) pg_stat_activity shows no session of that user, in any database of the cluster.
 *
 * Otherwise it throws RevocationBlockedError naming what still holds the credential. An emergency
 * rotation (suspected compromise) does not wait: it logs what it overrides, terminates the user's
 * sessions and logs each terminated session (pid, application_name, client address).
 */
import type { Client } from 'pg';
import { RevocationBlockedError, type StaleConsumer } from '../shared/errors';
import type { DbSecret } from '../shared/secret';
import type { StepContext } from './context';
import { decideRevocation, type GateDecision } from './gates/decision';
import { consumerEvidence } from './gates/evidence';
import { listSessions, terminateSessions, type UserSession } from './gates/sessions';
import { TAG_EMERGENCY } from './overrides';

export interface RevocationGuardInput {
  /** The user whose password is about to be overwritten. */
  readonly username: string;
  /** The AWSCURRENT secret (its generation is what every consumer must have reached). */
  readonly current: DbSecret;
  /** A connection as the master role, on the secret's database. */
  readonly master: Client;
}

/** What the guard found (returned for logs and the CLI; the guard itself throws on a block). */
export interface RevocationEvidence {
  readonly blocking: readonly StaleConsumer[];
  readonly sessions: readonly UserSession[];
  readonly decision?: GateDecision;
  readonly error?: Error;
}

/**
 * @throws {@link RevocationBlockedError} when a consumer or a session may still use the user
 *
 * @example
 * await revocationGuard(ctx, { username: pending.username, current, master });
 * await setRolePassword(master, ...);
 */
export async function revocationGuard(ctx: StepContext, input: RevocationGuardInput): Promise<void> {
  const { username, current, master } = input;
  const evidence = await gatherRevocationEvidence(ctx, input);

  if (ctx.overrides.emergency) {
    ctx.logger.warn('REVOCATION GUARD OVERRIDDEN by emergency rotation: not waiting for consumers', {
      override: TAG_EMERGENCY,
      username,
      currentGeneration: current.generation,
      consumersNotMoved: evidence.blocking,
      evaluationError: evidence.error?.message,
      openSessions: evidence.sessions.length,
    });
    if (evidence.sessions.length > 0) {
      const terminated = await terminateSessions(master, username);
      ctx.logger.warn(`EMERGENCY: terminated ${terminated.length} session(s) of "${username}"`, {
        username,
        terminated: terminated.map((s) => ({
          pid: s.pid,
          applicationName: s.applicationName,
          clientAddr: s.clientAddr,
          database: s.database,
          backendStart: s.backendStart,
        })),
      });
    }
    return;
  }

  if (evidence.blocking.length > 0 || evidence.sessions.length > 0) {
    ctx.logger.warn('revocation guard: the previous user is still in use; not overwriting its password', {
      username,
      currentGeneration: current.generation,
      blocking: evidence.blocking,
      sessions: evidence.sessions.map((s) => ({ pid: s.pid, applicationName: s.applicationName, clientAddr: s.clientAddr })),
      evaluationError: evidence.error?.message,
    });
    throw new RevocationBlockedError(username, evidence.blocking, evidence.sessions.length, {
      cause: evidence.error,
      sessionDetails: evidence.sessions,
    });
  }
  ctx.logger.info('revocation guard: no consumer or session uses the previous user', {
    username,
    currentGeneration: current.generation,
    consumers: evidence.decision?.consumers.length ?? 0,
  });
}

/**
 * Collects both kinds of evidence without deciding. CloudWatch failures become `unverified`
 * consumers (with the error attached); database failures throw.
 *
 * @example
 * const { blocking, sessions } = await gatherRevocationEvidence(ctx, { username, current, master });
 */
export async function gatherRevocationEvidence(ctx: StepContext, input: RevocationGuardInput): Promise<RevocationEvidence> {
  const registry = ctx.config.consumers;
  const { decision, blocking, error } = await consumerEvidence(ctx, registry, (readout) =>
    decideRevocation(registry, readout, input.current.generation),
  );
  const sessions = await listSessions(input.master, input.username);
  return { blocking, sessions, decision, error };
}
