import { randomUUID } from 'node:crypto';
import { GetMetricDataCommand, InternalServiceFault } from '@aws-sdk/client-cloudwatch';
import { sessionScope } from '../../../lambda/rotation/gates/session-scope';
import { TAG_EMERGENCY } from '../../../lambda/rotation/overrides';
import { revocationGuard } from '../../../lambda/rotation/revocation-guard';
import { setLogin } from '../../../lambda/rotation/roles';
import { AuthenticationFailedError, AwsCallError, RevocationBlockedError } from '../../../lambda/shared/errors';
import { openClient } from '../../../lambda/shared/pg-connection';
import type { DbSecret } from '../../../lambda/shared/secret';
import { capturedOutput, clearCapturedOutput, expectNoSecretsInOutput } from '../../support/captured-output';
import { freshDatabase } from '../../support/database';
import { AWSPREVIOUS, createRotationHarness, type RotationHarness } from '../../support/rotation-harness';
import { FakeClock, gateConfig, registry, stepContext } from '../../unit/gates/gate-fixtures';
import { RestartOnlyConsumer, gateEnv, virtualCloudWatch } from './fleet';

async function logIn(h: RotationHarness, s: DbSecret): Promise<string> {
  const c = await openClient({ host: s.host, port: s.port, dbname: s.dbname, ssl: s.ssl }, s, { caBundlePath: h.config.caBundlePath });
  try {
    return (await c.query<{ u: string }>('SELECT session_user AS u')).rows[0].u;
  } finally {
    await c.end();
  }
}

/** Logger records (pretty-printed JSON) whose message contains `text`. */
function logRecords(text: string): Record<string, unknown>[] {
  return capturedOutput()
    .filter((l) => l.includes(text))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
}

describe('Revocation guard: setSecret against a real restart-only consumer and pg_stat_activity', () => {
  const world = virtualCloudWatch();
  const harnesses: RotationHarness[] = [];
  const opened: RestartOnlyConsumer[] = [];
  const errors: unknown[] = [];

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.close()));
  });

  afterAll(() => expectNoSecretsInOutput(harnesses.flatMap((h) => h.passwords()), errors));

  /** Lets virtual time pass with the consumer reporting every 20 s. */
  async function runFor(consumer: RestartOnlyConsumer, seconds: number): Promise<void> {
    for (let t = 0; t < seconds; t += 20) {
      world.clock.advance(20_000);
      await consumer.reporter.report();
    }
  }

  it('blocks the next rotation while the restart-only consumer uses the previous user, proceeds after it restarted, and an emergency rotation terminates its session', async () => {
    // Prepare: rotation 1 (no live consumer, so the promotion gate passes at once)
    const h = await createRotationHarness({
      prefix: 'grev',
      env: gateEnv([{ name: 'legacy-batch', mode: 'restart-only' }]),
      deps: { clock: world.clock },
    });
    harnesses.push(h);
    const legacy = new RestartOnlyConsumer(h, 'legacy-batch', world.clock);
    opened.push(legacy);
    await legacy.start();
    const original = h.current();
    await h.rotate();
    await runFor(legacy, 40);
    expect(h.secret(AWSPREVIOUS).username).toBe(original.username);

    // Act: rotation 2 would overwrite the password of the user legacy-batch is connected as
    const blocked = await h.rotate().catch((e: unknown) => e);
    errors.push(blocked);

    // Assess: blocked by both kinds of evidence, nothing changed in the database
    expect(blocked).toBeInstanceOf(RevocationBlockedError);
    const err = blocked as RevocationBlockedError;
    expect(err.username).toBe(original.username);
    expect(err.blocking).toEqual([{ consumer: 'legacy-batch', reason: 'stale', lastGeneration: 0 }]);
    expect(err.sessions).toBe(1);
    expect(err.message).toContain('legacy-batch (last reported generation 0)');
    expect(h.current().generation).toBe(1);
    expect(await legacy.sessionUser()).toBe(original.username);
    expect(await logIn(h, original)).toBe(original.username);

    // Prepare: legacy-batch restarts on the current credential; its old reports age out
    await legacy.start();
    await runFor(legacy, 140);
    // Act: the rotation is retried with the same token (what Secrets Manager's retry does)
    await h.retry();
    // Assess
    expect(h.current().generation).toBe(2);
    expect(h.current().username).toBe(original.username);
    expect(await logIn(h, h.current())).toBe(original.username);
    await expect(logIn(h, original)).rejects.toBeInstanceOf(AuthenticationFailedError);
    const onPrevious = h.secret(AWSPREVIOUS);
    expect(await legacy.sessionUser()).toBe(onPrevious.username);

    // Prepare: suspected compromise while legacy-batch still holds the previous user (generation 1)
    await runFor(legacy, 20);
    const pid = (await legacy.client!.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const emergencyToken = randomUUID();
    h.model.tagResource({ SecretId: h.secretArn, Tags: [{ Key: TAG_EMERGENCY, Value: emergencyToken }] });
    clearCapturedOutput();
    // Act
    await h.rotate({ token: emergencyToken });
    // Assess: its session was terminated and logged; the old password no longer works
    expect(h.current().generation).toBe(3);
    expect(h.current().username).toBe(onPrevious.username);
    expect(await legacy.sessionUser()).toBeUndefined();
    await expect(logIn(h, onPrevious)).rejects.toBeInstanceOf(AuthenticationFailedError);
    const [terminatedLog] = logRecords('EMERGENCY: terminated');
    expect(terminatedLog).toMatchObject({
      level: 'WARN',
      username: onPrevious.username,
      terminated: [expect.objectContaining({ pid, applicationName: 'legacy-batch' })],
    });
    const [overrideLog] = logRecords('REVOCATION GUARD OVERRIDDEN');
    expect(overrideLog).toMatchObject({ consumersNotMoved: [{ consumer: 'legacy-batch', reason: 'stale', lastGeneration: 1 }] });
    expect(h.model.describeSecret({ SecretId: h.secretArn }).Tags?.some((t) => t.Key === TAG_EMERGENCY)).toBe(false);
  });

  it('blocks on an open session of the previous user even when every registered consumer moved', async () => {
    // Prepare: no registered consumer at all; an unregistered process keeps a session as the original user
    const h = await createRotationHarness({ prefix: 'grss', env: gateEnv([]), deps: { clock: world.clock } });
    harnesses.push(h);
    const stray = new RestartOnlyConsumer(h, 'unregistered-script', world.clock);
    opened.push(stray);
    await stray.start();
    const original = h.current();
    await h.rotate();
    // Act
    const blocked = await h.rotate().catch((e: unknown) => e);
    errors.push(blocked);
    // Assess
    expect(blocked).toBeInstanceOf(RevocationBlockedError);
    expect((blocked as RevocationBlockedError).blocking).toEqual([]);
    expect((blocked as RevocationBlockedError).sessions).toBe(1);
    expect((blocked as Error).message).toMatch(
      new RegExp(
        `^Revocation blocked for user "${original.username}": 1 open session\\(s\\) of "${original.username}": unattributed 1 \\(pid \\d+ application_name "unregistered-script"( from \\S+)?\\)$`,
      ),
    );
    // Act: the script ends; the same rotation retried now proceeds
    await stray.close();
    await h.retry();
    // Assess
    expect(h.current().username).toBe(original.username);
    expect(h.current().generation).toBe(2);
  });

  it('fails closed when CloudWatch cannot be read, and an emergency rotation proceeds anyway', async () => {
    // Prepare: a database whose previous user has no session; GetMetricData fails
    const db = await freshDatabase('grcw');
    const master = await openClient({ host: 'localhost', port: db.server.port, dbname: db.dbname, ssl: 'verify-full' }, db.master, {
      caBundlePath: db.server.caBundlePath,
    });
    world.cw.on(GetMetricDataCommand).rejects(new InternalServiceFault({ message: 'Internal failure', $metadata: { httpStatusCode: 500 } }));
    const config = gateConfig(registry([['api', 'live'], ['nightly', 'scheduled', 3600]]));
    const input = { username: db.app.username, current: { generation: 3 } as DbSecret, master, sessions: sessionScope(master) };
    let changed = 0;
    const change = async () => {
      changed++;
      await setLogin(master, db.app.username, true);
    };
    try {
      // Act
      const err = await revocationGuard(stepContext({ config, clock: new FakeClock() }), input, change).catch((e: unknown) => e);
      const changesWhenBlocked = changed;
      const emergency = revocationGuard(stepContext({ config, clock: new FakeClock(), overrides: { emergency: true } }), input, change);
      // Assess
      expect(err).toBeInstanceOf(RevocationBlockedError);
      expect((err as RevocationBlockedError).blocking).toEqual([
        { consumer: 'api', reason: 'unverified' },
        { consumer: 'nightly', reason: 'unverified' },
      ]);
      expect((err as RevocationBlockedError).sessions).toBe(0);
      expect((err as Error).cause).toBeInstanceOf(AwsCallError);
      expect(changesWhenBlocked).toBe(0);
      await expect(emergency).resolves.toBeUndefined();
      expect(changed).toBe(1);
    } finally {
      await master.end();
    }
  });
});
