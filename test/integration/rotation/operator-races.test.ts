/**
 * An operator may abort or force at any moment, Secrets Manager retries any step, and a re-drive can
 * race that retry. Each test attacks one of those interleavings on real PostgreSQL with the local
 * Secrets Manager and CloudWatch models.
 */
import { GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { abort } from '../../../cli/commands/abort';
import { TAG_EMERGENCY, TAG_FORCE_FINISH } from '../../../lambda/rotation/overrides';
import {
  ConvergencePendingError,
  RevocationBlockedError,
  RotationAbortedError,
} from '../../../lambda/shared/errors';
import {
  ROTATION_STEP_FAILURES,
  ROTATIONS_COMPLETED,
} from '../../../lambda/shared/metric-contract';
import { openClient } from '../../../lambda/shared/pg-connection';
import { expectNoSecretsInOutput } from '../../support/captured-output';
import { cliClients } from '../../support/probes';
import {
  AWSCURRENT,
  AWSPENDING,
  AWSPREVIOUS,
  createRotationHarness,
  type RotationHarness,
} from '../../support/rotation-harness';
import { emfRecords, report } from '../../unit/gates/gate-fixtures';
import { gateEnv, virtualCloudWatch } from '../gates/fleet';

function stages(h: RotationHarness): Record<string, string[]> {
  return Object.fromEntries(
    Object.entries(h.model.snapshot(h.secretArn)).map(([id, v]) => [id, v.stages]),
  );
}

/** Sum of one metric over the EMF lines written. */
function metricSum(lines: readonly string[], name: string): number {
  return emfRecords(lines).reduce(
    (n, r) => n + (typeof r[name] === 'number' ? (r[name] as number) : 0),
    0,
  );
}

describe('Operator actions and retries racing a rotation', () => {
  const world = virtualCloudWatch();
  const harnesses: RotationHarness[] = [];
  const errors: unknown[] = [];

  afterAll(() => expectNoSecretsInOutput(harnesses.flatMap((h) => h.passwords()), errors));

  async function harness(
    prefix: string,
    consumers: { name: string; mode: string }[] = [],
    metrics?: string[],
  ): Promise<RotationHarness> {
    const h = await createRotationHarness({
      prefix,
      env: gateEnv(consumers, { maxWaitSeconds: 600 }),
      deps: { clock: world.clock, writeMetric: metrics ? (l) => metrics.push(l) : undefined },
    });
    harnesses.push(h);
    return h;
  }

  /** Runs createSecret, setSecret and testSecret; returns the token waiting for finishSecret. */
  async function upToFinish(h: RotationHarness): Promise<string> {
    const token = h.begin();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const)
      await h.step(step, token);
    return token;
  }

  const secretName = (h: RotationHarness) =>
    h.model.describeSecret({ SecretId: h.secretArn }).Name!;

  it('converge abort while finishSecret waits at the gate: the wait ends at the next poll and the aborted version is never promoted', async () => {
    // Prepare: the live consumer lags; during the gate's first pause the operator aborts, and the
    // consumer (which had adopted the pending credential) reports it
    const h = await harness('rabort', [{ name: 'api', mode: 'live' }]);
    const token = await upToFinish(h);
    report(world.model, 'api', 0, world.clock.now(), secretName(h));
    const before = stages(h);
    world.clock.onSleep = async () => {
      if (stages(h)[token].includes(AWSPENDING)) await abort(cliClients(), h.secretArn);
      report(world.model, 'api', 1, world.clock.now(), secretName(h));
    };
    // Act
    const err = await h.step('finishSecret', token).catch((e: unknown) => e);
    errors.push(err);
    // Assess
    expect(err).toBeInstanceOf(RotationAbortedError);
    expect(world.clock.sleeps).toBe(1);
    expect(stages(h)[token]).toEqual([]);
    expect(Object.fromEntries(Object.entries(stages(h)).filter(([id]) => id !== token))).toEqual(
      Object.fromEntries(Object.entries(before).filter(([id]) => id !== token)),
    );
    expect(h.current().generation).toBe(0);
  });

  it('converge abort in the instant between the gate admitting and the stage move: the aborted version is not promoted', async () => {
    // Prepare: the consumer is on the pending generation; the abort lands while the gate's last
    // GetMetricData call is in flight
    const h = await harness('rinst', [{ name: 'api', mode: 'live' }]);
    const token = await upToFinish(h);
    report(world.model, 'api', 1, world.clock.now(), secretName(h));
    world.cw.on(GetMetricDataCommand).callsFake(async (input) => {
      const answer = world.model.getMetricData(input);
      if (stages(h)[token].includes(AWSPENDING)) await abort(cliClients(), h.secretArn);
      return answer;
    });
    // Act
    const err = await h.step('finishSecret', token).catch((e: unknown) => e);
    errors.push(err);
    // Assess
    expect(err).toBeInstanceOf(RotationAbortedError);
    expect(h.current().generation).toBe(0);
    expect(stages(h)[token]).toEqual([]);
  });

  it('two finishSecret invocations for the same token at once (a re-drive racing a retry): one promotion, no failure', async () => {
    // Prepare
    const metrics: string[] = [];
    const h = await harness('rtwice', [], metrics);
    const token = await upToFinish(h);
    // Act
    const results = await Promise.allSettled([
      h.step('finishSecret', token),
      h.step('finishSecret', token),
    ]);
    // Assess
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(stages(h)[token]).toContain(AWSCURRENT);
    expect(h.current().generation).toBe(1);
    expect(metricSum(metrics, ROTATIONS_COMPLETED)).toBe(1);
    expect(metricSum(metrics, ROTATION_STEP_FAILURES)).toBe(0);
  });

  it.each([
    ['written the old way ("true")', () => 'true'],
    ['bound to an earlier rotation', () => '3f0c1e9a-0000-4000-8000-000000000001'],
  ])(
    'an emergency tag %s does not skip the revocation guard of a later rotation',
    async (_name, value) => {
      // Prepare: rotation 1; a process still holds a session as the previous user
      const h = await harness('rstale');
      await h.rotate();
      const previous = h.secret(AWSPREVIOUS);
      const stray = await openClient(
        { host: previous.host, port: previous.port, dbname: previous.dbname, ssl: previous.ssl },
        previous,
        {
          caBundlePath: h.config.caBundlePath,
          applicationName: 'stray-script',
        },
      );
      stray.on('error', () => undefined);
      h.model.tagResource({
        SecretId: h.secretArn,
        Tags: [{ Key: TAG_EMERGENCY, Value: value() }],
      });
      try {
        // Act
        const err = await h.rotate().catch((e: unknown) => e);
        errors.push(err);
        // Assess: blocked, the session lives, the previous password still works
        expect(err).toBeInstanceOf(RevocationBlockedError);
        expect((await stray.query<{ u: string }>('SELECT session_user AS u')).rows[0].u).toBe(
          previous.username,
        );
        expect(h.current().generation).toBe(1);
      } finally {
        await stray.end().catch(() => undefined);
      }
    },
  );

  it('a force-finish tag bound to another rotation does not skip the promotion gate', async () => {
    // Prepare
    const h = await createRotationHarness({
      prefix: 'rforce',
      env: gateEnv([{ name: 'api', mode: 'live' }], { maxWaitSeconds: 40 }),
      deps: { clock: world.clock },
    });
    harnesses.push(h);
    const token = await upToFinish(h);
    report(world.model, 'api', 0, world.clock.now(), secretName(h));
    h.model.tagResource({
      SecretId: h.secretArn,
      Tags: [{ Key: TAG_FORCE_FINISH, Value: 'true' }],
    });
    // Act
    const err = await h.step('finishSecret', token).catch((e: unknown) => e);
    errors.push(err);
    // Assess
    expect(err).toBeInstanceOf(ConvergencePendingError);
    expect(stages(h)[token]).toEqual([AWSPENDING]);
  });

  it('a force-finish tag bound to this rotation is removed before the stage move, and again on a retry after completion', async () => {
    // Prepare
    const h = await harness('rforce2', [{ name: 'api', mode: 'live' }]);
    const token = await upToFinish(h);
    h.model.tagResource({ SecretId: h.secretArn, Tags: [{ Key: TAG_FORCE_FINISH, Value: token }] });
    let tagAtMove: string | undefined;
    const original = h.model.updateSecretVersionStage.bind(h.model);
    const spy = jest.spyOn(h.model, 'updateSecretVersionStage').mockImplementation((input) => {
      tagAtMove = h.model
        .describeSecret({ SecretId: h.secretArn })
        .Tags?.find((t) => t.Key === TAG_FORCE_FINISH)?.Value;
      return original(input);
    });
    try {
      // Act
      await h.step('finishSecret', token);
    } finally {
      spy.mockRestore();
    }
    // Assess
    expect(tagAtMove).toBeUndefined();
    expect(h.current().generation).toBe(1);
    // Prepare: the tag reappears (an UntagResource that failed earlier, say); Secrets Manager retries
    h.model.tagResource({ SecretId: h.secretArn, Tags: [{ Key: TAG_FORCE_FINISH, Value: token }] });
    // Act
    await h.step('finishSecret', token);
    // Assess
    expect(
      h.model
        .describeSecret({ SecretId: h.secretArn })
        .Tags?.some((t) => t.Key === TAG_FORCE_FINISH),
    ).toBe(false);
  });
});
