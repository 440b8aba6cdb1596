import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { GetMetricDataCommand, PutMetricDataCommand, CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import {
  CancelRotateSecretCommand,
  DescribeSecretCommand,
  SecretsManagerClient,
  TagResourceCommand,
} from '@aws-sdk/client-secrets-manager';
import type { StatusReport } from '../../cli/commands/status';
import type { Terminal } from '../../cli/confirm';
import { wireCloudWatch, wireSecretsManager } from '../../cli/local/install';
import { runCli } from '../../cli/main';
import { TAG_EMERGENCY, TAG_FORCE_FINISH, TAG_GENERATION_HIGH_WATER } from '../../lambda/rotation';
import { DIMENSION_CONSUMER, DIMENSION_SECRET, LOADED_GENERATION, secretNameDimension } from '../../lambda/shared/metric-contract';
import { capturedOutput, expectNoSecretsInOutput } from '../support/captured-output';
import { cli, cliModels, connectAs } from '../support/probes';
import { AWSPENDING, createRotationHarness, type RotationHarness } from '../support/rotation-harness';

const { cwModel, cwStub, lambda } = cliModels();
const cw = new CloudWatchClient({});
const sm = new SecretsManagerClient({});
const harnesses: RotationHarness[] = [];
const repoRoot = resolve(__dirname, '../..');

/** The CLI in process, with a terminal that answers `answer` to the confirmation (and records the questions). */
async function cliOnTerminal(answer: string, ...argv: string[]): Promise<{ code: number; out: string; err: string; asked: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const asked: string[] = [];
  const terminal: Terminal = {
    interactive: true,
    ask: async (question) => {
      asked.push(question);
      return answer;
    },
  };
  const code = await runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t), terminal });
  return { code, out: out.join('\n'), err: err.join('\n'), asked };
}

/**
 * The real binary (cli/bin.js) in a child process with stdin not a terminal (/dev/null), as a
 * script or CI runs it. Its AWS clients go to the closed port jest's setup sets (AWS_ENDPOINT_URL);
 * Node's warnings (the SDK's about the Node version) are off so stderr holds only the CLI's lines.
 */
function converge(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(repoRoot, 'cli/bin.js'), ...args], { cwd: repoRoot, env: { ...process.env, NODE_NO_WARNINGS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

function tag(h: RotationHarness, key: string): string | undefined {
  return h.model.describeSecret({ SecretId: h.secretArn }).Tags?.find((t) => t.Key === key)?.Value;
}

function pendingVersions(h: RotationHarness): string[] {
  return Object.entries(h.model.snapshot(h.secretArn))
    .filter(([, v]) => v.stages.includes(AWSPENDING) && !v.stages.includes('AWSCURRENT'))
    .map(([id]) => id);
}

afterAll(() => {
  expectNoSecretsInOutput(harnesses.flatMap((h) => h.passwords()));
});

/** A rotation function registered with the local Lambda model, with a consumer registry. */
async function setup(prefix: string, consumers: object[], env: Record<string, string> = {}): Promise<RotationHarness> {
  const fullEnv = { CONVERGE_CONSUMERS: JSON.stringify(consumers), CONVERGE_GATE_MAX_WAIT_SECONDS: '0', ...env };
  const h = await createRotationHarness({ prefix, env: fullEnv });
  lambda.register(h.lambdaArn, (e) => h.handler(e as never), fullEnv);
  harnesses.push(h);
  return h;
}

async function report(h: RotationHarness, consumer: string, generation: number, ageSeconds: number): Promise<void> {
  await cw.send(
    new PutMetricDataCommand({
      Namespace: 'SecretRotation',
      MetricData: [
        {
          MetricName: LOADED_GENERATION,
          Dimensions: [
            { Name: DIMENSION_SECRET, Value: secretNameDimension(h.model.describeSecret({ SecretId: h.secretArn }).Name!) },
            { Name: DIMENSION_CONSUMER, Value: consumer },
          ],
          Value: generation,
          Timestamp: new Date(Date.now() - ageSeconds * 1000),
        },
      ],
    }),
  );
}

describe('CLI: converge status', () => {
  it('names a paused consumer as stale/silent and shows what the gates would decide', async () => {
    // Prepare: two consumers; both reported generation 0; after one rotation only "api" moved,
    // "worker" was paused 20 minutes ago and has been silent since.
    const h = await setup('clis', [
      { name: 'api', mode: 'live', maxStalenessSeconds: 300 },
      { name: 'worker', mode: 'restart-only', maxStalenessSeconds: 300 },
    ]);
    await report(h, 'api', 0, 1200);
    await report(h, 'worker', 0, 1200);
    await report(h, 'api', 1, 30);
    await h.model.rotateSecret({ SecretId: h.secretArn });
    await h.model.rotationSettled(h.secretArn);
    // Act
    const text = await cli('status', h.secretArn);
    const json = await cli('status', h.secretArn, '--json');
    // Assess: the next rotation would be blocked, so status says HOLDING and exits 3
    expect(text.code).toBe(3);
    expect(json.code).toBe(3);
    expect(text.out).toMatch(/^Health {6}HOLDING \(exit 3\): the next rotation would be blocked: revocation worker: silent/m);
    expect(text.out).toMatch(/worker\s+restart-only\s+0\s+\d+s\s+BLOCKING revocation: silent\s+silent since \S+/);
    expect(text.out).toMatch(/api\s+live\s+1\s+\d+s\s+OK/);
    expect(text.out).toMatch(/revocation\s+HOLD \(needs generation 1\): worker: silent/);
    expect(text.out.split('\n')[0]).toBe('Next: restart worker');
    const r = JSON.parse(json.out) as StatusReport;
    // Nothing waits, so the next rotation's revocation guard is what matters: worker blocks it.
    expect(r.consumers.map((c) => [c.name, c.state, c.blocks, c.reason])).toEqual([
      ['api', 'OK', undefined, undefined],
      ['worker', 'BLOCKING', 'revocation', 'silent'],
    ]);
    expect(r.rotation).toEqual({ state: 'idle' });
    expect(r.nextAction).toMatchObject({ kind: 'restart', consumer: 'worker' });
    expect(r.registry.counts).toEqual({ live: 1, scheduled: 0, 'restart-only': 1 });
    expect(r.gates.revocation.verdict).toBe('hold');
    expect(r.gates.promotion.verdict).toBe('not-applicable');
    expect(JSON.stringify(r)).not.toContain(h.current().password);
  });

  it('shows a waiting rotation held by the promotion gate, naming the stale live consumer', async () => {
    // Prepare
    const h = await setup('clip', [{ name: 'api', mode: 'live', maxStalenessSeconds: 300 }]);
    await report(h, 'api', 0, 20);
    const token = h.begin();
    await h.step('createSecret', token);
    // Act
    const run = await cli('status', h.secretArn, '--json');
    // Assess: a waiting rotation is HOLDING, exit 3
    const r = JSON.parse(run.out) as StatusReport;
    expect(run.code).toBe(3);
    expect(r.health).toEqual({ state: 'holding', exitCode: 3, reasons: [expect.stringMatching(/^a rotation is waiting \(version \S+, generation 1\); promotion gate HOLD$/)] });
    expect(r.rotationInProgress).toBe(true);
    expect(r.gates.promotion).toMatchObject({ verdict: 'hold', requiredGeneration: 1, reasons: ['api: stale (reports generation 0)'] });
    // createSecret ran, finishSecret's gate has not held yet: in progress, api not yet on the pending generation.
    expect(r.rotation).toEqual({ state: 'in-progress', versionId: token, generation: 1 });
    expect(r.consumers).toEqual([expect.objectContaining({ name: 'api', state: 'STALE', generation: 0, requiredGeneration: 1 })]);
    expect(r.nextAction.kind).toBe('wait');
  });

  it('--sessions counts the open sessions of the previous user as the master, and the revocation gate holds on them', async () => {
    // Prepare: rotation 1; a script still holds a session as the previous user
    const h = await setup('clises', []);
    await h.rotate();
    const previous = h.secret('AWSPREVIOUS');
    const script = await connectAs(h, previous, 'old-script');
    try {
      // Act
      const r = await cli('status', h.secretArn, '--sessions', '--ca-bundle', h.config.caBundlePath!, '--json');
      // Assess
      expect(r.code).toBe(3);
      const report = JSON.parse(r.out) as StatusReport;
      expect(report.health.state).toBe('holding');
      expect(report.oldUser).toEqual({ username: previous.username, sessions: 1 });
      expect(report.gates.revocation.verdict).toBe('hold');
    } finally {
      await script.end();
    }
  });

  it('exits 0 (HEALTHY) when nothing waits and every consumer reports the current generation', async () => {
    // Prepare
    const h = await setup('clih0', [{ name: 'api', mode: 'live', maxStalenessSeconds: 300 }]);
    await report(h, 'api', 0, 1200);
    await report(h, 'api', 1, 30);
    await h.model.rotateSecret({ SecretId: h.secretArn });
    await h.model.rotationSettled(h.secretArn);
    // Act
    const r = await cli('status', h.secretArn);
    // Assess
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Health {6}HEALTHY \(exit 0\): no rotation is waiting; revocation /m);
  });

  it('exits 4 (UNKNOWN) when CloudWatch cannot be read (access denied), and says why', async () => {
    // Prepare
    const h = await setup('clih4', [{ name: 'api', mode: 'live', maxStalenessSeconds: 300 }]);
    await report(h, 'api', 0, 30);
    cwStub.on(GetMetricDataCommand).rejects(
      Object.assign(new Error('User is not authorized to perform: cloudwatch:GetMetricData'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }),
    );
    try {
      // Act
      const r = await cli('status', h.secretArn);
      // Assess
      expect(r.code).toBe(4);
      expect(r.out).toMatch(/^Health {6}UNKNOWN \(exit 4\): CloudWatch could not be read: GetMetricData failed: AccessDenied \(HTTP 403\): User is not authorized/m);
    } finally {
      wireCloudWatch(cwStub, cwModel);
    }
  });

  it('exits 4 (UNKNOWN) when no registered consumer has any metric (wrong namespace, reporters not running)', async () => {
    // Prepare: a registry whose consumers never reported
    const h = await setup('clihn', [{ name: 'api', mode: 'live', maxStalenessSeconds: 300 }]);
    // Act
    const r = JSON.parse((await cli('status', h.secretArn, '--json')).out) as StatusReport;
    const code = (await cli('status', h.secretArn)).code;
    // Assess
    expect(code).toBe(4);
    expect(r.health).toEqual({ state: 'unknown', exitCode: 4, reasons: [expect.stringMatching(/^no registered consumer has reported in the last hour/)] });
  });

  it('exits 4 (UNKNOWN) when the secret cannot be read (DescribeSecret access denied)', async () => {
    // Prepare
    const h = await setup('clihd', []);
    h.sm.on(DescribeSecretCommand).rejects(
      Object.assign(new Error('User is not authorized to perform: secretsmanager:DescribeSecret'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } }),
    );
    try {
      // Act
      const r = await cli('status', h.secretArn);
      // Assess
      expect(r.code).toBe(4);
      expect(r.err).toMatch(/^converge: health UNKNOWN \(exit 4\): cannot read the state of \S+: missing permission \(AccessDeniedException\)/);
      expect(r.err.split('\n')).toHaveLength(1);
    } finally {
      wireSecretsManager(h.sm, h.model);
    }
  });

  it('the real binary exits 4 when AWS cannot be reached, and --help documents the exit codes', async () => {
    // Act
    const unreachable = await converge('status', 'orders-app');
    const help = await converge('status', '--help');
    // Assess
    expect(unreachable.code).toBe(4);
    expect(unreachable.stderr).toMatch(/^converge: health UNKNOWN \(exit 4\): cannot read the state of orders-app: /);
    expect(unreachable.stdout).toBe('');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes \(for scripts\):\n\s+0 {2}healthy: .*\n\s+3 {2}holding: .*\n\s+4 {2}unknown: /);
  });

  it('reports a missing secret in one line, without a stack trace', async () => {
    const r = await cli('status', 'no-such-secret');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^converge: not found: /);
    expect(r.err.split('\n')).toHaveLength(1);
  });

  it('rejects an invalid --consumers registry with the received value', async () => {
    const h = await setup('clir', []);
    const r = await cli('status', h.secretArn, '--consumers', '[{"name":"a","mode":"sometimes"}]');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/mode must be one of live, scheduled, restart-only, got "sometimes"/);
  });
});

describe('CLI: converge abort and finish --force', () => {
  it('abort removes a stuck AWSPENDING and the secret rotates again, skipping the burnt generation', async () => {
    // Prepare: a rotation stuck after createSecret
    const h = await setup('clia', []);
    const stuck = h.begin();
    await h.step('createSecret', stuck);
    // Act
    const aborted = await cli('abort', h.secretArn, '--yes');
    // Assess
    expect(aborted.code).toBe(0);
    expect(aborted.out).toContain(`AWSPENDING removed from version ${stuck}: generation 1 if its createSecret ran (converge:generation tag); 1 is never issued again`);
    expect(h.model.snapshot(h.secretArn)[stuck].stages).toEqual([]);
    await h.rotate();
    expect(h.current().generation).toBe(2);
    expect((await cli('abort', h.secretArn, '--yes')).out).toMatch(/nothing to abort/);
  });

  it('finish --force promotes a rotation held by the gate, logs it as FORCED, and clears the override', async () => {
    // Prepare: a live consumer that never reports holds finishSecret
    const h = await setup('clif', [{ name: 'ghost', mode: 'live', maxStalenessSeconds: 60 }]);
    await expect(h.rotate()).rejects.toThrow(/ghost \(silent/);
    expect((await cli('finish', h.secretArn)).err).toMatch(/pass --force/);
    // Act
    const r = await cli('finish', h.secretArn, '--force');
    // Assess
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/is AWSCURRENT \(FORCED\); version \S+ is AWSPREVIOUS; tag converge:force-finish is gone \(the function removed it\)$/);
    expect(h.current().generation).toBe(1);
    expect(capturedOutput().some((l) => /FORCED by operator override/.test(l))).toBe(true);
    const tags = h.model.describeSecret({ SecretId: h.secretArn }).Tags ?? [];
    expect(tags.find((t) => t.Key === TAG_FORCE_FINISH)).toBeUndefined();
    expect(Object.values(h.model.snapshot(h.secretArn)).filter((v) => v.stages.includes(AWSPENDING) && !v.stages.includes('AWSCURRENT'))).toEqual([]);
  });

  it('rotate --emergency tags the secret and starts a rotation', async () => {
    const h = await setup('clie', []);
    const r = await cli('rotate', h.secretArn, '--emergency', '--yes', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ emergency: true });
    await h.model.rotationSettled(h.secretArn);
    expect(h.current().generation).toBe(1);
    expect(capturedOutput().some((l) => /EMERGENCY rotation requested/.test(l))).toBe(true);
  });
});

describe('CLI: abort and rotate --emergency say exactly what they change, and ask first', () => {
  it('abort prints the stage it moved, the tags it removed by key and the re-drive result, and reads no secret value', async () => {
    // Prepare: a rotation stuck after createSecret, with the tags a crashed finish --force and a
    // crashed rotate --emergency of it left behind
    const h = await setup('cliam', []);
    const stuck = h.begin();
    await h.step('createSecret', stuck);
    await sm.send(new TagResourceCommand({ SecretId: h.secretArn, Tags: [{ Key: TAG_FORCE_FINISH, Value: stuck }, { Key: TAG_EMERGENCY, Value: stuck }] }));
    const current = Object.entries(h.model.snapshot(h.secretArn)).find(([, v]) => v.stages.includes('AWSCURRENT'))![0];
    let inFunction = 0;
    lambda.register(h.lambdaArn, async (e) => {
      inFunction++;
      try {
        return await h.handler(e as never);
      } finally {
        inFunction--;
      }
    });
    const readsByCli: unknown[] = [];
    const original = h.model.getSecretValue.bind(h.model);
    const spy = jest.spyOn(h.model, 'getSecretValue').mockImplementation((input) => {
      if (inFunction === 0) readsByCli.push(input);
      return original(input);
    });
    try {
      // Act
      const r = await cli('abort', h.secretArn, '--yes');
      // Assess
      expect(r.code).toBe(0);
      expect(r.out.split('\n')).toEqual([
        `aborted the rotation of ${h.model.describeSecret({ SecretId: h.secretArn }).Name} (no secret value was read):`,
        `  AWSPENDING removed from version ${stuck}: generation 1 if its createSecret ran (converge:generation tag); 1 is never issued again`,
        `  AWSCURRENT unchanged: version ${current}`,
        '  tags removed: converge:emergency, converge:force-finish',
        expect.stringMatching(new RegExp(`^  abort recorded: converge:aborted=${stuck} 1 \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$`)),
        '  re-drive: the function answered "nothing-pending"; previous user re-checked by the rotation function: done',
      ]);
      expect(tag(h, 'converge:aborted')).toMatch(new RegExp(`^${stuck} 1 `));
      expect(readsByCli).toEqual([]);
      expect(tag(h, TAG_FORCE_FINISH)).toBeUndefined();
      expect(tag(h, TAG_EMERGENCY)).toBeUndefined();
      expect(tag(h, TAG_GENERATION_HIGH_WATER)).toBe('1');
      expect(pendingVersions(h)).toEqual([]);
    } finally {
      spy.mockRestore();
    }
  });

  it('createSecret writes the generation tag before the pending value, so the tag is the pending generation', async () => {
    // Prepare: record the tag at the moment the pending value is written
    const h = await setup('cligt', []);
    const token = h.begin();
    const seen: (string | undefined)[] = [];
    const original = h.model.putSecretValue.bind(h.model);
    const spy = jest.spyOn(h.model, 'putSecretValue').mockImplementation((input) => {
      seen.push(tag(h, TAG_GENERATION_HIGH_WATER));
      return original(input);
    });
    try {
      // Act
      await h.step('createSecret', token);
    } finally {
      spy.mockRestore();
    }
    // Assess
    expect(seen).toEqual(['1']);
    expect(h.secret(AWSPENDING).generation).toBe(1);
  });

  it('abort without --yes and without a terminal refuses with exit 2 before any AWS call; the real binary too', async () => {
    // Prepare
    const h = await setup('cliar', []);
    const stuck = h.begin();
    await h.step('createSecret', stuck);
    const callsBefore = h.sm.calls().length;
    // Act
    const r = await cli('abort', h.secretArn);
    const real = await converge('abort', h.secretArn);
    // Assess
    for (const run of [r, { code: real.code, err: real.stderr.trim(), out: real.stdout }]) {
      expect(run.code).toBe(2);
      expect(run.err).toBe(
        'converge: abort drops the waiting version of the secret and asks for confirmation first, but stdin is not a terminal: ' +
          'pass --yes to confirm (scripts and CI must say --yes). Nothing was changed.',
      );
      expect(run.out).toBe('');
    }
    expect(h.sm.calls().length).toBe(callsBefore);
    expect(pendingVersions(h)).toEqual([stuck]);
  });

  it('abort on a terminal shows what it will change and acts only when the secret name is typed', async () => {
    // Prepare
    const h = await setup('cliat', []);
    const stuck = h.begin();
    await h.step('createSecret', stuck);
    const name = h.model.describeSecret({ SecretId: h.secretArn }).Name!;
    // Act
    const declined = await cliOnTerminal('y', 'abort', h.secretArn);
    const stillWaiting = pendingVersions(h);
    const confirmed = await cliOnTerminal(name, 'abort', h.secretArn);
    // Assess
    expect(declined.code).toBe(1);
    expect(declined.asked).toEqual([`Type the secret's name (${name}) to go ahead, anything else to stop: `]);
    expect(declined.err).toContain(`abort of ${name} will:\n  - remove AWSPENDING from version ${stuck} (generation 1 if its createSecret ran`);
    expect(declined.err).toMatch(/converge: abort of \S+ not confirmed \(the answer was not the secret's name\)\. Nothing was changed\.$/);
    expect(stillWaiting).toEqual([stuck]);
    expect(confirmed.code).toBe(0);
    expect(confirmed.out).toContain(`AWSPENDING removed from version ${stuck}`);
    expect(pendingVersions(h)).toEqual([]);
  });

  it('abort changes nothing when the waiting rotation changed while the operator was confirming', async () => {
    // Prepare: a colleague aborts the stuck rotation and starts a new one while the prompt is open
    const h = await setup('cliac', []);
    const stuck = h.begin();
    await h.step('createSecret', stuck);
    const name = h.model.describeSecret({ SecretId: h.secretArn }).Name!;
    let next = '';
    const terminal: Terminal = {
      interactive: true,
      ask: async () => {
        h.model.updateSecretVersionStage({ SecretId: h.secretArn, VersionStage: AWSPENDING, RemoveFromVersionId: stuck });
        next = h.begin();
        return name;
      },
    };
    const err: string[] = [];
    // Act
    const code = await runCli(['abort', h.secretArn], { out: () => undefined, err: (t) => err.push(t), terminal });
    // Assess
    expect(code).toBe(1);
    expect(err.at(-1)).toBe(
      `converge: the waiting rotation of ${name} changed while you confirmed (version ${stuck} no longer waits; version ${next} does now). ` +
        'Nothing was changed; run abort again if needed.',
    );
    expect(pendingVersions(h)).toEqual([next]);
  });

  it('rotate --emergency without --yes and without a terminal refuses with exit 2: no tag, no rotation; the real binary too', async () => {
    // Prepare
    const h = await setup('clier', []);
    // Act
    const r = await cli('rotate', h.secretArn, '--emergency');
    const real = await converge('rotate', h.secretArn, '--emergency');
    // Assess
    for (const run of [r, { code: real.code, err: real.stderr.trim() }]) {
      expect(run.code).toBe(2);
      expect(run.err).toMatch(/^converge: rotate --emergency terminates the previous user's sessions without waiting for consumers and asks for confirmation first, but stdin is not a terminal: pass --yes/);
    }
    expect(tag(h, TAG_EMERGENCY)).toBeUndefined();
    expect(pendingVersions(h)).toEqual([]);
    expect(h.current().generation).toBe(0);
  });

  it('rotate --emergency on a terminal acts only when the secret name is typed, then prints the tag it set and what the guard will do', async () => {
    // Prepare: one rotation done, so there is a previous user whose sessions the guard terminates
    const h = await setup('cliet', []);
    await h.rotate();
    const name = h.model.describeSecret({ SecretId: h.secretArn }).Name!;
    const stages = h.model.snapshot(h.secretArn);
    const previous = Object.entries(stages).find(([, v]) => v.stages.includes('AWSPREVIOUS'))![0];
    const current = Object.entries(stages).find(([, v]) => v.stages.includes('AWSCURRENT'))![0];
    // Act
    const declined = await cliOnTerminal('yes', 'rotate', h.secretArn, '--emergency');
    const noTag = tag(h, TAG_EMERGENCY);
    const confirmed = await cliOnTerminal(name, 'rotate', h.secretArn, '--emergency');
    await h.model.rotationSettled(h.secretArn);
    // Assess
    expect(declined.code).toBe(1);
    expect(declined.err).toContain(`rotate --emergency of ${name} will:\n  - tag the secret converge:emergency=<the new version's id>`);
    expect(declined.err).toContain(`terminates every session of the previous user (AWSPREVIOUS, version ${previous})`);
    expect(noTag).toBeUndefined();
    expect(confirmed.code).toBe(0);
    const token = /version (\S+) is AWSPENDING/.exec(confirmed.out)![1];
    expect(confirmed.out.split('\n')).toEqual([
      `EMERGENCY rotation of ${name} started: version ${token} is AWSPENDING`,
      `  tag set: converge:emergency=${token}`,
      `  AWSCURRENT stays on version ${current} until finishSecret promotes ${token}`,
      `  the revocation guard does not wait for consumers: it terminates the sessions of the previous user (version ${previous}); ` +
        `after promotion the credential of version ${current} is revoked and its sessions are terminated`,
    ]);
    expect(h.current().generation).toBe(2);
  });
});

describe('CLI: rotate never silently re-enables a paused rotation', () => {
  it('refuses (exit 1, nothing changed) when automatic rotation is paused, and rotates with --enable-rotation, saying it re-enabled it', async () => {
    // Prepare: an operator paused rotation during an incident
    const h = await setup('clipa', []);
    await sm.send(new CancelRotateSecretCommand({ SecretId: h.secretArn }));
    // Act
    const refused = await cli('rotate', h.secretArn);
    const refusedEmergency = await cli('rotate', h.secretArn, '--emergency', '--yes');
    const paused = (await sm.send(new DescribeSecretCommand({ SecretId: h.secretArn }))).RotationEnabled;
    const pendingWhilePaused = pendingVersions(h);
    const resumed = await cli('rotate', h.secretArn, '--enable-rotation', '--json');
    await h.model.rotationSettled(h.secretArn);
    // Assess
    for (const r of [refused, refusedEmergency]) {
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^converge: automatic rotation of \S+ is paused \(RotationEnabled is false, e\.g\. after CancelRotateSecret during an incident\), and RotateSecret would turn it back on\. Nothing was changed\. .*pass --enable-rotation to rotate now and resume the schedule/);
    }
    expect(tag(h, TAG_EMERGENCY)).toBeUndefined();
    expect(paused).toBe(false);
    expect(pendingWhilePaused).toEqual([]);
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.out)).toMatchObject({ rotationReEnabled: true, emergency: false });
    expect((await sm.send(new DescribeSecretCommand({ SecretId: h.secretArn }))).RotationEnabled).toBe(true);
    expect(h.current().generation).toBe(1);
  });

  it('says in its output that automatic rotation was re-enabled', async () => {
    // Prepare
    const h = await setup('clipt', []);
    await sm.send(new CancelRotateSecretCommand({ SecretId: h.secretArn }));
    // Act
    const r = await cli('rotate', h.secretArn, '--enable-rotation');
    await h.model.rotationSettled(h.secretArn);
    // Assess
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^rotation of \S+ started: version \S+ is AWSPENDING\n(.*\n)*  automatic rotation was re-enabled \(it was paused\)$/);
  });
});
