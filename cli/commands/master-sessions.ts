/**
 * The CLI's read of open sessions as the master, in the scope the revocation guard checks: the
 * secret's server and every reader or replica (lambda/rotation/gates/members.ts), with the master
 * session's search path pinned. Needs `GetSecretValue` on the secret and its master secret; only the
 * master credential is used, in memory, and nothing about it is returned or printed.
 */
import { otherMembers, sessionsOnMembers } from '../../lambda/rotation/gates/members';
import { listSessions, type UserSession } from '../../lambda/rotation/gates/sessions';
import { loadMaster } from '../../lambda/rotation/master-secret';
import { readCurrent } from '../../lambda/rotation/secrets';
import { withClient } from '../../lambda/shared/pg-connection';
import type { DbSecret } from '../../lambda/shared/secret';
import type { CliClients } from '../clients';

/** How the CLI's master sessions are named in pg_stat_activity. */
export const CLI_APPLICATION_NAME = 'converge-cli';

export interface MasterSessionsOptions {
  /** CA bundle for the database connections. */
  readonly caBundlePath?: string;
}

/** The sessions of one user, on every member checked. */
export interface UserSessions {
  readonly username: string;
  /** `member`: the reader or replica a session is on (absent: the server the secret names). */
  readonly sessions: readonly (UserSession & { readonly member?: string })[];
}

/**
 * Logs in as the master of `secretArn` and lists the sessions of the users `usersOf` picks from the
 * AWSCURRENT secret (e.g. its user and the alternate one), on the server and on every member.
 *
 * @throws whatever reading the secrets or connecting fails with (typed errors of
 * lambda/shared/errors.ts; the message never carries a password)
 *
 * @example
 * const [old] = await sessionsAsMaster(clients, arn, () => ['app_clone'], { caBundlePath });
 * const both = await sessionsAsMaster(clients, arn, (current) => [current.username, alternateUsername(current)]);
 */
export async function sessionsAsMaster(
  clients: CliClients,
  secretArn: string,
  usersOf: (current: DbSecret) => readonly string[],
  options: MasterSessionsOptions = {},
): Promise<UserSessions[]> {
  const ctx = { secretsManager: clients.sm, rds: clients.rds, secretArn };
  const current = await readCurrent(ctx);
  const master = await loadMaster(ctx, current);
  const connection = {
    caBundlePath: options.caBundlePath,
    applicationName: CLI_APPLICATION_NAME,
    pinCatalogSearchPath: true,
  };
  const members = await otherMembers(clients.rds, current, master.target);
  const usernames = [...new Set(usersOf(current))];
  return withClient(master.target, master.credential, connection, async (c) => {
    const out: UserSessions[] = [];
    for (const username of usernames) {
      out.push({
        username,
        sessions: [
          ...(await listSessions(c, username)),
          ...(await sessionsOnMembers(members, master.credential, connection, username)).flatMap(
            (m) => m.sessions.map((x) => ({ ...x, member: m.member.id })),
          ),
        ],
      });
    }
    return out;
  });
}
