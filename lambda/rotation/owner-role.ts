/**
 * Prerequisites of the owner-role arrangement (`ownerRole` in the secret), checked as the master
 * before setSecret changes anything.
 *
 * With `ownerRole`, a login user starts its sessions as the owner role (`ALTER ROLE .. SET role`):
 * from then on its privileges are the owner role's, not its own. If the owner role could not reach
 * something the user can (a table the user owns, a privilege granted to the user directly, a role the
 * user is a member of), the arrangement would break that user's next connection with
 * `permission denied`. So converge never creates the owner role, and refuses with an
 * {@link OwnerRoleError} that lists what is missing and the SQL that fixes it, until the owner role
 * can reach everything the login users can in the secret's database.
 */
import type { Client } from 'pg';
import { OwnerRoleError } from '../shared/errors';
import { findRole, PRIVILEGED_ATTRIBUTES, type RoleRow } from './roles';

/** How many missing items an error lists before it says "and N more". */
const LISTED = 20;

export interface OwnerRoleCheck {
  /** The owner role named by the secret. */
  readonly owner: string;
  /** The current user (its reach is what the owner role must cover). */
  readonly current: RoleRow;
  /** The alternate user when it exists already (its reach must be covered too). */
  readonly alternate?: RoleRow;
  /** The master's user name (the owner role must not be the master). */
  readonly master: string;
}

/** One thing a login user can reach that the owner role cannot, with the SQL that fixes it. */
export interface OwnerRoleGap {
  readonly user: string;
  readonly missing: string;
  readonly fix: string;
}

/**
 * @throws {@link OwnerRoleError} when the owner role is missing, unsafe, or cannot reach what the
 * login users can (the message lists each gap and its fix)
 *
 * @example
 * await checkOwnerRole(master, { owner: 'orders_owner', current, alternate, master: 'admin' });
 */
export async function checkOwnerRole(c: Client, check: OwnerRoleCheck): Promise<void> {
  const { owner, current, alternate } = check;
  const q = (name: string) => c.escapeIdentifier(name);
  const role = await findRole(c, owner);
  if (!role) {
    throw new OwnerRoleError(
      `owner role "${owner}" (field "ownerRole") does not exist. converge does not create it: create it and let it reach ` +
        `what "${current.rolname}" can, e.g. as the master: CREATE ROLE ${q(owner)} NOLOGIN; GRANT ${q(owner)} TO ${q(current.rolname)}; ` +
        `REASSIGN OWNED BY ${q(current.rolname)} TO ${q(owner)}; then grant it what "${current.rolname}" was granted directly. Nothing was changed.`,
    );
  }
  const loginUsers = [current, ...(alternate ? [alternate] : [])];
  if (owner === check.master || loginUsers.some((u) => u.rolname === owner)) {
    throw new OwnerRoleError(
      `owner role "${owner}" must be a role of its own, not the master or a login user of the pair. Nothing was changed.`,
    );
  }
  if (role.rolcanlogin) {
    throw new OwnerRoleError(
      `owner role "${owner}" can log in; it must be NOLOGIN (it would be a third credential nobody rotates): ALTER ROLE ${q(owner)} NOLOGIN. Nothing was changed.`,
    );
  }
  const extra = PRIVILEGED_ATTRIBUTES.filter((a) => role[a] && !current[a]);
  if (extra.length > 0) {
    throw new OwnerRoleError(
      `owner role "${owner}" has ${extra.join(', ')} which "${current.rolname}" lacks; starting sessions as it would raise the ` +
        `application's privileges. Nothing was changed.`,
    );
  }
  const gaps: OwnerRoleGap[] = [];
  for (const user of loginUsers) gaps.push(...(await reachGaps(c, user, role, loginUsers)));
  if (gaps.length > 0) {
    const listed = gaps.slice(0, LISTED).map((g) => `${g.user}: ${g.missing}`);
    const fixes = [...new Set(gaps.map((g) => g.fix))];
    throw new OwnerRoleError(
      `owner role "${owner}" cannot reach everything its login users can, so starting their sessions as it would break them: ` +
        `${listed.join('; ')}${gaps.length > LISTED ? `; and ${gaps.length - LISTED} more` : ''}. ` +
        `Fix, as the master or the objects' owner: ${fixes.join(' ')} Nothing was changed.`,
    );
  }
}

/**
 * What `user` can reach in the connected database that `owner` cannot: objects it owns, privileges
 * granted to it directly, and roles it can use. Nothing is missing when the owner role is itself a
 * member of `user`.
 */
async function reachGaps(
  c: Client,
  user: RoleRow,
  owner: RoleRow,
  pair: readonly RoleRow[],
): Promise<OwnerRoleGap[]> {
  const u = c.escapeIdentifier(user.rolname);
  const o = c.escapeIdentifier(owner.rolname);
  const covered = await c.query<{ yes: boolean }>(
    "SELECT pg_catalog.pg_has_role($1::pg_catalog.oid, $2::pg_catalog.oid, 'USAGE') AS yes",
    [owner.oid, user.oid],
  );
  if (covered.rows[0].yes) return [];
  const gaps: OwnerRoleGap[] = [];

  const owned = await c.query<{ object: string }>(
    `SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) AS object
       FROM pg_catalog.pg_shdepend d
      WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
        AND d.refobjid = $1::pg_catalog.oid
        AND d.deptype = 'o'
        AND d.classid <> 'pg_catalog.pg_default_acl'::pg_catalog.regclass
        AND (d.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
             OR (d.dbid = 0 AND d.classid = 'pg_catalog.pg_database'::pg_catalog.regclass
                 AND d.objid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())))
      ORDER BY 1`,
    [user.oid],
  );
  for (const row of owned.rows) {
    gaps.push({
      user: user.rolname,
      missing: `owns ${row.object}`,
      fix: `GRANT ${o} TO ${u}; REASSIGN OWNED BY ${u} TO ${o};`,
    });
  }

  const granted = await c.query<{
    object: string;
    privilege: string;
    on: string | null;
    col: string | null;
  }>(
    `WITH objects AS (
       SELECT 'pg_catalog.pg_class'::pg_catalog.regclass AS classid, c.oid AS objid, 0 AS objsubid, c.relowner AS objowner, c.relacl AS acl,
              CASE WHEN c.relkind = 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || c.oid::pg_catalog.regclass::pg_catalog.text AS grant_on, NULL::pg_catalog.text AS col
         FROM pg_catalog.pg_class c WHERE c.relacl IS NOT NULL
       UNION ALL
       SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, a.attrelid, a.attnum::pg_catalog.int4, c.relowner, a.attacl,
              'TABLE ' || c.oid::pg_catalog.regclass::pg_catalog.text, pg_catalog.quote_ident(a.attname)
         FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid WHERE a.attacl IS NOT NULL
       UNION ALL
       SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass, n.oid, 0, n.nspowner, n.nspacl, 'SCHEMA ' || pg_catalog.quote_ident(n.nspname), NULL
         FROM pg_catalog.pg_namespace n WHERE n.nspacl IS NOT NULL
       UNION ALL
       SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, p.oid, 0, p.proowner, p.proacl, 'ROUTINE ' || p.oid::pg_catalog.regprocedure::pg_catalog.text, NULL
         FROM pg_catalog.pg_proc p WHERE p.proacl IS NOT NULL
       UNION ALL
       SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid, 0, t.typowner, t.typacl, 'TYPE ' || t.oid::pg_catalog.regtype::pg_catalog.text, NULL
         FROM pg_catalog.pg_type t WHERE t.typacl IS NOT NULL
       UNION ALL
       SELECT 'pg_catalog.pg_language'::pg_catalog.regclass, l.oid, 0, l.lanowner, l.lanacl, 'LANGUAGE ' || pg_catalog.quote_ident(l.lanname), NULL
         FROM pg_catalog.pg_language l WHERE l.lanacl IS NOT NULL
       UNION ALL
       SELECT 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass, w.oid, 0, w.fdwowner, w.fdwacl, 'FOREIGN DATA WRAPPER ' || pg_catalog.quote_ident(w.fdwname), NULL
         FROM pg_catalog.pg_foreign_data_wrapper w WHERE w.fdwacl IS NOT NULL
       UNION ALL
       SELECT 'pg_catalog.pg_foreign_server'::pg_catalog.regclass, s.oid, 0, s.srvowner, s.srvacl, 'FOREIGN SERVER ' || pg_catalog.quote_ident(s.srvname), NULL
         FROM pg_catalog.pg_foreign_server s WHERE s.srvacl IS NOT NULL
       UNION ALL
       SELECT 'pg_catalog.pg_largeobject'::pg_catalog.regclass, m.oid, 0, m.lomowner, m.lomacl, 'LARGE OBJECT ' || m.oid::pg_catalog.text, NULL
         FROM pg_catalog.pg_largeobject_metadata m WHERE m.lomacl IS NOT NULL
       UNION ALL
       SELECT 'pg_catalog.pg_database'::pg_catalog.regclass, d.oid, 0, d.datdba, d.datacl, 'DATABASE ' || pg_catalog.quote_ident(d.datname), NULL
         FROM pg_catalog.pg_database d WHERE d.datacl IS NOT NULL AND d.datname = pg_catalog.current_database()
       UNION ALL
       SELECT 'pg_catalog.pg_tablespace'::pg_catalog.regclass, t.oid, 0, t.spcowner, t.spcacl, 'TABLESPACE ' || pg_catalog.quote_ident(t.spcname), NULL
         FROM pg_catalog.pg_tablespace t WHERE t.spcacl IS NOT NULL
     )
     SELECT pg_catalog.pg_describe_object(x.classid, x.objid, x.objsubid) AS object, e.privilege_type AS privilege, x.grant_on AS on, x.col
       FROM objects x, pg_catalog.aclexplode(x.acl) e
      WHERE e.grantee = $1::pg_catalog.oid
        AND NOT pg_catalog.pg_has_role($2::pg_catalog.oid, x.objowner, 'USAGE')
        AND NOT EXISTS (
          SELECT 1 FROM pg_catalog.aclexplode(x.acl) h
           WHERE h.privilege_type = e.privilege_type
             AND CASE WHEN h.grantee = 0 THEN true ELSE pg_catalog.pg_has_role($2::pg_catalog.oid, h.grantee, 'USAGE') END)
      ORDER BY 1, 2`,
    [user.oid, owner.oid],
  );
  for (const row of granted.rows) {
    const privilege = row.col ? `${row.privilege} (${row.col})` : row.privilege;
    gaps.push({
      user: user.rolname,
      missing: `${privilege} on ${row.object}`,
      fix: `GRANT ${privilege} ON ${row.on} TO ${o};`,
    });
  }

  const roles = await c.query<{ rolname: string }>(
    `SELECT r.rolname FROM pg_catalog.pg_roles r
      WHERE r.oid <> ALL ($1::pg_catalog.oid[])
        AND pg_catalog.pg_has_role($2::pg_catalog.oid, r.oid, 'USAGE')
        AND NOT pg_catalog.pg_has_role($3::pg_catalog.oid, r.oid, 'USAGE')
      ORDER BY 1`,
    [[owner.oid, ...pair.map((p) => p.oid)], user.oid, owner.oid],
  );
  for (const row of roles.rows) {
    gaps.push({
      user: user.rolname,
      missing: `member of role ${row.rolname}`,
      fix: `GRANT ${c.escapeIdentifier(row.rolname)} TO ${o};`,
    });
  }
  return gaps;
}
