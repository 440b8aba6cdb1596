/**
 * The SQL of the alternating-users strategy, run as the master role.
 *
 * The rotated user is untrusted: it can create functions, operators and views in schemas it can
 * write, and `ALTER ROLE` its own settings. So every master session runs with `search_path` pinned to
 * `pg_catalog, pg_temp` (a startup option, see `pinCatalogSearchPath` in lambda/shared/pg-connection.ts;
 * every transaction here also re-pins it with `SET LOCAL`), every function call is schema-qualified,
 * and nothing of the user's own settings is ever applied to the master's session: per-role settings
 * are copied as literals (`ALTER ROLE .. SET name = 'value'`), read from `pg_db_role_setting`.
 *
 * Identifiers are always quoted with the driver's `escapeIdentifier`; passwords travel only as
 * SCRAM verifiers ({@link scramVerifier}) escaped as literals, and never appear in logs or errors.
 */
import { randomBytes } from 'node:crypto';
import type { Client } from 'pg';
import {
  ConfusedDeputyError,
  ConvergeError,
  DatabaseOperationError,
  MasterPrivilegeError,
  redactedCause,
} from '../shared/errors';
import { scramVerifier } from './scram';

/** Role attributes an alternate user must never have unless the current user has them too. */
export const PRIVILEGED_ATTRIBUTES = [
  'rolsuper',
  'rolcreaterole',
  'rolcreatedb',
  'rolreplication',
  'rolbypassrls',
] as const;

/** Settings never copied: the owner-role arrangement sets `role` itself. */
const NOT_COPIED = new Set(['role', 'session_authorization']);

/**
 * Settings whose stored value is a list of separately quoted elements (the same set pg_dump treats
 * this way). Their elements are re-sent one literal each so the stored form stays exactly the same.
 */
const LIST_QUOTED_SETTINGS = new Set([
  'search_path',
  'temp_tablespaces',
  'session_preload_libraries',
  'shared_preload_libraries',
  'local_preload_libraries',
  'unix_socket_directories',
]);

/** Marker converge writes on the roles it pairs (`COMMENT ON ROLE`), naming the other user. */
export const PAIR_MARKER_PREFIX = 'converge: alternate of ';

/** The role comment that says "`role` is the alternate of `of`". */
export function pairMarker(of: string): string {
  return `${PAIR_MARKER_PREFIX}${JSON.stringify(of)}`;
}

export interface RoleRow {
  oid: number;
  rolname: string;
  rolcanlogin: boolean;
  rolsuper: boolean;
  rolcreaterole: boolean;
  rolcreatedb: boolean;
  rolreplication: boolean;
  rolbypassrls: boolean;
  /** The role's comment (pg_shdescription), or null. */
  comment: string | null;
}

/** The pg_roles row of `name` (with its comment), or undefined. */
export async function findRole(c: Client, name: string): Promise<RoleRow | undefined> {
  const r = await run('read pg_roles', () =>
    c.query<RoleRow>(
      `SELECT r.oid::pg_catalog.int8 AS oid, r.rolname, r.rolcanlogin, ${PRIVILEGED_ATTRIBUTES.map((a) => `r.${a}`).join(', ')},
              pg_catalog.shobj_description(r.oid, 'pg_authid') AS comment
         FROM pg_catalog.pg_roles r
        WHERE r.rolname = $1::pg_catalog.text`,
      [name],
    ),
  );
  const row = r.rows[0];
  return row ? { ...row, oid: Number(row.oid) } : undefined;
}

/**
 * Refuses to touch an existing alternate role that holds more power than the current one or is the
 * master itself: a pending secret that names such a role is a confused-deputy attempt.
 */
export function assertNotMorePrivileged(
  alternate: RoleRow,
  current: RoleRow | undefined,
  masterUsername: string,
): void {
  if (alternate.rolname === masterUsername) {
    throw new ConfusedDeputyError(
      `alternate user "${alternate.rolname}" is the master user; refusing to change its password`,
    );
  }
  const extra = PRIVILEGED_ATTRIBUTES.filter((a) => alternate[a] && !(current && current[a]));
  if (extra.length > 0) {
    throw new ConfusedDeputyError(
      `alternate user "${alternate.rolname}" has ${extra.join(', ')} which the current user lacks; refusing to change its password`,
    );
  }
}

/**
 * Refuses to take over an existing alternate role unless there is evidence that it is the pair of
 * the current user. First, neither role may administer the other (ADMIN OPTION, directly or through
 * other roles): a rotated user that administers its pair could change that role's password,
 * memberships and comment at will. On PostgreSQL 16 and later that is what remains when an
 * application user with CREATEROLE created the role itself (PostgreSQL grants the creator ADMIN
 * OPTION, recorded as granted by the bootstrap superuser, which would otherwise look like a third
 * role's grant). Then evidence, in order:
 * - the operator named the pair explicitly (`alternateUsername` in the secret);
 * - converge's marker on either role names the other ({@link pairMarker}; only a role with
 *   CREATEROLE can comment on roles, so the rotated user cannot forge it);
 * - one role is a member of the other, granted by a third role (how converge paired them before it
 *   wrote markers; a role granting itself to another, possible before PostgreSQL 16, does not count).
 *
 * @throws {@link ConfusedDeputyError} naming the role and how to resolve it
 *
 * @example
 * await assertPairEvidence(master, { alternate, current, explicitPair: false });
 */
export async function assertPairEvidence(
  c: Client,
  input: { alternate: RoleRow; current: RoleRow; explicitPair: boolean },
): Promise<void> {
  const { alternate, current } = input;
  const admin = await run('read ADMIN OPTION between the pair', () =>
    c.query<{ current_admin: boolean; alternate_admin: boolean }>(
      `SELECT pg_catalog.pg_has_role($1::pg_catalog.oid, $2::pg_catalog.oid, 'MEMBER WITH ADMIN OPTION') AS current_admin,
              pg_catalog.pg_has_role($2::pg_catalog.oid, $1::pg_catalog.oid, 'MEMBER WITH ADMIN OPTION') AS alternate_admin`,
      [current.oid, alternate.oid],
    ),
  );
  const { current_admin: currentAdmin, alternate_admin: alternateAdmin } = admin.rows[0];
  if (currentAdmin || alternateAdmin) {
    const [holder, held] = currentAdmin ? [current, alternate] : [alternate, current];
    throw new ConfusedDeputyError(
      `role "${holder.rolname}" can administer "${held.rolname}" (ADMIN OPTION: it created that role on ` +
        `PostgreSQL 16 or later, or was granted the option), so one user of the pair could change the ` +
        `other's password and memberships; refusing to change the password of "${alternate.rolname}". ` +
        `As a superuser, drop that role or revoke the option (REVOKE ADMIN OPTION FOR ` +
        `${c.escapeIdentifier(held.rolname)} FROM ${c.escapeIdentifier(holder.rolname)}).`,
    );
  }
  if (input.explicitPair) return;
  if (
    alternate.comment === pairMarker(current.rolname) ||
    current.comment === pairMarker(alternate.rolname)
  )
    return;
  const r = await run('read pg_auth_members', () =>
    c.query(
      `SELECT 1 FROM pg_catalog.pg_auth_members m
        WHERE ((m.roleid = $1::pg_catalog.oid AND m.member = $2::pg_catalog.oid)
            OR (m.roleid = $2::pg_catalog.oid AND m.member = $1::pg_catalog.oid))
          AND m.grantor NOT IN ($1::pg_catalog.oid, $2::pg_catalog.oid)`,
      [current.oid, alternate.oid],
    ),
  );
  if ((r.rowCount ?? 0) > 0) return;
  throw new ConfusedDeputyError(
    `role "${alternate.rolname}" exists but nothing shows it is the alternate of "${current.rolname}" ` +
      `(no converge marker, no membership granted between them); refusing to change its password. ` +
      `If it is yours, name the pair in the secret ("alternateUsername"); otherwise drop or rename that role.`,
  );
}

export interface CreateAlternateInput {
  readonly alternate: string;
  readonly current: string;
  readonly password: string;
  readonly ownerRole?: string;
}

/**
 * Creates the alternate login role in one transaction: `CREATE ROLE .. LOGIN`, membership of the
 * current role, the current role's per-role settings (globally and per database), the owner-role
 * arrangement when configured, and converge's pair marker. Either all of it exists afterwards or
 * none. The current role is not changed. Returns the settings the master was not allowed to copy.
 */
export async function createAlternateRole(
  c: Client,
  input: CreateAlternateInput,
): Promise<{ skippedSettings: SkippedSetting[] }> {
  const alt = c.escapeIdentifier(input.alternate);
  let skippedSettings: SkippedSetting[] = [];
  await transaction(c, 'create the alternate role', async () => {
    await privileged(
      c.query(
        `CREATE ROLE ${alt} WITH LOGIN PASSWORD ${c.escapeLiteral(scramVerifier(input.password))}`,
      ),
      {
        what: `create role ${alt}`,
        fix: 'ALTER ROLE <master user> CREATEROLE',
      },
    );
    await grant(c, input.current, input.alternate);
    skippedSettings = await copyRoleSettings(c, input.current, input.alternate);
    if (input.ownerRole) await arrangeOwnerRole(c, input.ownerRole, input.alternate);
    await c.query(`COMMENT ON ROLE ${alt} IS ${c.escapeLiteral(pairMarker(input.current))}`);
  });
  return { skippedSettings };
}

/**
 * Sets a new password and LOGIN on an existing alternate role, keeps the owner-role arrangement,
 * and writes the pair marker when the role has no comment of someone else's.
 */
export async function setRolePassword(
  c: Client,
  input: { role: RoleRow; password: string; ownerRole?: string; current: string },
): Promise<void> {
  const role = c.escapeIdentifier(input.role.rolname);
  await transaction(c, 'change the alternate role password', async () => {
    await privileged(
      c.query(
        `ALTER ROLE ${role} WITH LOGIN PASSWORD ${c.escapeLiteral(scramVerifier(input.password))}`,
      ),
      {
        what: `alter role ${role}`,
        fix: adminFix(c, input.role.rolname),
      },
    );
    if (input.ownerRole) await arrangeOwnerRole(c, input.ownerRole, input.role.rolname);
    if (input.role.comment === null || input.role.comment.startsWith(PAIR_MARKER_PREFIX)) {
      await c.query(`COMMENT ON ROLE ${role} IS ${c.escapeLiteral(pairMarker(input.current))}`);
    }
  });
}

/**
 * Replaces a role's password with a random one that nobody stores (emergency revocation): whoever
 * holds the old password can no longer log in. The role keeps LOGIN so the next rotation can make it
 * the pending user again as usual.
 */
export async function scramblePassword(c: Client, role: string): Promise<void> {
  const r = c.escapeIdentifier(role);
  await transaction(c, 'replace the password of the revoked role', async () => {
    const verifier = scramVerifier(randomBytes(32).toString('base64'));
    await privileged(c.query(`ALTER ROLE ${r} WITH PASSWORD ${c.escapeLiteral(verifier)}`), {
      what: `alter role ${r}`,
      fix: adminFix(c, role),
    });
  });
}

/**
 * `ALTER ROLE .. NOLOGIN` or `LOGIN`, committed at once. Taking LOGIN away before the revocation
 * guard counts sessions closes the window in which a client could still log in with the old
 * password after the count (it takes effect for new connections once committed).
 */
export async function setLogin(c: Client, role: string, login: boolean): Promise<void> {
  const r = c.escapeIdentifier(role);
  await transaction(c, login ? 'restore LOGIN' : 'disable LOGIN', async () => {
    await privileged(c.query(`ALTER ROLE ${r} WITH ${login ? 'LOGIN' : 'NOLOGIN'}`), {
      what: `alter role ${r}`,
      fix: adminFix(c, role),
    });
  });
}

/** The advisory lock a revocation guard holds on its master session while `role` has NOLOGIN. */
function guardLockKey(role: string): string {
  return `converge:revocation-guard:${role}`;
}

/**
 * Takes the revocation guard's lock for `role` (session level: it ends with the session, so a guard
 * that dies releases it). Held from before LOGIN is taken away until LOGIN is back.
 *
 * @example
 * await lockGuard(master, 'app_user'); try { ... } finally { await unlockGuard(master, 'app_user'); }
 */
export async function lockGuard(c: Client, role: string): Promise<void> {
  await run('take the revocation guard lock', () =>
    c.query('SELECT pg_catalog.pg_advisory_lock(pg_catalog.hashtext($1::pg_catalog.text))', [
      guardLockKey(role),
    ]),
  );
}

/** Releases {@link lockGuard}. */
export async function unlockGuard(c: Client, role: string): Promise<void> {
  await run('release the revocation guard lock', () =>
    c.query('SELECT pg_catalog.pg_advisory_unlock(pg_catalog.hashtext($1::pg_catalog.text))', [
      guardLockKey(role),
    ]),
  );
}

/**
 * Gives LOGIN back to converge's alternate of `current` when a revocation guard took it away and
 * died before its change (the Lambda timed out or was killed in that window): the alternate is
 * AWSPREVIOUS, the way back, and must keep working until its password really changes. Acts only
 * when no guard holds the lock (a guard in its window is left alone) and when the pair is
 * converge's (its marker on either role). Returns whether LOGIN was restored.
 *
 * @example
 * if (await restoreAbandonedLogin(master, { alternate: 'app_user', current: 'app_user_clone' })) log.warn('restored LOGIN');
 */
export async function restoreAbandonedLogin(
  c: Client,
  pair: { alternate: string; current: string },
): Promise<boolean> {
  const key = guardLockKey(pair.alternate);
  const locked = await run('try the revocation guard lock', () =>
    c.query<{ ok: boolean }>(
      'SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext($1::pg_catalog.text)) AS ok',
      [key],
    ),
  );
  if (!locked.rows[0].ok) return false;
  try {
    const alternate = await findRole(c, pair.alternate);
    if (!alternate || alternate.rolcanlogin) return false;
    const current = await findRole(c, pair.current);
    const paired =
      alternate.comment === pairMarker(pair.current) ||
      current?.comment === pairMarker(pair.alternate);
    if (!paired) return false;
    await setLogin(c, pair.alternate, true);
    return true;
  } finally {
    await unlockGuard(c, pair.alternate);
  }
}

/**
 * The alternate user starts its sessions as the owner role (`ALTER ROLE .. SET role`), so what it
 * creates is owned by the owner role. Only the role becoming pending is arranged here: the current
 * user's settings are never changed while it is live (it is arranged when it next becomes pending).
 * The owner role itself must exist and be able to reach what the users can (see owner-role.ts).
 */
async function arrangeOwnerRole(c: Client, owner: string, member: string): Promise<void> {
  const m = c.escapeIdentifier(member);
  const isMember = await c.query<{ yes: boolean }>(
    'SELECT pg_catalog.pg_has_role($1::pg_catalog.name, $2::pg_catalog.name, $3::pg_catalog.text) AS yes',
    [member, owner, 'MEMBER'],
  );
  if (!isMember.rows[0].yes) await grant(c, owner, member);
  await c.query(`ALTER ROLE ${m} SET role = ${c.escapeLiteral(owner)}`);
}

async function grant(c: Client, role: string, to: string): Promise<void> {
  await privileged(c.query(`GRANT ${c.escapeIdentifier(role)} TO ${c.escapeIdentifier(to)}`), {
    what: `grant role ${c.escapeIdentifier(role)} to ${c.escapeIdentifier(to)}`,
    fix: adminFix(c, role),
  });
}

/** A per-role setting the master was not allowed to copy (a superuser-only one, say). */
export interface SkippedSetting {
  readonly name: string;
  readonly database: string | null;
  readonly reason: string;
}

/**
 * Copies `ALTER ROLE .. SET` settings from one role to another, reading them from
 * `pg_db_role_setting` and writing each value back as literals. The values are never applied to the
 * master's session. A setting the master may not set (SQLSTATE 42501) is skipped and returned, so
 * the caller can say which ones an operator must copy by hand; anything else fails the copy.
 */
async function copyRoleSettings(c: Client, from: string, to: string): Promise<SkippedSetting[]> {
  const rows = await c.query<{ dbname: string | null; setconfig: string[] | null }>(
    `SELECT d.datname AS dbname, s.setconfig
       FROM pg_catalog.pg_db_role_setting s
       JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
       LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
      WHERE r.rolname = $1::pg_catalog.text`,
    [from],
  );
  const skipped: SkippedSetting[] = [];
  for (const row of rows.rows) {
    for (const entry of row.setconfig ?? []) {
      const eq = entry.indexOf('=');
      if (eq <= 0) continue;
      const name = entry.slice(0, eq);
      if (NOT_COPIED.has(name.toLowerCase())) continue;
      const where = row.dbname ? ` IN DATABASE ${c.escapeIdentifier(row.dbname)}` : '';
      const statement = `ALTER ROLE ${c.escapeIdentifier(to)}${where} SET ${settingName(c, name)} = ${settingValue(c, name, entry.slice(eq + 1))}`;
      await c.query('SAVEPOINT converge_copy_setting');
      try {
        await c.query(statement);
        await c.query('RELEASE SAVEPOINT converge_copy_setting');
      } catch (err) {
        await c.query('ROLLBACK TO SAVEPOINT converge_copy_setting');
        const code = (err as { code?: string }).code;
        if (code === '42501') {
          skipped.push({ name, database: row.dbname, reason: (err as Error).message });
          continue;
        }
        throw new DatabaseOperationError(
          `Cannot copy the per-role setting "${name}" of "${from}" to "${to}": ${(err as Error).message}${code ? ` (SQLSTATE ${code})` : ''}`,
          { cause: redactedCause(err), code },
        );
      }
    }
  }
  return skipped;
}

/** A setting name as SQL: each dot-separated part quoted (custom settings are `prefix.name`). */
function settingName(c: Client, name: string): string {
  return name
    .split('.')
    .map((part) => c.escapeIdentifier(part))
    .join('.');
}

/** A stored setting value as SQL literals: one per element for list-quoted settings, else one. */
export function settingValue(
  c: Pick<Client, 'escapeLiteral'>,
  name: string,
  stored: string,
): string {
  if (!LIST_QUOTED_SETTINGS.has(name.toLowerCase())) return c.escapeLiteral(stored);
  return splitQuotedList(stored)
    .map((element) => c.escapeLiteral(element))
    .join(', ');
}

/**
 * Splits a stored list setting (`a, "B c", "x""y"`) into its elements, undoing the double-quote
 * quoting PostgreSQL applied when it stored them.
 */
export function splitQuotedList(stored: string): string[] {
  const out: string[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < stored.length && /\s/.test(stored[i])) i++;
  };
  skipSpace();
  if (i >= stored.length) return out;
  for (;;) {
    let element = '';
    if (stored[i] === '"') {
      i++;
      for (;;) {
        if (i >= stored.length)
          throw new ConvergeError('unterminated quoted element in a stored list setting');
        if (stored[i] === '"') {
          if (stored[i + 1] === '"') {
            element += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        element += stored[i++];
      }
    } else {
      while (i < stored.length && stored[i] !== ',') element += stored[i++];
      element = element.trimEnd();
    }
    out.push(element);
    skipSpace();
    if (i >= stored.length) return out;
    if (stored[i] !== ',') throw new ConvergeError('malformed stored list setting');
    i++;
    skipSpace();
  }
}

/**
 * Roles the current user can use that the session user of `c` cannot: empty when the pending
 * credential can do what the current one can (membership-wise).
 */
export async function missingMemberships(c: Client, current: string): Promise<string[]> {
  const r = await run('compare role memberships', () =>
    c.query<{ rolname: string }>(
      `SELECT r.rolname FROM pg_catalog.pg_roles r
        WHERE r.rolname <> $1::pg_catalog.text
          AND pg_catalog.pg_has_role($1::pg_catalog.name, r.oid, 'USAGE')
          AND NOT pg_catalog.pg_has_role(pg_catalog."session_user"(), r.oid, 'USAGE')
        ORDER BY 1`,
      [current],
    ),
  );
  return r.rows.map((x) => x.rolname);
}

/**
 * Runs `fn` in a transaction whose first statement re-pins the search path, so nothing in it can
 * resolve a name outside the system catalog even if the connection was opened without the pin.
 */
export async function transaction(c: Client, what: string, fn: () => Promise<void>): Promise<void> {
  await run(what, async () => {
    await c.query('BEGIN');
    try {
      await c.query('SET LOCAL search_path = pg_catalog, pg_temp');
      await fn();
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}

/**
 * Awaits a role statement; SQLSTATE 42501 (insufficient privilege) becomes a
 * {@link MasterPrivilegeError} that says what to grant. On PostgreSQL 16 and later CREATEROLE alone
 * no longer lets the master grant or alter a role it did not create: it needs ADMIN OPTION on it.
 */
async function privileged<T>(
  statement: Promise<T>,
  explain: { what: string; fix: string },
): Promise<T> {
  try {
    return await statement;
  } catch (err) {
    if ((err as { code?: string }).code !== '42501') throw err;
    throw new MasterPrivilegeError(
      `the master role may not ${explain.what} (SQLSTATE 42501: ${(err as Error).message}). As a superuser (on RDS, ` +
        `the instance's master user or another member of rds_superuser) run: ${explain.fix}. Nothing was changed.`,
      { cause: redactedCause(err) },
    );
  }
}

/** The fix for a role the master lacks ADMIN OPTION on (PostgreSQL 16 and later). */
function adminFix(c: Pick<Client, 'escapeIdentifier'>, role: string): string {
  return `GRANT ${c.escapeIdentifier(role)} TO <master user> WITH ADMIN OPTION`;
}

async function run<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ConvergeError) throw err;
    const code = (err as { code?: string }).code;
    // pg error messages quote identifiers, never the verifier (it is a literal in the statement,
    // which pg does not echo); the cause is still passed through redaction.
    throw new DatabaseOperationError(
      `Cannot ${what}: ${(err as Error).message}${code ? ` (SQLSTATE ${code})` : ''}`,
      {
        cause: redactedCause(err),
        code,
      },
    );
  }
}
