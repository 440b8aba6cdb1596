/**
 * Found by the model-based test (test/model): Secrets Manager may deliver finishSecret before
 * setSecret ever succeeded (a retry out of order, a re-drive racing a step), and an operator's
 * force skips the gate, as does a registry without live consumers. finishSecret then promoted a
 * credential that did not log in: AWSCURRENT broken for every consumer. It now proves the pending
 * credential logs in right before it moves AWSCURRENT, and changes nothing when it does not.
 */
import { TAG_FORCE_FINISH } from '../../../lambda/rotation/overrides';
import { RotationStateError } from '../../../lambda/shared/errors';
import { leakCheckedHarnesses, logIn } from '../../support/probes';
import { AWSCURRENT } from '../../support/rotation-harness';

const file = leakCheckedHarnesses();

describe('finishSecret delivered before setSecret succeeded', () => {
  it('does not promote under an operator force: RotationStateError, AWSCURRENT unchanged and still logs in', async () => {
    // Prepare: createSecret only, then the force-finish tag bound to this rotation
    const h = await file.create({ prefix: 'ooof' });
    const before = h.current();
    const token = h.begin();
    await h.step('createSecret', token);
    h.model.tagResource({ SecretId: h.secretArn, Tags: [{ Key: TAG_FORCE_FINISH, Value: token }] });
    // Act
    const err = await h.step('finishSecret', token).catch((e: unknown) => e);
    file.errors.push(err);
    // Assess
    expect(err).toBeInstanceOf(RotationStateError);
    expect((err as Error).message).toContain(
      'does not log in, so setSecret has not completed for this version',
    );
    expect(h.current()).toEqual(before);
    expect(h.model.snapshot(h.secretArn)[token].stages).not.toContain(AWSCURRENT);
    expect(await logIn(h, h.current())).toBe(before.username);
  });

  it('does not promote when no live consumer is registered (the gate admits at once)', async () => {
    // Prepare
    const h = await file.create({ prefix: 'ooon' });
    const before = h.current();
    const token = h.begin();
    await h.step('createSecret', token);
    // Act
    const err = await h.step('finishSecret', token).catch((e: unknown) => e);
    file.errors.push(err);
    // Assess
    expect(err).toBeInstanceOf(RotationStateError);
    expect(h.current()).toEqual(before);
    // The steps in order still complete the rotation.
    await h.step('setSecret', token);
    await h.step('testSecret', token);
    await h.step('finishSecret', token);
    expect(h.current().generation).toBe(before.generation + 1);
    expect(await logIn(h, h.current())).toBe(h.current().username);
  });
});
