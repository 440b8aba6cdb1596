import { withAdmin } from '../../../cli/local/postgres';
import { OwnerRoleError } from '../../../lambda/shared/errors';
import { withClient } from '../../../lambda/shared/pg-connection';
import type { DbSecret } from '../../../lambda/shared/secret';
import { capturedOutput, expectNoSecretsInOutput } from '../../support/captured-output';
import { asSuperuser, rolesLike, uniqueTag } from '../../support/database';
import {
  AWSPREVIOUS,
  createRotationHarness,
  type RotationHarness,
} from '../../support/rotation-harness';

function as<T>(
  h: RotationHarness,
  s: DbSecret,
  fn: (q: (sql: string, p?: unknown[]) => Promise<Record<string, unknown>[]>) => Promise<T>,
): Promise<T> {
  return withClient(
    { host: s.host, port: s.port, dbname: s.dbname, ssl: s.ssl },
    s,
    { caBundlePath: h.config.caBundlePath },
    (c) => fn(async (sql, p) => (await c.query(sql, p)).rows),
  );
}

/** What a new session of `s` starts as, and whether it can still use the application's table. */
async function sessionOf(
  h: RotationHarness,
  s: DbSecret,
): Promise<{ role: unknown; items: unknown }> {
  return as(h, s, async (q) => ({
    role: (await q('SHOW role'))[0].role,
    items: (await q('SELECT count(*)::int AS n FROM items'))[0].n,
  }));
}

/** The per-role settings stored for `role` (ALTER ROLE .. SET). */
async function settingsOf(h: RotationHarness, role: string): Promise<string[]> {
  return asSuperuser(h.db.dbname, async (c) =>
    (
      await c.query<{ s: string }>(
        'SELECT unnest(setconfig) AS s FROM pg_db_role_setting WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = $1) ORDER BY 1',
        [role],
      )
    ).rows.map((r) => r.s),
  );
}

/** The SQL an OwnerRoleError tells the operator to run. */
function fixFrom(err: OwnerRoleError): string {
  const m = /Fix, as the master or the objects' owner: (.*) Nothing was changed\.$/.exec(
    err.message,
  );
  if (!m) throw new Error(`no fix in: ${err.message}`);
  return m[1];
}

describe('Rotation: ownerRole prerequisites are checked before anything changes', () => {
  const harnesses: RotationHarness[] = [];
  afterAll(() => expectNoSecretsInOutput(harnesses.flatMap((h) => h.passwords())));

  it('refuses a missing owner role without creating it or touching the current user', async () => {
    // Prepare
    const owner = `own_missing_${uniqueTag()}`;
    const h = await createRotationHarness({
      prefix: 'ownmiss',
      secretFields: { ownerRole: owner },
    });
    harnesses.push(h);
    const before = {
      roles: await rolesLike(`${h.db.app.username}%`),
      versions: h.model.snapshot(h.secretArn),
    };
    // Act
    const err = await h.rotate().catch((e: unknown) => e);
    // Assess
    expect(err).toBeInstanceOf(OwnerRoleError);
    expect((err as Error).message).toContain(
      `owner role "${owner}" (field "ownerRole") does not exist`,
    );
    expect(await rolesLike(owner)).toEqual([]);
    expect(await rolesLike(`${h.db.app.username}%`)).toEqual(before.roles);
    expect(await settingsOf(h, h.db.app.username)).toEqual([]);
    expect(await sessionOf(h, h.current())).toEqual({ role: 'none', items: 1 });
  });

  it('refuses while the owner role cannot reach what the current user owns or was granted, naming each gap and the SQL that closes it', async () => {
    // Prepare: an owner role without the application's table, and a grant made to the user directly
    const owner = `own_gap_${uniqueTag()}`;
    const h = await createRotationHarness({ prefix: 'owngap', secretFields: { ownerRole: owner } });
    harnesses.push(h);
    await withAdmin(h.db.server, h.db.dbname, h.db.master, async (c) => {
      await c.query(`CREATE ROLE ${c.escapeIdentifier(owner)} NOLOGIN`);
      await c.query('CREATE TABLE reference_data (code text)');
      await c.query(`GRANT SELECT ON reference_data TO ${c.escapeIdentifier(h.db.app.username)}`);
    });
    const before = await rolesLike(`${h.db.app.username}%`);
    // Act
    const err = (await h.rotate().catch((e: unknown) => e)) as OwnerRoleError;
    // Assess: nothing changed, and the message says what and how
    expect(err).toBeInstanceOf(OwnerRoleError);
    expect(err.message).toContain(`${h.db.app.username}: owns table public.items`);
    expect(err.message).toContain(`${h.db.app.username}: SELECT on table public.reference_data`);
    expect(fixFrom(err)).toContain(`REASSIGN OWNED BY "${h.db.app.username}" TO "${owner}";`);
    expect(fixFrom(err)).toContain(`GRANT SELECT ON TABLE public.reference_data TO "${owner}";`);
    expect(await rolesLike(`${h.db.app.username}%`)).toEqual(before);
    expect(await settingsOf(h, h.db.app.username)).toEqual([]);
    expect(await sessionOf(h, h.current())).toEqual({ role: 'none', items: 1 });

    // Act: the operator runs exactly the SQL the error gave, then the rotation is retried
    await asSuperuser(h.db.dbname, (c) => c.query(fixFrom(err)));
    await h.retry();
    // Assess: the clone starts as the owner role and reaches everything; the previous user is unchanged
    const clone = h.current();
    const original = h.secret(AWSPREVIOUS);
    expect(await sessionOf(h, clone)).toEqual({ role: owner, items: 1 });
    expect(await as(h, clone, (q) => q('SELECT count(*)::int AS n FROM reference_data'))).toEqual([
      { n: 0 },
    ]);
    expect(await sessionOf(h, original)).toEqual({ role: 'none', items: 1 });
    expect(await settingsOf(h, original.username)).toEqual([]);
  });

  it('refuses an owner role that can log in or is the master', async () => {
    // Prepare
    const loginOwner = `own_login_${uniqueTag()}`;
    const h = await createRotationHarness({
      prefix: 'ownbad',
      secretFields: { ownerRole: loginOwner },
    });
    harnesses.push(h);
    await withAdmin(h.db.server, h.db.dbname, h.db.master, (c) =>
      c.query(`CREATE ROLE ${c.escapeIdentifier(loginOwner)} LOGIN`),
    );
    const masterAsOwner = await createRotationHarness({ prefix: 'ownmst' });
    harnesses.push(masterAsOwner);
    const m = await createRotationHarness({
      prefix: 'ownmst2',
      secretFields: { ownerRole: masterAsOwner.db.master.username },
    });
    harnesses.push(m);
    // Act
    const loginErr = await h.rotate().catch((e: unknown) => e);
    const masterErr = await m.rotate().catch((e: unknown) => e);
    // Assess
    expect(loginErr).toBeInstanceOf(OwnerRoleError);
    expect((loginErr as Error).message).toContain('must be NOLOGIN');
    expect(masterErr).toBeInstanceOf(OwnerRoleError);
  });
});

describe('Rotation: ownerRole (objects usable by both login roles)', () => {
  let h: RotationHarness;
  let owner: string;

  beforeAll(async () => {
    owner = `orders_owner_${uniqueTag()}`;
    h = await createRotationHarness({ prefix: 'own', secretFields: { ownerRole: owner } });
    // The operator's part (README, ownerRole): the owner role exists, the application user is its
    // member, owns nothing itself any more, and the owner role holds the schema privileges.
    await withAdmin(h.db.server, h.db.dbname, h.db.master, (c) =>
      c.query(`CREATE ROLE ${c.escapeIdentifier(owner)} NOLOGIN`),
    );
    await asSuperuser(h.db.dbname, async (c) => {
      const o = c.escapeIdentifier(owner);
      const app = c.escapeIdentifier(h.db.app.username);
      await c.query(`GRANT ${o} TO ${app}`);
      await c.query(`REASSIGN OWNED BY ${app} TO ${o}`);
      await c.query(`GRANT CREATE, USAGE ON SCHEMA public TO ${o}`);
    });
  });

  afterAll(() => expectNoSecretsInOutput(h.passwords()));

  it('a table created by the clone is owned by the owner role and usable by the original user', async () => {
    // Prepare: first rotation creates the clone; both users now log in
    await h.rotate();
    const clone = h.current();
    const original = h.secret(AWSPREVIOUS);
    // Act
    await as(h, clone, (q) =>
      q("CREATE TABLE made_by_clone (v text); INSERT INTO made_by_clone VALUES ('c')"),
    );
    const seenByOriginal = await as(h, original, async (q) => {
      await q("INSERT INTO made_by_clone VALUES ('o')");
      return q('SELECT v FROM made_by_clone ORDER BY v');
    });
    // Assess
    expect(seenByOriginal).toEqual([{ v: 'c' }, { v: 'o' }]);
    const owners = await asSuperuser(
      h.db.dbname,
      async (c) =>
        (await c.query("SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_clone'")).rows,
    );
    expect(owners).toEqual([{ tableowner: owner }]);
  });

  it('arranges the original user only when it becomes pending again, and refuses first while it owns what it created meanwhile', async () => {
    // Prepare: the previous user, not yet arranged, creates a table of its own
    const original = h.secret(AWSPREVIOUS);
    expect(await sessionOf(h, original)).toEqual({ role: 'none', items: 1 });
    await as(h, original, (q) =>
      q("CREATE TABLE made_by_original (v text); INSERT INTO made_by_original VALUES ('o')"),
    );
    // Act
    const err = (await h.rotate().catch((e: unknown) => e)) as OwnerRoleError;
    // Assess: the table would become unreachable for it; the operator is told to reassign it
    expect(err).toBeInstanceOf(OwnerRoleError);
    expect(err.message).toContain(`${original.username}: owns table public.made_by_original`);
    expect(await sessionOf(h, original)).toEqual({ role: 'none', items: 1 });

    // Act: the operator reassigns; the rotation is retried
    await asSuperuser(h.db.dbname, (c) => c.query(fixFrom(err)));
    await h.retry();
    // Assess: the original user now starts as the owner role and reaches both tables
    expect(h.current().username).toBe(original.username);
    expect(await sessionOf(h, h.current())).toEqual({ role: owner, items: 1 });
    const counts = await as(h, h.current(), (q) =>
      q(
        'SELECT (SELECT count(*)::int FROM made_by_clone) AS c, (SELECT count(*)::int FROM made_by_original) AS o',
      ),
    );
    expect(counts).toEqual([{ c: 2, o: 1 }]);
    const row = await asSuperuser(
      h.db.dbname,
      async (c) =>
        (await c.query('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [owner])).rows[0],
    );
    expect(row).toEqual({ rolcanlogin: false });
  });
});

describe('Rotation: per-role settings are copied to the alternate user', () => {
  it('copies search_path (list-valued, quoted elements) and a quoted value exactly', async () => {
    // Prepare
    const h = await createRotationHarness({ prefix: 'set' });
    // ... set by the user itself, as any login role may
    await withAdmin(h.db.server, h.db.dbname, h.db.app, async (c) => {
      const app = c.escapeIdentifier(h.db.app.username);
      await c.query(`ALTER ROLE ${app} SET search_path = app, "Mixed Case", "$user", public`);
      await c.query(`ALTER ROLE ${app} SET application_name = 'it''s "quoted"'`);
    });
    // Act
    await h.rotate();
    // Assess
    const clone = h.current();
    expect(await settingsOf(h, clone.username)).toEqual(await settingsOf(h, h.db.app.username));
    expect(await settingsOf(h, clone.username)).toContain(`application_name=it's "quoted"`);
    const shown = await as(h, clone, (q) => q("SELECT current_setting('search_path') AS p"));
    expect(shown).toEqual([{ p: 'app, "Mixed Case", "$user", public' }]);
    expectNoSecretsInOutput(h.passwords());
  });

  it('skips a setting only a superuser may set, names it in a warning, and still creates the alternate user', async () => {
    // Prepare
    const h = await createRotationHarness({ prefix: 'setsu' });
    await asSuperuser(h.db.dbname, (c) =>
      c.query(`ALTER ROLE ${c.escapeIdentifier(h.db.app.username)} SET log_statement = 'all'`),
    );
    // Act
    await h.rotate();
    // Assess
    expect(await settingsOf(h, h.current().username)).toEqual([]);
    const warning = capturedOutput().find((l) =>
      l.includes('were not copied to the alternate user'),
    );
    expect(warning).toContain('log_statement');
    expectNoSecretsInOutput(h.passwords());
  });
});
