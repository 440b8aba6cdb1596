/**
 * The revocation guard and emergency rotations name the sessions that hold a user by who opened
 * them: per consumer and process (host, pid, generation) from the consumer library's `cv1`
 * application_name (lambda/shared/application-name.ts), the rest as `unattributed` with their
 * application_name and client address. Never their query text.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from 'pg';
import { sessionScope } from '../../../lambda/rotation/gates/session-scope';
import { TAG_EMERGENCY } from '../../../lambda/rotation/overrides';
import { revocationGuard } from '../../../lambda/rotation/revocation-guard';
import { setLogin } from '../../../lambda/rotation/roles';
import { formatApplicationName } from '../../../lambda/shared/application-name';
import { RevocationBlockedError } from '../../../lambda/shared/errors';
import { openClient } from '../../../lambda/shared/pg-connection';
import type { DbSecret } from '../../../lambda/shared/secret';
import {
  capturedOutput,
  clearCapturedOutput,
  expectNoSecretsInOutput,
} from '../../support/captured-output';
import { asSuperuser, freshDatabase } from '../../support/database';
import { connectAs, leakCheckedHarnesses, sessionCount } from '../../support/probes';
import { FakeClock, gateConfig, stepContext } from '../../unit/gates/gate-fixtures';
import { virtualCloudWatch } from './fleet';

/** Logger records (JSON) whose message contains `text`. */
function logRecords(text: string): Record<string, unknown>[] {
  return capturedOutput()
    .filter((l) => l.includes(text))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

const ORDERS_A = formatApplicationName({
  consumer: 'orders-api',
  generation: 6,
  host: 'host-a',
  pid: 4242,
});
const BILLING = formatApplicationName({
  consumer: 'billing:jobs',
  generation: 5,
  host: 'host-b',
  pid: 17,
});
/** A query text that must never reach a log line or an error. */
const QUERY_MARKER = 'query_text_marker_7f3a';

describe('Revocation guard: sessions attributed to consumers and processes', () => {
  virtualCloudWatch();
  const opened: Client[] = [];
  const errors: unknown[] = [];
  const passwords: string[] = [];

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.end().catch(() => undefined)));
  });

  afterAll(() => expectNoSecretsInOutput(passwords, errors));

  async function world(prefix: string) {
    const db = await freshDatabase(prefix);
    passwords.push(db.master.password, db.app.password);
    // PostgreSQL shows another role's client_addr only to roles with pg_read_all_stats (RDS: rds_superuser).
    await asSuperuser(db.dbname, (c) =>
      c.query(`GRANT pg_read_all_stats TO ${c.escapeIdentifier(db.master.username)}`),
    );
    const target = {
      host: 'localhost',
      port: db.server.port,
      dbname: db.dbname,
      ssl: 'verify-full' as const,
    };
    const open = async (
      credential: { username: string; password: string },
      applicationName: string,
    ) => {
      const c = await openClient(target, credential, {
        caBundlePath: db.server.caBundlePath,
        applicationName,
      });
      c.on('error', () => undefined);
      opened.push(c);
      const pid = (
        await c.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid, 1 AS ${QUERY_MARKER}`)
      ).rows[0].pid;
      return pid;
    };
    const master = await open(db.master, 'converge-test-master').then(
      () => opened[opened.length - 1]!,
    );
    return { db, master, open };
  }

  it('holds with the sessions grouped by consumer and process, and lists the others as unattributed with application_name and client address', async () => {
    // Prepare: orders-api's process 4242 on host-a holds two sessions, billing:jobs one, and a human one with psql
    const { db, master, open } = await world('gratt');
    await open(db.app, ORDERS_A);
    await open(db.app, ORDERS_A);
    await open(db.app, BILLING);
    const psql = await open(db.app, 'psql');
    const input = {
      username: db.app.username,
      current: { generation: 6 } as DbSecret,
      master,
      sessions: sessionScope(master),
    };
    let changed = 0;
    clearCapturedOutput();
    // Act
    const err = await revocationGuard(
      stepContext({ config: gateConfig([]), clock: new FakeClock() }),
      input,
      async () => {
        changed++;
      },
    ).catch((e: unknown) => e);
    errors.push(err);
    // Assess
    expect(err).toBeInstanceOf(RevocationBlockedError);
    expect(changed).toBe(0);
    expect((err as RevocationBlockedError).sessions).toBe(4);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^Revocation blocked for user "${db.app.username}": 4 open session\\(s\\) of "${db.app.username}": ` +
          'billing:jobs \\(host-b pid 17: 1 session, generation 5\\), ' +
          'orders-api \\(host-a pid 4242: 2 sessions, generation 6\\), ' +
          `unattributed 1 \\(pid ${psql} application_name "psql" from (127\\.0\\.0\\.1|::1)\\)$`,
      ),
    );
    const [log] = logRecords('revocation guard: the previous user is still in use');
    expect(log).toMatchObject({
      heldBy: expect.stringContaining('orders-api (host-a pid 4242: 2 sessions, generation 6)'),
      sessions: expect.arrayContaining([
        expect.objectContaining({
          consumer: 'orders-api',
          host: 'host-a',
          processId: 4242,
          generation: 6,
        }),
        expect.objectContaining({
          consumer: 'billing:jobs',
          host: 'host-b',
          processId: 17,
          generation: 5,
        }),
        expect.objectContaining({ pid: psql, unattributed: true, applicationName: 'psql' }),
      ]),
    });
    expect(capturedOutput().some((l) => l.includes(QUERY_MARKER))).toBe(false);
    expect((err as Error).message).not.toContain(QUERY_MARKER);
  });

  it('in emergency mode terminates them and logs each one by consumer, host, pid and generation, or as unattributed', async () => {
    // Prepare
    const { db, master, open } = await world('gratte');
    await open(db.app, ORDERS_A);
    const psql = await open(db.app, 'psql');
    const input = {
      username: db.app.username,
      current: { generation: 6 } as DbSecret,
      master,
      sessions: sessionScope(master),
    };
    clearCapturedOutput();
    // Act
    await revocationGuard(
      stepContext({
        config: gateConfig([]),
        clock: new FakeClock(),
        overrides: { emergency: true },
      }),
      input,
      () => setLogin(master, db.app.username, true),
    );
    // Assess
    const [log] = logRecords('EMERGENCY: terminated sessions of the revoked user');
    expect(log!.message).toMatch(
      new RegExp(
        '^EMERGENCY: terminated sessions of the revoked user \\(2\\): orders-api \\(host-a pid 4242: 1 session, generation 6\\), ' +
          `unattributed 1 \\(pid ${psql} application_name "psql" from (127\\.0\\.0\\.1|::1)\\)$`,
      ),
    );
    expect(log!.terminated).toEqual([
      expect.objectContaining({
        consumer: 'orders-api',
        host: 'host-a',
        processId: 4242,
        generation: 6,
        member: 'primary',
      }),
      expect.objectContaining({
        pid: psql,
        unattributed: true,
        applicationName: 'psql',
        clientAddr: expect.stringMatching(/^(127\.0\.0\.1|::1)$/),
      }),
    ]);
  });
});

describe('Emergency rotation: the revocation of the formerly current credential names each terminated session', () => {
  const file = leakCheckedHarnesses();

  it('logs every terminated session of the leaked user by consumer and process, or as unattributed', async () => {
    // Prepare: rotation 1; then orders-api (through the library's naming) and a script hold the current credential
    const h = await file.create({ prefix: 'emgattr' });
    await h.rotate();
    const leaked = h.current();
    const attributed = formatApplicationName({
      consumer: 'orders-api',
      generation: leaked.generation,
      host: 'host-a',
      pid: 4242,
    });
    const a = await connectAs(h, leaked, attributed);
    const b = await connectAs(h, leaked, 'cleanup-script');
    const scriptPid = (await b.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]
      .pid;
    clearCapturedOutput();
    // Act: an emergency rotation
    const token = randomUUID();
    h.model.tagResource({ SecretId: h.secretArn, Tags: [{ Key: TAG_EMERGENCY, Value: token }] });
    await h.rotate({ token });
    // Assess
    expect(await sessionCount(h, leaked.username)).toBe(0);
    const [log] = logRecords('EMERGENCY: revoked the formerly current credential');
    expect(log!.message).toContain(
      `2 session(s) were terminated: orders-api (host-a pid 4242: 1 session, generation ${leaked.generation}), ` +
        `unattributed 1 (pid ${scriptPid} application_name "cleanup-script")`,
    );
    expect(log!.terminated).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          consumer: 'orders-api',
          host: 'host-a',
          processId: 4242,
          generation: leaked.generation,
        }),
        expect.objectContaining({
          pid: scriptPid,
          unattributed: true,
          applicationName: 'cleanup-script',
        }),
      ]),
    );
    await a.end().catch(() => undefined);
    await b.end().catch(() => undefined);
  });
});
