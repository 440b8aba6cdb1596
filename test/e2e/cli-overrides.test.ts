/**
 * Operator overrides never outlive the command that set them, and `finish --force` never reports a
 * promotion that did not happen. Through `runCli` with the local Secrets Manager, CloudWatch and
 * Lambda models and the real rotation handler.
 */
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { RotateSecretCommand, UntagResourceCommand } from '@aws-sdk/client-secrets-manager';
import { wireSecretsManager } from '../../cli/local/install';
import { TAG_EMERGENCY, TAG_FORCE_FINISH } from '../../lambda/rotation/overrides';
import { expectNoSecretsInOutput } from '../support/captured-output';
import { cli, cliModels } from '../support/probes';
import {
  AWSPENDING,
  createRotationHarness,
  type RotationHarness,
} from '../support/rotation-harness';

const { lambda, lambdaStub } = cliModels();
const harnesses: RotationHarness[] = [];

afterAll(() => {
  expectNoSecretsInOutput(harnesses.flatMap((h) => h.passwords()));
});

/** A rotation held by a live consumer that never reports (the gate does not wait). */
async function held(
  prefix: string,
  handler?: (h: RotationHarness, event: unknown) => Promise<unknown>,
): Promise<{ h: RotationHarness; token: string }> {
  const env = {
    CONVERGE_CONSUMERS: JSON.stringify([{ name: 'ghost', mode: 'live', maxStalenessSeconds: 60 }]),
    CONVERGE_GATE_MAX_WAIT_SECONDS: '0',
  };
  const h = await createRotationHarness({ prefix, env });
  harnesses.push(h);
  lambda.register(h.lambdaArn, (e) => (handler ? handler(h, e) : h.handler(e as never)), env);
  await expect(h.rotate()).rejects.toThrow(/ghost \(silent/);
  const token = Object.entries(h.model.snapshot(h.secretArn)).find(([, v]) =>
    v.stages.includes(AWSPENDING),
  )![0];
  return { h, token };
}

function tag(h: RotationHarness, key: string): string | undefined {
  return h.model.describeSecret({ SecretId: h.secretArn }).Tags?.find((t) => t.Key === key)?.Value;
}

describe('CLI: overrides are bound to one rotation and cleaned up', () => {
  it('rotate --emergency binds the tag to the rotation it starts (the tag value is its token)', async () => {
    // Prepare
    const h = await createRotationHarness({ prefix: 'ovem' });
    harnesses.push(h);
    const seen: (string | undefined)[] = [];
    const original = h.model.rotateSecret.bind(h.model);
    const spy = jest.spyOn(h.model, 'rotateSecret').mockImplementation((input) => {
      seen.push(tag(h, TAG_EMERGENCY));
      return original(input);
    });
    try {
      // Act
      const r = await cli('rotate', h.secretArn, '--emergency', '--yes', '--json');
      await h.model.rotationSettled(h.secretArn);
      // Assess
      expect(r.code).toBe(0);
      const { versionId } = JSON.parse(r.out) as { versionId: string };
      expect(seen).toEqual([versionId]);
      expect(h.model.snapshot(h.secretArn)[versionId].stages).toContain('AWSCURRENT');
      expect(tag(h, TAG_EMERGENCY)).toBeUndefined();
    } finally {
      spy.mockRestore();
    }
  });

  it('rotate --emergency whose RotateSecret fails exits 1 and removes its tag', async () => {
    // Prepare
    const h = await createRotationHarness({ prefix: 'ovemf' });
    harnesses.push(h);
    h.sm.on(RotateSecretCommand).rejects(
      Object.assign(new Error('Rate exceeded'), {
        name: 'ThrottlingException',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    try {
      // Act
      const r = await cli('rotate', h.secretArn, '--emergency', '--yes');
      // Assess
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/ThrottlingException/);
      expect(tag(h, TAG_EMERGENCY)).toBeUndefined();
    } finally {
      wireSecretsManager(h.sm, h.model);
    }
  });

  it('finish --force exits 1 and says what happened when the rotation was aborted before the function ran, removing its tag', async () => {
    // Prepare: the operator's colleague aborts the rotation just as the function is invoked
    const { h, token } = await held('ovfab', async (hh, e) => {
      hh.model.updateSecretVersionStage({
        SecretId: hh.secretArn,
        VersionStage: AWSPENDING,
        RemoveFromVersionId: token,
      });
      return hh.handler(e as never);
    });
    // Act
    const r = await cli('finish', h.secretArn, '--force');
    // Assess
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /nothing was promoted: the rotation function answered "nothing-pending" \(no rotation was waiting when it ran: it was aborted or completed meanwhile\)/,
    );
    expect(r.err).toMatch(
      new RegExp(
        `version ${token} is no longer waiting; AWSCURRENT is version \\S+ \\(generation 0\\); removed tag converge:force-finish`,
      ),
    );
    expect(r.out).not.toMatch(/AWSCURRENT \(FORCED\)/);
    expect(h.current().generation).toBe(0);
    expect(tag(h, TAG_FORCE_FINISH)).toBeUndefined();
  });

  it('finish --force exits 1 when the function answers "held", says the rotation is still waiting, and removes its tag', async () => {
    // Prepare: a function that did not see the override (tags are eventually consistent) and whose
    // gate still holds: it answers "held" and changes nothing
    const { h, token } = await held('ovfhe', async () => 'held');
    // Act
    const r = await cli('finish', h.secretArn, '--force');
    // Assess
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/nothing was promoted: the rotation function answered "held"/);
    expect(r.err).toContain(`the rotation is still waiting (version ${token}, generation 1)`);
    expect(r.err).toMatch(/removed tag converge:force-finish/);
    expect(r.out).toBe('');
    expect(h.current().generation).toBe(0);
    expect(h.model.snapshot(h.secretArn)[token].stages).toEqual([AWSPENDING]);
    expect(tag(h, TAG_FORCE_FINISH)).toBeUndefined();
  });

  it('finish --force exits 1 when the function fails, names its error, and removes its tag', async () => {
    // Prepare
    const { h, token } = await held('ovfer', async () => {
      throw Object.assign(new Error('connect ETIMEDOUT 10.0.3.7:5432'), {
        name: 'DatabaseUnreachableError',
      });
    });
    // Act
    const r = await cli('finish', h.secretArn, '--force');
    // Assess
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /nothing was promoted: the rotation function failed: DatabaseUnreachableError: connect ETIMEDOUT 10\.0\.3\.7:5432/,
    );
    expect(r.err).toContain(`the rotation is still waiting (version ${token}, generation 1)`);
    expect(r.err).toMatch(/removed tag converge:force-finish/);
    expect(h.current().generation).toBe(0);
    expect(tag(h, TAG_FORCE_FINISH)).toBeUndefined();
  });

  it('finish --force exits 1 when the function answers "promoted" but AWSCURRENT did not move, and removes its tag', async () => {
    // Prepare: a function that claims a promotion it did not make
    const { h, token } = await held('ovfpr', async () => 'promoted');
    // Act
    const r = await cli('finish', h.secretArn, '--force');
    // Assess
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /the rotation function answered "promoted" but AWSCURRENT is still version \S+ \(generation 0\), not /,
    );
    expect(r.err).toContain(`the rotation is still waiting (version ${token}, generation 1)`);
    expect(tag(h, TAG_FORCE_FINISH)).toBeUndefined();
  });

  it('finish --force that cannot remove its tag after a failure says so, and how to remove it (the tag would force the waiting rotation later)', async () => {
    // Prepare
    const { h } = await held('ovfut', async () => 'held');
    h.sm.on(UntagResourceCommand).rejects(
      Object.assign(new Error('Rate exceeded'), {
        name: 'ThrottlingException',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    try {
      // Act
      const r = await cli('finish', h.secretArn, '--force');
      // Assess
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/nothing was promoted: the rotation function answered "held"/);
      expect(r.err).toMatch(
        /could NOT remove tag converge:force-finish \(ThrottlingException: Rate exceeded\)/,
      );
      expect(r.err).toContain(
        `aws secretsmanager untag-resource --secret-id ${h.secretArn} --tag-keys converge:force-finish`,
      );
      expect(tag(h, TAG_FORCE_FINISH)).toBeDefined();
    } finally {
      wireSecretsManager(h.sm, h.model);
    }
  });

  it('finish --force removes its tag when the invocation itself fails', async () => {
    // Prepare
    const { h } = await held('ovfin');
    lambdaStub.on(InvokeCommand).rejects(
      Object.assign(new Error('Rate exceeded'), {
        name: 'TooManyRequestsException',
        $metadata: { httpStatusCode: 429 },
      }),
    );
    try {
      // Act
      const r = await cli('finish', h.secretArn, '--force');
      // Assess
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/TooManyRequestsException/);
      expect(tag(h, TAG_FORCE_FINISH)).toBeUndefined();
      expect(h.current().generation).toBe(0);
    } finally {
      lambdaStub.on(InvokeCommand).callsFake(async (i) => lambda.invoke(i));
    }
  });
});
