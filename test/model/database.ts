/**
 * The model test's database, created once per process and reset between runs: creating a
 * database and three roles per run would cost more than most runs' commands.
 *
 * A reset gives every run the same start as a fresh database: the tenant's sessions are gone, the
 * alternate user converge created is dropped, the application user has a new password, LOGIN, no
 * extra attributes, and exactly the tenant's trap settings, and the probe log is empty. The
 * tenant's traps (functions, an operator, its search_path) stay planted.
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import {
  provisionDatabase,
  withAdmin,
  type LocalPostgres,
  type ProvisionedDatabase,
} from '../../cli/local/postgres';
import { tlsSettings } from '../../lambda/shared/pg-connection';
import { alternateUsername } from '../../lambda/shared/secret';
import { runScoped } from './faults';

/** SQL the tenant (the rotated user) runs once: a probe and traps for the master's session. */
function tenantTraps(app: string, lit: (s: string) => string): string[] {
  return [
    'CREATE TABLE public.converge_probe_log (who text, as_role text, what text)',
    'GRANT INSERT ON public.converge_probe_log TO PUBLIC',
    `CREATE FUNCTION public.converge_probe(what text) RETURNS boolean LANGUAGE plpgsql AS $f$
      BEGIN
        INSERT INTO public.converge_probe_log VALUES (pg_catalog."session_user"(), pg_catalog."current_user"(), what);
        BEGIN EXECUTE pg_catalog.format('ALTER ROLE %I CREATEROLE', ${lit(app)}); EXCEPTION WHEN others THEN NULL; END;
        RETURN true;
      END $f$`,
    'GRANT EXECUTE ON FUNCTION public.converge_probe(text) TO PUBLIC',
    `CREATE FUNCTION public.set_config(text, text, boolean) RETURNS text LANGUAGE plpgsql AS $f$
      BEGIN PERFORM public.converge_probe('set_config'); RETURN pg_catalog.set_config($1, $2, $3); END $f$`,
    `CREATE FUNCTION public.current_setting(text) RETURNS text LANGUAGE plpgsql AS $f$
      BEGIN PERFORM public.converge_probe('current_setting'); RETURN pg_catalog.current_setting($1); END $f$`,
    `CREATE FUNCTION public.pg_has_role(text, text, text) RETURNS boolean LANGUAGE plpgsql AS $f$
      BEGIN PERFORM public.converge_probe('pg_has_role'); RETURN pg_catalog.pg_has_role($1::name, $2::name, $3); END $f$`,
    `CREATE FUNCTION public.host(inet) RETURNS text LANGUAGE plpgsql AS $f$
      BEGIN PERFORM public.converge_probe('host'); RETURN pg_catalog.host($1); END $f$`,
    `CREATE FUNCTION public.pg_backend_pid() RETURNS integer LANGUAGE plpgsql AS $f$
      BEGIN PERFORM public.converge_probe('pg_backend_pid'); RETURN pg_catalog.pg_backend_pid(); END $f$`,
    `CREATE FUNCTION public.converge_probe_eq(name, name) RETURNS boolean LANGUAGE plpgsql AS $f$
      BEGIN PERFORM public.converge_probe('= on name'); RETURN pg_catalog.nameeq($1, $2); END $f$`,
    'CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = name, FUNCTION = public.converge_probe_eq)',
    `CREATE FUNCTION public.converge_probe_eq_text(name, text) RETURNS boolean LANGUAGE plpgsql AS $f$
      BEGIN PERFORM public.converge_probe('= on name, text'); RETURN pg_catalog.nameeqtext($1, $2); END $f$`,
    'CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = text, FUNCTION = public.converge_probe_eq_text)',
    `CREATE FUNCTION public.converge_probe_eq_oid(oid, oid) RETURNS boolean LANGUAGE plpgsql AS $f$
      BEGIN PERFORM public.converge_probe('= on oid'); RETURN pg_catalog.oideq($1, $2); END $f$`,
    'CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = public.converge_probe_eq_oid)',
  ];
}

/** The tenant's own role settings: its search_path puts its schema before the catalog. */
function tenantSettings(app: string): string[] {
  return [
    `ALTER ROLE ${app} SET search_path = public, pg_catalog`,
    `ALTER ROLE ${app} SET lock_timeout = '7s'`,
  ];
}

/**
 * @example
 * const database = await ModelDatabase.create(server);
 * const names = await database.reset(); // before every run
 */
export class ModelDatabase {
  private constructor(
    public readonly server: LocalPostgres,
    private readonly provisioned: ProvisionedDatabase,
    /**
     * A superuser session on the database (search_path pinned to the catalog), kept open for the
     * resets and the invariant checker: a run opens no session of its own to observe.
     */
    public readonly admin: Client,
  ) {}

  public static async create(server: LocalPostgres): Promise<ModelDatabase> {
    const tag = randomBytes(4).toString('hex');
    const db = await provisionDatabase(server, {
      dbname: `model_db_${tag}`,
      master: `model_master_${tag}`,
      app: `model_app_${tag}`,
    });
    // A DBA's default that puts the application's schema first, for every session of the database:
    // what the master's pinned search_path is there for (the tenant's traps would run otherwise).
    await withAdmin(server, db.dbname, server.superuser, (c) =>
      c.query(
        `ALTER DATABASE ${c.escapeIdentifier(db.dbname)} SET search_path = public, pg_catalog`,
      ),
    );
    await withAdmin(server, db.dbname, db.app, async (c) => {
      for (const sql of tenantTraps(db.app.username, (v) => c.escapeLiteral(v))) await c.query(sql);
    });
    const admin = new Client({
      host: server.host,
      port: server.port,
      database: db.dbname,
      user: server.superuser.username,
      password: server.superuser.password,
      ssl: tlsSettings(server.tls ? 'verify-full' : 'disable', server.host, {
        caBundlePath: server.caBundlePath,
      }),
      options: '-c search_path=pg_catalog,pg_temp',
    });
    admin.on('error', () => undefined);
    await runScoped({ actor: 'checker' }, () => admin.connect());
    return new ModelDatabase(server, db, admin);
  }

  /** The users a run's secret can name: the application user and its alternate. */
  public get users(): string[] {
    return [
      this.provisioned.app.username,
      alternateUsername({ username: this.provisioned.app.username }),
    ];
  }

  /** Resets the database to a run's start (see the file comment) and returns its names and passwords. */
  public async reset(): Promise<ProvisionedDatabase> {
    const c = this.admin;
    const [app, alt] = this.users.map((u) => c.escapeIdentifier(u));
    await runScoped({ actor: 'checker' }, async () => {
      // With a timeout, pg_terminate_backend waits until the session has ended.
      for (let i = 0; i < 100; i++) {
        const left = await c.query<{ n: number }>(
          'SELECT count(pg_catalog.pg_terminate_backend(pid, 5000))::int AS n FROM pg_catalog.pg_stat_activity WHERE usename = ANY($1::text[])',
          [this.users],
        );
        if (left.rows[0].n === 0) break;
      }
      if (
        (await c.query('SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1', [this.users[1]]))
          .rows.length > 0
      ) {
        await c.query(`DROP OWNED BY ${alt}`);
        await c.query(`DROP ROLE ${alt}`);
      }
      await c.query(`ALTER ROLE ${app} RESET ALL`);
      for (const sql of tenantSettings(app)) await c.query(sql);
      await c.query('TRUNCATE public.converge_probe_log');
    });
    const password = `pw-${randomBytes(12).toString('hex')}`;
    await runScoped({ actor: 'checker' }, () =>
      c.query(
        `ALTER ROLE ${app} WITH LOGIN NOCREATEROLE NOCREATEDB PASSWORD ${c.escapeLiteral(password)}`,
      ),
    );
    return { ...this.provisioned, app: { username: this.provisioned.app.username, password } };
  }

  /** Drops the database and its roles. */
  public async drop(): Promise<void> {
    await this.admin.end().catch(() => undefined);
    const { server } = this;
    await withAdmin(server, 'postgres', server.superuser, async (c) => {
      await c.query(
        `DROP DATABASE IF EXISTS ${c.escapeIdentifier(this.provisioned.dbname)} WITH (FORCE)`,
      );
      for (const role of [...this.users, this.provisioned.master.username])
        await c.query(`DROP ROLE IF EXISTS ${c.escapeIdentifier(role)}`);
    });
  }
}
