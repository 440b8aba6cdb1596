/**
 * Emergency rotation ("the old credential stops working now"): after promotion the formerly
 * current credential — the one normally leaked — is rejected and none of its sessions remain, the
 * new credential works, and the next normal rotation still works. Also attacked: the function dying
 * between the promotion and the revocation.
 */
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { rotate } from '../../../cli/commands/rotate';
import { wireSecretsManager } from '../../../cli/local/install';
import { TAG_EMERGENCY } from '../../../lambda/rotation/overrides';
import { AuthenticationFailedError } from '../../../lambda/shared/errors';
import { EMERGENCY_REVOCATIONS } from '../../../lambda/shared/metric-contract';
import { capturedOutput, clearCapturedOutput } from '../../support/captured-output';
import {
  cliClients,
  connectAs,
  leakCheckedHarnesses,
  logIn,
  sessionCount,
} from '../../support/probes';
import { AWSCURRENT, AWSPREVIOUS } from '../../support/rotation-harness';
import { emfRecords } from '../../unit/gates/gate-fixtures';

describe('Emergency rotation: the formerly current credential stops working now', () => {
  const file = leakCheckedHarnesses();
  const errors = file.errors;

  it('rejects the formerly current credential (28P01) and ends its sessions; the new one works; the next normal rotation works', async () => {
    // Prepare: rotation 1; the current credential (generation 1) is then suspected leaked while a
    // session holds it
    const metrics: string[] = [];
    const h = await file.create({
      prefix: 'emg',
      deps: { writeMetric: (l) => metrics.push(l) },
    });
    await h.rotate();
    const leaked = h.current();
    const session = await connectAs(h, leaked, 'leaked-holder');
    const pid = (await session.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]
      .pid;
    clearCapturedOutput();
    // Act: `converge rotate --emergency`
    const started = await rotate(cliClients(), h.secretArn, { emergency: true });
    const record = await h.model.rotationSettled(h.secretArn);
    // Assess: promoted; the leaked credential is rejected with 28P01 and its session is gone
    expect(record?.error).toBeUndefined();
    expect(started.emergency).toBe(true);
    expect(h.current().generation).toBe(2);
    expect(h.secret(AWSPREVIOUS).username).toBe(leaked.username);
    const rejected = (await logIn(h, leaked).catch((e: unknown) => e)) as AuthenticationFailedError;
    errors.push(rejected);
    expect(rejected).toBeInstanceOf(AuthenticationFailedError);
    expect(rejected.code).toBe('28P01');
    expect(await sessionCount(h, leaked.username)).toBe(0);
    await expect(session.query('SELECT 1')).rejects.toThrow();
    expect(await logIn(h, h.current())).toBe(h.current().username);
    // ... logged with pid and application_name, counted, and the override is gone
    const revoked = capturedOutput().find((l) =>
      l.includes('EMERGENCY: revoked the formerly current credential'),
    );
    expect(revoked).toBeDefined();
    expect(JSON.parse(revoked!)).toMatchObject({
      terminated: [expect.objectContaining({ pid, applicationName: 'leaked-holder' })],
    });
    expect(emfRecords(metrics).filter((r) => EMERGENCY_REVOCATIONS in r)).toHaveLength(1);
    expect(
      h.model.describeSecret({ SecretId: h.secretArn }).Tags?.some((t) => t.Key === TAG_EMERGENCY),
    ).toBe(false);

    // Act: the next normal rotation re-passwords the revoked user as usual
    await h.rotate();
    // Assess
    expect(h.current()).toMatchObject({ username: leaked.username, generation: 3 });
    expect(await logIn(h, h.current())).toBe(leaked.username);
    expect(await logIn(h, h.secret(AWSPREVIOUS))).toBe(h.secret(AWSPREVIOUS).username);
  });

  it('completes the revocation at the next invocation when the function died between the promotion and the revocation', async () => {
    // Prepare: reading the master secret fails once the new version is AWSCURRENT, so the revocation
    // that follows the promotion cannot run (as if the invocation had died there)
    const h = await file.create({ prefix: 'emgdie' });
    await h.rotate();
    const leaked = h.current();
    let dying = true;
    h.sm
      .on(GetSecretValueCommand, {
        SecretId: JSON.parse(h.model.getSecretValue({ SecretId: h.secretArn }).SecretString!)
          .masterarn,
      })
      .callsFake(async (input) => {
        const promoted = h.current().generation === 2;
        if (dying && promoted) throw new Error('Task timed out after 30.00 seconds');
        return h.model.getSecretValue(input);
      });
    try {
      await rotate(cliClients(), h.secretArn, { emergency: true });
      const record = await h.model.rotationSettled(h.secretArn);
      errors.push(record?.error);
      // Assess: promoted, but the revocation is still owed (the tag names the promoted token)
      expect(record?.error).toBeDefined();
      expect(h.current().generation).toBe(2);
      const token = Object.entries(h.model.snapshot(h.secretArn)).find(([, v]) =>
        v.stages.includes(AWSCURRENT),
      )![0];
      expect(
        h.model.describeSecret({ SecretId: h.secretArn }).Tags?.find((t) => t.Key === TAG_EMERGENCY)
          ?.Value,
      ).toBe(token);
      // Act: the next invocation of any kind (here Secrets Manager's retry of finishSecret)
      dying = false;
      await h.step('finishSecret', token);
    } finally {
      h.sm.reset();
      wireSecretsManager(h.sm, h.model);
    }
    // Assess
    await expect(logIn(h, leaked)).rejects.toBeInstanceOf(AuthenticationFailedError);
    expect(
      h.model.describeSecret({ SecretId: h.secretArn }).Tags?.some((t) => t.Key === TAG_EMERGENCY),
    ).toBe(false);
  });
});
