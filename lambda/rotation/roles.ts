/**
 * The SQL of the alternating-users strategy, run as the master role. Identifiers are always quoted
 * with the driver's `escapeIdentifier`; passwords travel only as SCRAM verifiers ({@link scramVerifier}),
 * escaped as literals, and never appear in logs or errors.
 */
import type { Client } from 'pg';
import { ConfusedDeputyError, DatabaseOperationError, redactedCause } from '../shared/errors';
import { scramVerifier } from './scram';

/** Role attributes an alternate user must never have unless the current user has them too. */
const PRIVILEGED_ATTRIBUTES = ['rolsuper', 'rolcreaterole', 'rolcreatedb', 'rolreplication', 'rolbypassrls'] as const;

interface RoleRow {
  rolname: string;
  rolsuper: boolean;
  rolcreaterole: boolean;
  rolcreatedb: boolean;
  rolreplication: boolean;
  rolbypassrls: boolean;
}

/** The pg_roles row of `name`, or undefined. */
export async function findRole(c: Client, name: string): Promise<RoleRow | undefined> {
  const r = await run('read pg_roles', () =>
    c.query<RoleRow>(
      `SELECT rolname, ${PRIVILEGED_ATTRIBUTES.join(', ')} FROM pg_roles WHERE rolname = $1`,
      [name],
    ),
  );
  return r.rows[0];
}

/**
 * Refuses to touch an existing alternate role that holds more power than the current one or is the
 * master itself: a pending secret that names such a role is a confused-deputy attempt.
 */
export function assertNotMorePrivileged(alternate: RoleRow, current: RoleRow | undefined, masterUsername: string): void {
  if (alternate.rolname === masterUsername) {
    throw new ConfusedDeputyError(`alternate user "${alternate.rolname}" is the master user; refusing to change its password`);
  }
  const extra = PRIVILEGED_ATTRIBUTES.filter((a) => alternate[a] && !(current && current[a]));
  if (extra.length > 0) {
    throw new ConfusedDeputyError(
      `alternate user "${alternate.rolname}" has ${extra.join(', ')} which the current user lacks; refusing to change its password`,
    );
  }
}

export interface CreateAlternateInput {
  readonly alternate: string;
  readonly current: string;
  readonly password: string;
  readonly dbname: string;
  readonly ownerRole?: string;
}

/**
 * Creates the alternate login role in one transaction: `CREATE ROLE .. LOGIN`, membership of the
 * current role, the current role's per-role settings (e.g. search_path, globally and per database),
 * and the owner-role arrangement when configured. Either all of it exists afterwards or none.
 */
export async function createAlternateRole(c: Client, input: CreateAlternateInput): Promise<void> {
  const alt = c.escapeIdentifier(input.alternate);
  const cur = c.escapeIdentifier(input.current);
  await transaction(c, 'create the alternate role', async () => {
    await c.query(`CREATE ROLE ${alt} WITH LOGIN PASSWORD ${c.escapeLiteral(scramVerifier(input.password))}`);
    await c.query(`GRANT ${cur} TO ${alt}`);
    await copyRoleSettings(c, input.current, input.alternate);
    if (input.ownerRole) await arrangeOwnerRole(c, input.ownerRole, [input.current, input.alternate]);
  });
}

/** Sets a new password (and LOGIN) on an existing role, and keeps the owner-role arrangement. */
export async function setRolePassword(
  c: Client,
  input: { role: string; password: string; ownerRole?: string; current: string },
): Promise<void> {
  await transaction(c, 'change the alternate role password', async () => {
    await c.query(
      `ALTER ROLE ${c.escapeIdentifier(input.role)} WITH LOGIN PASSWORD ${c.escapeLiteral(scramVerifier(input.password))}`,
    );
    if (input.ownerRole) await arrangeOwnerRole(c, input.ownerRole, [input.current, input.role]);
  });
}

/**
 * DESIGN.md 4.3: both login roles are members of a NOLOGIN owner role and start their sessions as
 * it (`ALTER ROLE .. SET role`), so whatever either creates is owned by the owner role and usable
 * by the other.
 */
async function arrangeOwnerRole(c: Client, owner: string, members: readonly string[]): Promise<void> {
  const o = c.escapeIdentifier(owner);
  const exists = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [owner]);
  if (exists.rowCount === 0) await c.query(`CREATE ROLE ${o} NOLOGIN`);
  for (const member of members) {
    const m = c.escapeIdentifier(member);
    const isMember = await c.query('SELECT pg_has_role($1, $2, $3) AS yes', [member, owner, 'MEMBER']);
    if (!isMember.rows[0].yes) await c.query(`GRANT ${o} TO ${m}`);
    await c.query(`ALTER ROLE ${m} SET role = ${c.escapeLiteral(owner)}`);
  }
}

/**
 * Copies `ALTER ROLE .. SET` settings from one role to another. Each value is applied with
 * `set_config(name, value, true)` and stored with `SET .. FROM CURRENT`, so list-valued settings
 * such as search_path keep their exact stored form. `role` and `session_authorization` are left to
 * the owner-role arrangement.
 */
async function copyRoleSettings(c: Client, from: string, to: string): Promise<void> {
  const rows = await c.query<{ dbname: string | null; setconfig: string[] }>(
    `SELECT d.datname AS dbname, s.setconfig
       FROM pg_db_role_setting s
       JOIN pg_roles r ON r.oid = s.setrole
       LEFT JOIN pg_database d ON d.oid = s.setdatabase
      WHERE r.rolname = $1`,
    [from],
  );
  for (const row of rows.rows) {
    for (const entry of row.setconfig ?? []) {
      const eq = entry.indexOf('=');
      const name = entry.slice(0, eq);
      const value = entry.slice(eq + 1);
      if (name === 'role' || name === 'session_authorization') continue;
      await c.query('SELECT set_config($1, $2, true)', [name, value]);
      const where = row.dbname ? ` IN DATABASE ${c.escapeIdentifier(row.dbname)}` : '';
      await c.query(`ALTER ROLE ${c.escapeIdentifier(to)}${where} SET ${c.escapeIdentifier(name)} FROM CURRENT`);
    }
  }
}

/**
 * Roles the current user can use that the session user of `c` cannot: empty when the pending
 * credential can do what the current one can (membership-wise).
 */
export async function missingMemberships(c: Client, current: string): Promise<string[]> {
  const r = await run('compare role memberships', () =>
    c.query<{ rolname: string }>(
      `SELECT r.rolname FROM pg_roles r
        WHERE r.rolname <> $1
          AND pg_has_role($1, r.oid, 'USAGE')
          AND NOT pg_has_role(session_user, r.oid, 'USAGE')
        ORDER BY 1`,
      [current],
    ),
  );
  return r.rows.map((x) => x.rolname);
}

async function transaction(c: Client, what: string, fn: () => Promise<void>): Promise<void> {
  await run(what, async () => {
    await c.query('BEGIN');
    try {
      await fn();
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}

async function run<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ConfusedDeputyError) throw err;
    const code = (err as { code?: string }).code;
    // pg error messages quote identifiers, never the verifier (it is a literal in the statement,
    // which pg does not echo); the cause is still passed through redaction.
    throw new DatabaseOperationError(`Cannot ${what}: ${(err as Error).message}${code ? ` (SQLSTATE ${code})` : ''}`, {
      cause: redactedCause(err),
      code,
    });
  }
}
