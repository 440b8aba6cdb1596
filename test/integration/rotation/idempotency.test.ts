import { STEPS } from '../../../lambda/rotation';
import { expectNoSecretsInOutput } from '../../support/captured-output';
import { rolesLike } from '../../support/database';
import {
  AWSPENDING,
  createRotationHarness,
  type RotationHarness,
} from '../../support/rotation-harness';

/** The observable end state: staging labels by version, values, and the pair's roles. */
async function state(h: RotationHarness) {
  return {
    versions: h.model.snapshot(h.secretArn),
    roles: await rolesLike(`${h.db.app.username}%`),
  };
}

describe('Rotation: idempotent steps', () => {
  const harnesses: RotationHarness[] = [];
  afterAll(() => expectNoSecretsInOutput(harnesses.flatMap((h) => h.passwords())));

  it.each(STEPS.map((s) => [s]))(
    'running %s twice gives the same end state as once',
    async (step) => {
      // Prepare: run every step before `step` once
      const h = await createRotationHarness({ prefix: 'idem' });
      harnesses.push(h);
      const token = h.begin();
      for (const s of STEPS.slice(0, STEPS.indexOf(step))) await h.step(s, token);
      // Act
      await h.step(step, token);
      const once = await state(h);
      await h.step(step, token);
      const twice = await state(h);
      // Assess
      expect(twice).toEqual(once);
    },
  );

  it.each(STEPS.map((s) => [s]))(
    'a rotation stopped after %s completes when re-run with the same token',
    async (step) => {
      // Prepare
      const h = await createRotationHarness({ prefix: 'resume' });
      harnesses.push(h);
      const before = h.current();
      const token = h.begin();
      for (const s of STEPS.slice(0, STEPS.indexOf(step) + 1)) await h.step(s, token);
      // Act: Secrets Manager retries the whole rotation with the same token
      for (const s of STEPS) await h.step(s, token);
      // Assess
      const after = h.current();
      expect(after.generation).toBe(before.generation + 1);
      expect(after.username).toBe(`${before.username}_clone`);
      expect(h.model.snapshot(h.secretArn)[token].stages).toContain('AWSCURRENT');
    },
  );

  it('createSecret re-run keeps the first password (ClientRequestToken idempotency)', async () => {
    // Prepare
    const h = await createRotationHarness({ prefix: 'idpw' });
    harnesses.push(h);
    const token = h.begin();
    await h.step('createSecret', token);
    const first = h.secret(AWSPENDING).password;
    // Act
    await h.step('createSecret', token);
    // Assess
    expect(h.secret(AWSPENDING).password).toBe(first);
  });

  it('an aborted rotation burns its generation: the next rotation does not reuse it', async () => {
    // Prepare: createSecret ran (generation 1 issued), then the operator removed AWSPENDING
    const h = await createRotationHarness({ prefix: 'burn' });
    harnesses.push(h);
    const aborted = h.begin();
    await h.step('createSecret', aborted);
    expect(h.secret(AWSPENDING).generation).toBe(1);
    h.model.updateSecretVersionStage({
      SecretId: h.secretArn,
      VersionStage: AWSPENDING,
      RemoveFromVersionId: aborted,
    });
    // Act
    await h.rotate();
    // Assess
    expect(h.current().generation).toBe(2);
  });
});
