/**
 * Where the revocation guard looks for sessions of a user: the server the master session is on and
 * every other member of the database that a client could have connected to with the same
 * credential (Aurora readers, read replicas; see ./members.ts). A member that cannot be checked
 * fails the whole check (fail closed).
 */
import type { Client } from 'pg';
import type { DbSecret } from '../../shared/secret';
import { pinnedConnectionOptions } from '../connections';
import type { RotationDependencies } from '../context';
import type { MasterConnection } from '../master-secret';
import {
  otherMembers,
  sessionsOnMembers,
  terminateOnMembers,
  type MemberSessions,
} from './members';
import { listSessions, terminateSessions, type UserSession } from './sessions';

/** A session and the member it was found on (`primary` for the master session's server). */
export interface ScopedSession extends UserSession {
  readonly member: string;
}

/** Lists and (emergency only) terminates a user's sessions everywhere the guard must look. */
export interface SessionScope {
  /** Every session of `username`, on every member. */
  list(username: string): Promise<ScopedSession[]>;
  /** Terminates every session of `username` on every member; returns those terminated. */
  terminate(username: string): Promise<ScopedSession[]>;
}

/** The sessions of the other members, as ./members.ts provides them. */
export interface OtherMembers {
  list(username: string): Promise<ScopedSession[]>;
  terminate(username: string): Promise<ScopedSession[]>;
}

/** The name of the server the master session is connected to, in {@link ScopedSession.member}. */
export const PRIMARY = 'primary';

/**
 * The scope for a master session plus the database's other members.
 *
 * @example
 * const scope = sessionScope(master, members);
 * const sessions = await scope.list('app_clone');
 */
export function sessionScope(master: Client, others?: OtherMembers): SessionScope {
  const tag = (sessions: UserSession[]): ScopedSession[] =>
    sessions.map((s) => ({ ...s, member: PRIMARY }));
  return {
    async list(username) {
      const here = tag(await listSessions(master, username));
      return others ? [...here, ...(await others.list(username))] : here;
    },
    async terminate(username) {
      const here = tag(await terminateSessions(master, username));
      return others ? [...here, ...(await others.terminate(username))] : here;
    },
  };
}

/**
 * The scope of a rotation: the master session's server plus the other members of the secret's
 * database, found through RDS (see ./members.ts; a member that cannot be resolved or checked throws
 * MemberCheckError, so the guard fails closed).
 *
 * @example
 * const scope = await sessionScopeFor(ctx, client, master, current);
 */
export async function sessionScopeFor(
  ctx: Pick<RotationDependencies, 'rds' | 'config'>,
  client: Client,
  master: MasterConnection,
  current: DbSecret,
): Promise<SessionScope> {
  const members = await otherMembers(ctx.rds, current, master.target);
  if (members.length === 0) return sessionScope(client);
  const options = pinnedConnectionOptions(ctx);
  const flatten = (found: MemberSessions[]): ScopedSession[] =>
    found.flatMap(({ member, sessions }) => sessions.map((s) => ({ ...s, member: member.id })));
  return sessionScope(client, {
    list: async (username) =>
      flatten(await sessionsOnMembers(members, master.credential, options, username)),
    terminate: async (username) =>
      flatten(await terminateOnMembers(members, master.credential, options, username)),
  });
}
