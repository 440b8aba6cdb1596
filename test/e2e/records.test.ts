/**
 * Issue 12: the rotation function records non-secret facts on the secret (lambda/rotation/records.ts),
 * so `converge status` and `converge abort` work from DescribeSecret alone. Real handler, real
 * PostgreSQL, AWS through the local models.
 */
import { PutMetricDataCommand, CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { NOT_RECORDED, readSecretState } from '../../cli/commands/secret-state';
import type { StatusReport } from '../../cli/commands/status';
import {
  readGateRecord,
  readLastFailure,
  readVersionRecords,
  TAG_GATE,
  TAG_LAST_FAILURE,
  TAG_VERSION_PREFIX,
} from '../../lambda/rotation/records';
import { ConvergencePendingError } from '../../lambda/shared/errors';
import {
  DIMENSION_CONSUMER,
  DIMENSION_SECRET,
  LOADED_GENERATION,
  secretNameDimension,
} from '../../lambda/shared/metric-contract';
import { cli, cliClients, cliModels, leakCheckedHarnesses } from '../support/probes';
import {
  AWSCURRENT,
  AWSPENDING,
  AWSPREVIOUS,
  type RotationHarness,
} from '../support/rotation-harness';

const { lambda } = cliModels();
const cw = new CloudWatchClient({});
const file = leakCheckedHarnesses();

/** The rotation function's own Secrets Manager client: its calls are told apart from the CLI's. */
const functionSm = new SecretsManagerClient({});

/** GetSecretValue calls the CLI made (the rotation function, which abort re-drives, may read values). */
function cliValueReads(h: RotationHarness) {
  return h.sm.commandCalls(GetSecretValueCommand).filter((c) => c.thisValue !== functionSm);
}

/** A harness whose function the Lambda model knows (status reads its registry from there). */
async function setup(prefix: string, consumers: object[] = []): Promise<RotationHarness> {
  const env = {
    CONVERGE_CONSUMERS: JSON.stringify(consumers),
    CONVERGE_GATE_MAX_WAIT_SECONDS: '0',
  };
  const h = await file.create({ prefix, env, deps: { secretsManager: functionSm } });
  lambda.register(h.lambdaArn, (e) => h.handler(e as never), env);
  return h;
}

function describe_(h: RotationHarness) {
  return h.model.describeSecret({ SecretId: h.secretArn });
}

function versionsAt(h: RotationHarness): Record<string, string[]> {
  return Object.fromEntries(
    Object.entries(h.model.snapshot(h.secretArn)).map(([id, v]) => [id, v.stages]),
  );
}

function versionWith(h: RotationHarness, stage: string): string {
  const found = Object.entries(versionsAt(h)).find(([, stages]) => stages.includes(stage));
  if (!found) throw new Error(`no version has ${stage}`);
  return found[0];
}

async function report(h: RotationHarness, consumer: string, generation: number): Promise<void> {
  await cw.send(
    new PutMetricDataCommand({
      Namespace: 'SecretRotation',
      MetricData: [
        {
          MetricName: LOADED_GENERATION,
          Dimensions: [
            { Name: DIMENSION_SECRET, Value: secretNameDimension(describe_(h).Name!) },
            { Name: DIMENSION_CONSUMER, Value: consumer },
          ],
          Value: generation,
          Timestamp: new Date(),
        },
      ],
    }),
  );
}

describe('Records: what the rotation function writes on the secret', () => {
  it('after a rotation: every staged version is recorded, and status reads generations and users without GetSecretValue', async () => {
    // Prepare
    const h = await setup('rec1');
    const original = h.current();
    const firstVersion = versionWith(h, AWSCURRENT);
    // Act
    await h.rotate();
    const rotated = h.current();
    h.sm.resetHistory();
    const json = await cli('status', h.secretArn, '--json');
    // Assess: the records name user and generation of AWSCURRENT and AWSPREVIOUS
    const current = versionWith(h, AWSCURRENT);
    expect(Object.fromEntries(readVersionRecords(describe_(h)))).toEqual({
      [current]: { generation: 1, username: rotated.username },
      [firstVersion]: { generation: 0, username: original.username },
    });
    // ...status shows them, and read no secret value to do so
    const r = JSON.parse(json.out) as StatusReport;
    const byStage = (stage: string) => r.versions.find((v) => v.stages.includes(stage));
    expect(byStage(AWSCURRENT)).toMatchObject({
      versionId: current,
      generation: 1,
      username: rotated.username,
    });
    expect(byStage(AWSPREVIOUS)).toMatchObject({
      versionId: firstVersion,
      generation: 0,
      username: original.username,
    });
    expect(h.sm).not.toHaveReceivedCommand(GetSecretValueCommand);
    expect(json.out).not.toContain(rotated.password);
  });

  it('a second rotation prunes the record of the version that lost its last stage', async () => {
    // Prepare
    const h = await setup('rec2');
    const first = versionWith(h, AWSCURRENT);
    await h.rotate();
    // Act
    await h.rotate();
    // Assess
    const d = describe_(h);
    const recordKeys = (d.Tags ?? [])
      .map((t) => t.Key!)
      .filter((k) => k.startsWith(TAG_VERSION_PREFIX));
    expect(recordKeys.sort()).toEqual(
      Object.keys(d.VersionIdsToStages ?? {})
        .map((id) => TAG_VERSION_PREFIX + id)
        .sort(),
    );
    expect(recordKeys).not.toContain(TAG_VERSION_PREFIX + first);
    expect(readVersionRecords(d).get(versionWith(h, AWSCURRENT))?.generation).toBe(2);
  });

  it('a secret rotated before converge recorded versions: status notes it, and the next rotation records AWSCURRENT', async () => {
    // Prepare: a rotation, then its records removed (as on a secret rotated by an older converge)
    const h = await setup('rec3');
    await h.rotate();
    const before = describe_(h);
    const keys = (before.Tags ?? [])
      .map((t) => t.Key!)
      .filter((k) => k.startsWith(TAG_VERSION_PREFIX));
    h.model.untagResource({ SecretId: h.secretArn, TagKeys: keys });
    // Act
    const unrecorded = await readSecretState(cliClients(), h.secretArn);
    const token = h.begin();
    await h.step('createSecret', token);
    const afterCreate = await readSecretState(cliClients(), h.secretArn);
    // Assess
    expect(unrecorded.current).toMatchObject({ note: NOT_RECORDED });
    expect(unrecorded.current?.generation).toBeUndefined();
    expect(afterCreate.current).toMatchObject({
      generation: 1,
      username: h.current().username,
      source: 'record',
    });
    expect(afterCreate.pending).toMatchObject({
      versionId: token,
      generation: 2,
      username: h.secret(AWSPENDING).username,
    });
    expect(afterCreate.previous).toMatchObject({ note: NOT_RECORDED });
  });

  it('a gate hold: converge:gate keeps the first hold time and counts evaluations across invocations', async () => {
    // Prepare: a live consumer that never moves past generation 0
    const h = await setup('rec4', [{ name: 'api', mode: 'live', maxStalenessSeconds: 300 }]);
    await report(h, 'api', 0);
    const token = h.begin();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const)
      await h.step(step, token);
    // Act: two invocations of finishSecret, both held
    await expect(h.step('finishSecret', token)).rejects.toBeInstanceOf(ConvergencePendingError);
    const first = readGateRecord(describe_(h));
    await expect(h.step('finishSecret', token)).rejects.toBeInstanceOf(ConvergencePendingError);
    const second = readGateRecord(describe_(h));
    // Assess
    expect(first).toMatchObject({ versionId: token, evaluations: 1 });
    expect(second).toMatchObject({ versionId: token, evaluations: 2, since: first?.since });
    expect(Date.parse(second!.lastEvaluation)).toBeGreaterThanOrEqual(
      Date.parse(first!.lastEvaluation),
    );
    // ...a hold is not a failure
    expect(readLastFailure(describe_(h))).toBeUndefined();
    const state = await readSecretState(cliClients(), h.secretArn);
    expect(state.gate).toEqual(second);
    expect(state.pending).toMatchObject({ versionId: token, generation: 1, source: 'record' });
  });

  it('a step failure: converge:last-failure names the step, time and typed error; the retry that succeeds removes it', async () => {
    // Prepare: the master's password is wrong, so setSecret cannot log in as the master
    const h = await setup('rec5');
    const masterValue = h.model.getSecretValue({ SecretId: h.masterArn }).SecretString!;
    const wrong = { ...JSON.parse(masterValue), password: 'Wr0ng-master-password-for-the-test' };
    h.model.putSecretValue({ SecretId: h.masterArn, SecretString: JSON.stringify(wrong) });
    const token = h.begin();
    await h.step('createSecret', token);
    const before = Date.now();
    // Act
    const error = (await h.step('setSecret', token).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error;
    const failure = readLastFailure(describe_(h));
    // Assess
    expect(error).toBeInstanceOf(Error);
    expect(failure).toMatchObject({ versionId: token, step: 'setSecret', errorName: error.name });
    expect(Date.parse(failure!.at)).toBeGreaterThanOrEqual(before - 1000);
    expect(failure!.message.length).toBeGreaterThan(0);
    expect(JSON.stringify(describe_(h).Tags)).not.toContain(wrong.password);
    const state = await readSecretState(cliClients(), h.secretArn);
    expect(state.lastFailure).toEqual(failure);
    // ...the master is repaired; setSecret succeeds on retry and the record goes
    h.model.putSecretValue({ SecretId: h.masterArn, SecretString: masterValue });
    await h.step('setSecret', token);
    expect(describe_(h).Tags?.some((t) => t.Key === TAG_LAST_FAILURE)).toBe(false);
  });

  it('a record that cannot be written never masks the step error', async () => {
    // Prepare: TagResource of the failure record fails
    const h = await setup('rec6');
    const token = h.begin();
    await h.step('createSecret', token);
    h.model.putSecretValue({
      SecretId: h.masterArn,
      SecretString: JSON.stringify({
        ...JSON.parse(h.model.getSecretValue({ SecretId: h.masterArn }).SecretString!),
        password: 'also-wrong-0',
      }),
    });
    const original = h.model.tagResource.bind(h.model);
    h.model.tagResource = () => {
      throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    };
    try {
      // Act
      const error = (await h.step('setSecret', token).then(
        () => undefined,
        (e: unknown) => e,
      )) as Error;
      // Assess: the step's own error, not the tag's
      expect(error.name).not.toBe('ThrottlingException');
      expect(error.message).not.toMatch(/Rate exceeded/);
    } finally {
      h.model.tagResource = original;
    }
  });

  it('abort reads no secret value; the records it leaves name no waiting version, and the next promotion prunes them', async () => {
    // Prepare: a rotation held at the gate
    const h = await setup('rec7', [{ name: 'api', mode: 'live', maxStalenessSeconds: 300 }]);
    await report(h, 'api', 0);
    const token = h.begin();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const)
      await h.step(step, token);
    await expect(h.step('finishSecret', token)).rejects.toBeInstanceOf(ConvergencePendingError);
    h.sm.resetHistory();
    // Act
    const aborted = await cli('abort', h.secretArn, '--yes');
    // Assess
    expect(aborted.code).toBe(0);
    expect(h.sm.commandCalls(GetSecretValueCommand).length).toBeGreaterThan(0); // the re-drive's, by the function
    expect(cliValueReads(h)).toEqual([]);
    const state = await readSecretState(cliClients(), h.secretArn);
    expect(state.pending).toBeUndefined();
    // The records stay (the operator may not remove them) but name a version nothing waits on.
    expect(state.gate?.versionId).toBe(token);
    expect(versionsAt(h)[token] ?? []).toEqual([]);
    expect(readVersionRecords(describe_(h)).has(token)).toBe(true);
    // The next rotation is held too (the consumer stays on generation 0); finish --force promotes it,
    // and the promotion prunes the aborted version's record and the gate record.
    await h.model.rotateSecret({ SecretId: h.secretArn });
    await h.model.rotationSettled(h.secretArn);
    const next = h.pendingToken();
    const finished = await cli('finish', h.secretArn, '--force');
    expect(finished.code).toBe(0);
    expect(versionWith(h, AWSCURRENT)).toBe(next);
    const d = describe_(h);
    expect(readVersionRecords(d).has(token)).toBe(false);
    expect(readVersionRecords(d).get(next)?.generation).toBe(2);
    expect(readGateRecord(d)).toBeUndefined();
    expect(d.Tags?.some((t) => t.Key === TAG_GATE)).toBe(false);
  });
});
