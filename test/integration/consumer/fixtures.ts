/**
 * A database on the shared TLS PostgreSQL plus its secret in the in-memory Secrets Manager, with
 * the moves a rotation makes done by hand (create or alter a role as the master, stage versions),
 * so the consumer can be tested independently of the rotation handler.
 */
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Socket } from 'node:net';
import type { Client } from 'pg';
import { installSecretsManagerModel, type SecretsManagerStub } from '../../../cli/local/install';
import { withAdmin, type LocalPostgres, type ProvisionedDatabase } from '../../../cli/local/postgres';
import { SecretsManagerModel } from '../../../cli/local/secrets-manager-model';
import type { RotatingPgPool } from '../../../consumer/rotating-pg-pool';
import { asSuperuser, freshDatabase } from '../../support/database';

export interface Credential {
  readonly username: string;
  readonly password: string;
  readonly generation: number;
}

export interface ConsumerWorld {
  readonly db: ProvisionedDatabase & { server: LocalPostgres };
  readonly model: SecretsManagerModel;
  readonly sm: SecretsManagerStub;
  readonly secretArn: string;
  /** The credential of generation 1 (the provisioned application role). */
  readonly first: Credential;
  /** Every password handed out so far: none may ever be printed. */
  readonly passwords: string[];
  /** The secret's JSON for a credential. */
  json(c: Credential): string;
  /** A new login role that can do what the application role can (what setSecret creates). */
  createUser(username: string, generation: number, password?: string): Promise<Credential>;
  /** A new password for an existing role (what setSecret's ALTER ROLE does). */
  changePassword(username: string, generation: number): Promise<Credential>;
  /** Writes a version labelled AWSCURRENT directly; returns its id. */
  putCurrent(c: Credential): string;
  /** Writes a version labelled AWSPENDING (what createSecret does); returns its id. */
  putPending(c: Credential): string;
  /** Moves AWSCURRENT to a version (what finishSecret does). */
  promote(versionId: string): void;
  /** Removes AWSPENDING from a version (an operator aborting the rotation). */
  abort(versionId: string): void;
  /** Backends connected to the database, except the one asking. */
  sessions(): Promise<{ pid: number; usename: string }[]>;
  /** With `viaProxy`: the TCP proxy the secret's port points at (every login of a consumer goes through it). */
  readonly proxy?: TcpProxy;
}

/** A TCP proxy in front of PostgreSQL that counts connections: each one is a login attempt. */
export interface TcpProxy {
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  close(): Promise<void>;
}

/**
 * Forwards 127.0.0.1:<port> to PostgreSQL, byte for byte (TLS passes through untouched, so
 * `verify-full` still holds), counting connections.
 *
 * @example
 * const proxy = await tcpProxy(db.server.port);
 */
export async function tcpProxy(targetPort: number): Promise<TcpProxy> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('close', () => sockets.delete(s));
  };
  const server = createServer((client) => {
    connections++;
    const upstream = connect(targetPort, '127.0.0.1');
    track(client);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    get connections() {
      return connections;
    },
    async close() {
      for (const s of sockets) s.destroy();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let installed: { model: SecretsManagerModel; sm: SecretsManagerStub } | undefined;

/** The test file's Secrets Manager model, installed behind the SDK once. */
function secretsManager(): { model: SecretsManagerModel; sm: SecretsManagerStub } {
  if (!installed) {
    const model = new SecretsManagerModel();
    installed = { model, sm: installSecretsManagerModel(model) };
  }
  return installed;
}

function password(): string {
  return `pw-${randomBytes(12).toString('hex')}`;
}

/**
 * A fresh database and its secret. `viaProxy`: the secret's port is a counting {@link tcpProxy} in
 * front of the server (the fixture's own admin connections do not go through it).
 */
export async function consumerWorld(prefix: string, options: { readonly viaProxy?: boolean } = {}): Promise<ConsumerWorld> {
  const { model, sm } = secretsManager();
  const db = await freshDatabase(prefix);
  const proxy = options.viaProxy ? await tcpProxy(db.server.port) : undefined;
  const passwords = [db.master.password, db.app.password];
  const first: Credential = { ...db.app, generation: 1 };
  const json = (c: Credential) =>
    JSON.stringify({
      engine: 'postgres',
      host: 'localhost',
      port: proxy?.port ?? db.server.port,
      username: c.username,
      password: c.password,
      dbname: db.dbname,
      masterarn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf',
      ssl: 'verify-full',
      generation: c.generation,
    });
  const secretArn = model.createSecret({ Name: `${prefix}-${randomBytes(3).toString('hex')}`, SecretString: json(first) }).ARN!;
  const asMaster = <T>(fn: (c: Client) => Promise<T>) => withAdmin(db.server, db.dbname, db.master, fn);
  const currentVersion = () =>
    Object.entries(model.snapshot(secretArn)).find(([, v]) => v.stages.includes('AWSCURRENT'))![0];
  return {
    db,
    model,
    sm,
    secretArn,
    first,
    passwords,
    json,
    async createUser(username, generation, pw = password()) {
      const c = { username, password: pw, generation };
      passwords.push(c.password);
      await asMaster(async (m) => {
        await m.query(`CREATE ROLE ${m.escapeIdentifier(username)} LOGIN PASSWORD ${m.escapeLiteral(c.password)}`);
        await m.query(`GRANT ${m.escapeIdentifier(db.app.username)} TO ${m.escapeIdentifier(username)}`);
      });
      return c;
    },
    async changePassword(username, generation) {
      const c = { username, password: password(), generation };
      passwords.push(c.password);
      await asMaster((m) => m.query(`ALTER ROLE ${m.escapeIdentifier(username)} PASSWORD ${m.escapeLiteral(c.password)}`));
      return c;
    },
    putCurrent: (c) => model.putSecretValue({ SecretId: secretArn, SecretString: json(c) }).VersionId!,
    putPending: (c) =>
      model.putSecretValue({ SecretId: secretArn, SecretString: json(c), VersionStages: ['AWSPENDING'] }).VersionId!,
    promote(versionId) {
      model.updateSecretVersionStage({
        SecretId: secretArn,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: versionId,
        RemoveFromVersionId: currentVersion(),
      });
    },
    abort(versionId) {
      model.updateSecretVersionStage({ SecretId: secretArn, VersionStage: 'AWSPENDING', RemoveFromVersionId: versionId });
    },
    sessions: () => sessionsOf(db.dbname),
    proxy,
  };
}

/**
 * Sessions on `dbname`, except the one asking. A backend still authenticating (PostgreSQL 18 lists
 * it, with no user yet) is nobody's session until it has logged in.
 */
export async function sessionsOf(dbname: string): Promise<{ pid: number; usename: string }[]> {
  return asSuperuser('postgres', async (c) => {
    const r = await c.query<{ pid: number; usename: string }>(
      'SELECT pid, usename FROM pg_stat_activity WHERE datname = $1 AND usename IS NOT NULL AND pid <> pg_backend_pid() ORDER BY pid',
      [dbname],
    );
    return r.rows;
  });
}

/** Polls `condition` every 10 ms until it holds; fails naming `what` after `timeoutMs`. */
export async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * `loops` concurrent query loops on `pool`, each inserting and reading back, until `stop()`.
 * Every loop is bounded in count as well as by `stop()`.
 */
export function queryLoad(pool: RotatingPgPool, loops: number, maxIterations = 100_000) {
  let running = true;
  let ok = 0;
  const failures: unknown[] = [];
  const users = new Set<string>();
  const runs = Array.from({ length: loops }, async (_, i) => {
    for (let n = 0; running && n < maxIterations; n++) {
      try {
        const r = await pool.query<{ u: string }>(
          "WITH ins AS (INSERT INTO items (note) VALUES ($1) RETURNING id) SELECT current_user AS u FROM ins",
          [`loop-${i}-${n}`],
        );
        users.add(r.rows[0].u);
        ok++;
      } catch (err) {
        failures.push(err);
      }
    }
  });
  return {
    get ok() {
      return ok;
    },
    failures,
    users,
    async stop() {
      running = false;
      await Promise.all(runs);
    },
  };
}

/** Pool options every test uses: verify-full against the local CA. */
export function tlsOptions(world: ConsumerWorld) {
  return { caBundlePath: world.db.server.caBundlePath, connectTimeoutMs: 3_000, statementTimeoutMs: 5_000 };
}
