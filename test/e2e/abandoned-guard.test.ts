/**
 * Found by the model-based test (test/model): a setSecret that dies inside the revocation guard's
 * LOGIN-off window (the Lambda times out or is killed between `NOLOGIN` and the password change)
 * left the previous user, AWSPREVIOUS, without LOGIN and with its password unchanged. A retry of
 * setSecret completes the change, but after `converge abort` nothing did: the way back stayed
 * broken until the next rotation. Now the guard holds an advisory lock through its window, and a
 * re-drive with nothing waiting (which `converge abort` runs) gives LOGIN back when no guard holds it.
 */
import { withAdmin } from '../../cli/local/postgres';
import { asSuperuser } from '../support/database';
import { canLogin, cli, cliModels, leakCheckedHarnesses, logIn } from '../support/probes';
import { AWSPREVIOUS, type RotationHarness } from '../support/rotation-harness';

const { lambda } = cliModels();
const file = leakCheckedHarnesses();

/** One rotation done (AWSPREVIOUS is the original user), the next one started (createSecret). */
async function secondRotationStarted(
  prefix: string,
): Promise<{ h: RotationHarness; previous: string }> {
  const h = await file.create({ prefix });
  lambda.register(h.lambdaArn, (e) => h.handler(e as never));
  await h.rotate();
  const token = h.begin();
  await h.step('createSecret', token);
  return { h, previous: h.secret(AWSPREVIOUS).username };
}

/** What a guard that died in its window leaves behind: the previous user without LOGIN. */
function guardDiedInItsWindow(h: RotationHarness, user: string): Promise<unknown> {
  return asSuperuser(h.db.dbname, (c) => c.query(`ALTER ROLE ${c.escapeIdentifier(user)} NOLOGIN`));
}

describe('A revocation guard that died in its LOGIN-off window', () => {
  it('converge abort gives LOGIN back to AWSPREVIOUS through the re-drive, and says so', async () => {
    // Prepare
    const { h, previous } = await secondRotationStarted('gdab');
    await guardDiedInItsWindow(h, previous);
    await expect(logIn(h, h.secret(AWSPREVIOUS))).rejects.toThrow();
    // Act
    const { code, out } = await cli('abort', h.secretArn, '--yes');
    // Assess
    expect(code).toBe(0);
    expect(out).toContain('previous user re-checked by the rotation function: done');
    expect(await canLogin(h, previous)).toBe(true);
    expect(await logIn(h, h.secret(AWSPREVIOUS))).toBe(previous);
  });

  it('a re-drive leaves LOGIN off while a guard holds its lock (a guard in its window is not disturbed)', async () => {
    // Prepare: another session holds the guard's lock, as a guard between NOLOGIN and its change does
    const { h, previous } = await secondRotationStarted('gdlk');
    await cli('abort', h.secretArn, '--yes');
    await guardDiedInItsWindow(h, previous);
    await withAdmin(h.db.server, h.db.dbname, h.db.master, async (c) => {
      await c.query('SELECT pg_catalog.pg_advisory_lock(pg_catalog.hashtext($1))', [
        `converge:revocation-guard:${previous}`,
      ]);
      // Act
      const held = await h.handler({ converge: 'redrive', SecretId: h.secretArn } as never);
      // Assess
      expect(held).toBe('nothing-pending');
      expect(await canLogin(h, previous)).toBe(false);
    });
    // The holder's session ended (as a dead guard's does): the next re-drive restores LOGIN.
    await h.handler({ converge: 'redrive', SecretId: h.secretArn } as never);
    expect(await canLogin(h, previous)).toBe(true);
  });

  it('when the re-drive cannot run, abort still aborts and tells the operator to run it again', async () => {
    // Prepare: the function the secret names is not there (deleted, or no permission to invoke it)
    const { h, previous } = await secondRotationStarted('gdnf');
    await guardDiedInItsWindow(h, previous);
    h.model.configureRotation(h.secretArn, `${h.lambdaArn}-gone`);
    // Act
    const { code, out } = await cli('abort', h.secretArn, '--yes');
    // Assess
    expect(code).toBe(0);
    expect(out).toContain(
      'previous user re-checked by the rotation function: failed (ResourceNotFoundException): run `converge abort` again',
    );
    expect(() => h.pendingToken()).toThrow(/no rotation/);
  });

  it('the retry of setSecret completes the change: the pending user logs in with the new password', async () => {
    // Prepare
    const { h, previous } = await secondRotationStarted('gdrt');
    await guardDiedInItsWindow(h, previous);
    // Act
    await h.retry();
    // Assess
    expect(h.current().username).toBe(previous);
    expect(await logIn(h, h.current())).toBe(previous);
  });
});
