/**
 * The rotated user is untrusted: it can create functions, operators and views in schemas it can
 * write, and set its own per-role settings. None of that may ever run with the master's privileges.
 * Each attack below plants a probe: if any of its objects runs, it writes session_user and
 * current_user to a table and tries to give the application user CREATEROLE. After the rotation the
 * table must be empty, the application user unchanged, and the rotation complete.
 */
import { withAdmin } from '../../../cli/local/postgres';
import { OwnerRoleError } from '../../../lambda/shared/errors';
import { expectNoSecretsInOutput } from '../../support/captured-output';
import { asSuperuser, uniqueTag } from '../../support/database';
import { createRotationHarness, type RotationHarness } from '../../support/rotation-harness';

type Sql = (sql: string) => Promise<unknown>;

/** Runs SQL as the application user itself (the attacker). */
function asApp(h: RotationHarness, fn: (q: Sql) => Promise<unknown>): Promise<unknown> {
  return withAdmin(h.db.server, h.db.dbname, h.db.app, (c) => fn((sql) => c.query(sql)));
}

/** The probe every attack calls: logs who ran it and tries to escalate the application user. */
function plantProbe(h: RotationHarness, schema = 'public'): Promise<unknown> {
  return asApp(h, async (q) => {
    await q(`CREATE TABLE ${schema}.converge_probe_log (who text, as_role text, what text)`);
    await q(`GRANT INSERT ON ${schema}.converge_probe_log TO PUBLIC`);
    await q(`CREATE FUNCTION ${schema}.converge_probe(what text) RETURNS void LANGUAGE plpgsql AS $f$
      BEGIN
        INSERT INTO ${schema}.converge_probe_log VALUES (pg_catalog."session_user"(), pg_catalog."current_user"(), what);
        BEGIN
          EXECUTE pg_catalog.format('ALTER ROLE %I CREATEROLE', ${escapeLiteral(h.db.app.username)});
        EXCEPTION WHEN others THEN NULL;
        END;
      END $f$`);
    await q(`GRANT EXECUTE ON FUNCTION ${schema}.converge_probe(text) TO PUBLIC`);
  });
}

function escapeLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** Everything the probe recorded, and whether the application user gained CREATEROLE. */
async function aftermath(h: RotationHarness, schema = 'public') {
  return asSuperuser(h.db.dbname, async (c) => ({
    probeRan: (await c.query(`SELECT who, as_role, what FROM ${schema}.converge_probe_log`)).rows,
    appCanCreateRoles: (
      await c.query('SELECT rolcreaterole FROM pg_roles WHERE rolname = $1', [h.db.app.username])
    ).rows[0].rolcreaterole,
  }));
}

/**
 * Rotates; when the owner-role check asks for prerequisites (the attack's own objects are owned by
 * the application user), applies exactly the SQL it names, as an operator would, and retries.
 */
async function rotateAsOperator(h: RotationHarness): Promise<void> {
  const err = await h.rotate().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err === undefined) return;
  if (!(err instanceof OwnerRoleError)) throw err;
  const fix = /Fix, as the master or the objects' owner: (.*) Nothing was changed\.$/.exec(
    err.message,
  )![1];
  await asSuperuser(h.db.dbname, (c) => c.query(fix));
  await h.retry();
}

/** A harness whose secret names an owner role that the master created (so the arrangement runs). */
async function withOwnerRole(prefix: string): Promise<RotationHarness> {
  const owner = `${prefix}_owner_${uniqueTag()}`;
  const h = await createRotationHarness({ prefix, secretFields: { ownerRole: owner } });
  await withAdmin(h.db.server, h.db.dbname, h.db.master, (c) =>
    c.query(`CREATE ROLE ${c.escapeIdentifier(owner)} NOLOGIN`),
  );
  await asSuperuser(h.db.dbname, (c) =>
    c.query(`GRANT ${c.escapeIdentifier(owner)} TO ${c.escapeIdentifier(h.db.app.username)}`),
  );
  return h;
}

describe('Hostile tenant: the rotated user attacks the master session', () => {
  const harnesses: RotationHarness[] = [];
  afterAll(() => expectNoSecretsInOutput(harnesses.flatMap((h) => h.passwords())));

  it('1. shadows set_config in public and puts public before pg_catalog in its own search_path', async () => {
    // Prepare
    const h = await createRotationHarness({ prefix: 'hset' });
    harnesses.push(h);
    await plantProbe(h);
    await asApp(h, async (q) => {
      await q(`CREATE FUNCTION public.set_config(text, text, boolean) RETURNS text LANGUAGE plpgsql AS $f$
        BEGIN PERFORM public.converge_probe('set_config'); RETURN pg_catalog.set_config($1, $2, $3); END $f$`);
      await q(`ALTER ROLE ${h.db.app.username} SET search_path = public, pg_catalog`);
      await q(`ALTER ROLE ${h.db.app.username} SET statement_timeout = '31s'`);
      await q(`ALTER ROLE ${h.db.app.username} SET lock_timeout = '7s'`);
    });
    // Act
    await h.rotate();
    // Assess
    expect(await aftermath(h)).toEqual({ probeRan: [], appCanCreateRoles: false });
    expect(h.current().generation).toBe(1);
  });

  it('2. adds a pg_has_role(text, text, text) overload in public, which wins resolution for untyped arguments', async () => {
    // Prepare
    const h = await withOwnerRole('hphr');
    harnesses.push(h);
    await plantProbe(h);
    await asApp(h, (q) =>
      q(`CREATE FUNCTION public.pg_has_role(text, text, text) RETURNS boolean LANGUAGE plpgsql AS $f$
        BEGIN PERFORM public.converge_probe('pg_has_role'); RETURN pg_catalog.pg_has_role($1::name, $2::name, $3); END $f$`),
    );
    // Act
    await rotateAsOperator(h);
    // Assess
    expect(await aftermath(h)).toEqual({ probeRan: [], appCanCreateRoles: false });
    expect(h.current().generation).toBe(1);
  });

  it('3. creates its own schema, puts it first in its search_path, and shadows set_config and current_setting there', async () => {
    // Prepare: an application allowed to create schemas
    const h = await createRotationHarness({ prefix: 'hsch' });
    harnesses.push(h);
    await withAdmin(h.db.server, h.db.dbname, h.db.master, (c) =>
      c.query(
        `GRANT CREATE ON DATABASE ${c.escapeIdentifier(h.db.dbname)} TO ${c.escapeIdentifier(h.db.app.username)}`,
      ),
    );
    await asApp(h, (q) => q('CREATE SCHEMA evil'));
    await plantProbe(h, 'evil');
    await asApp(h, async (q) => {
      await q(`CREATE FUNCTION evil.set_config(text, text, boolean) RETURNS text LANGUAGE plpgsql AS $f$
        BEGIN PERFORM evil.converge_probe('set_config'); RETURN pg_catalog.set_config($1, $2, $3); END $f$`);
      await q(`CREATE FUNCTION evil.current_setting(text) RETURNS text LANGUAGE plpgsql AS $f$
        BEGIN PERFORM evil.converge_probe('current_setting'); RETURN pg_catalog.current_setting($1); END $f$`);
      await q('GRANT USAGE ON SCHEMA evil TO PUBLIC');
      await q(`ALTER ROLE ${h.db.app.username} SET search_path = evil, pg_catalog, public`);
      await q(`ALTER ROLE ${h.db.app.username} SET work_mem = '8MB'`);
    });
    // Act: the first rotation copies the settings, the second changes the (original) user's password
    await h.rotate();
    await h.rotate();
    // Assess
    expect(await aftermath(h, 'evil')).toEqual({ probeRan: [], appCanCreateRoles: false });
    expect(h.current().generation).toBe(2);
  });

  it('4. shadows the pg_roles catalog view with a view that calls its function', async () => {
    // Prepare
    const h = await withOwnerRole('hview');
    harnesses.push(h);
    await plantProbe(h);
    await asApp(h, async (q) => {
      await q(`CREATE FUNCTION public.converge_probe_row() RETURNS boolean LANGUAGE plpgsql AS $f$
        BEGIN PERFORM public.converge_probe('pg_roles view'); RETURN true; END $f$`);
      await q(
        'CREATE VIEW public.pg_roles AS SELECT r.*, public.converge_probe_row() AS probed FROM pg_catalog.pg_roles r',
      );
      await q('GRANT SELECT ON public.pg_roles TO PUBLIC');
      await q(`ALTER ROLE ${h.db.app.username} SET search_path = public, pg_catalog`);
      await q(`ALTER ROLE ${h.db.app.username} SET idle_in_transaction_session_timeout = '60s'`);
    });
    // Act
    await rotateAsOperator(h);
    // Assess
    expect(await aftermath(h)).toEqual({ probeRan: [], appCanCreateRoles: false });
    expect(h.current().generation).toBe(1);
  });

  it('5. defines its own = operator on name, ahead of the catalog one in its search_path', async () => {
    // Prepare
    const h = await withOwnerRole('hop');
    harnesses.push(h);
    await plantProbe(h);
    await asApp(h, async (q) => {
      await q(`CREATE FUNCTION public.converge_probe_eq(name, name) RETURNS boolean LANGUAGE plpgsql AS $f$
        BEGIN PERFORM public.converge_probe('= operator'); RETURN pg_catalog.nameeq($1, $2); END $f$`);
      await q(
        'CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = name, FUNCTION = public.converge_probe_eq)',
      );
      await q(`ALTER ROLE ${h.db.app.username} SET search_path = public, pg_catalog`);
      await q(`ALTER ROLE ${h.db.app.username} SET lock_timeout = '5s'`);
    });
    // Act
    await rotateAsOperator(h);
    // Assess
    expect(await aftermath(h)).toEqual({ probeRan: [], appCanCreateRoles: false });
    expect(h.current().generation).toBe(1);
  });

  it('6. stores settings whose values and list elements are SQL: they are copied as data, never run', async () => {
    // Prepare
    const h = await createRotationHarness({ prefix: 'hval' });
    harnesses.push(h);
    await plantProbe(h);
    await asApp(h, async (q) => {
      await q(
        `ALTER ROLE ${h.db.app.username} SET application_name = $v$x'; SELECT public.converge_probe('value'); --$v$`,
      );
      await q(
        `ALTER ROLE ${h.db.app.username} SET search_path = "a""b', (SELECT public.converge_probe('list'))) --", public`,
      );
    });
    // Act
    await h.rotate();
    // Assess
    expect(await aftermath(h)).toEqual({ probeRan: [], appCanCreateRoles: false });
    const copied = await asSuperuser(
      h.db.dbname,
      async (c) =>
        (
          await c.query<{ s: string[] }>(
            'SELECT setconfig AS s FROM pg_db_role_setting WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = $1)',
            [h.current().username],
          )
        ).rows[0].s,
    );
    expect(copied).toEqual([
      `application_name=x'; SELECT public.converge_probe('value'); --`,
      `search_path="a""b', (SELECT public.converge_probe('list'))) --", public`,
    ]);
  });

  it('7. shadows the session functions the revocation guard uses (host, pg_backend_pid) before the second rotation', async () => {
    // Prepare
    const h = await createRotationHarness({ prefix: 'hguard' });
    harnesses.push(h);
    await plantProbe(h);
    await h.rotate();
    await asApp(h, async (q) => {
      await q(`CREATE FUNCTION public.host(inet) RETURNS text LANGUAGE plpgsql AS $f$
        BEGIN PERFORM public.converge_probe('host'); RETURN pg_catalog.host($1); END $f$`);
      await q(`CREATE FUNCTION public.pg_backend_pid() RETURNS integer LANGUAGE plpgsql AS $f$
        BEGIN PERFORM public.converge_probe('pg_backend_pid'); RETURN pg_catalog.pg_backend_pid(); END $f$`);
    });
    // Act: the second rotation runs the guard on the original user
    await h.rotate();
    // Assess
    expect(await aftermath(h)).toEqual({ probeRan: [], appCanCreateRoles: false });
    expect(h.current().generation).toBe(2);
  });
});
