/**
 * `converge report` end to end: the command through the CLI entry (in process, and the real binary
 * against the local models served over HTTP), its report in the CloudWatch model, and what the
 * rotation function's gates and `converge status` then read from it.
 */
import { join, resolve } from 'node:path';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import type { ReportResult } from '../../cli/commands/report';
import type { StatusReport } from '../../cli/commands/status';
import { startLocalEndpoint } from '../../cli/local/endpoint';
import { ConvergencePendingError } from '../../lambda/shared/errors';
import {
  LOADED_GENERATION,
  loadedGenerationDimensions,
  secretNameDimension,
} from '../../lambda/shared/metric-contract';
import { parseGenerationReport } from '../../lambda/shared/report-document';
import { runChild } from '../support/child-process';
import { cli, cliModels } from '../support/probes';
import {
  createRotationHarness,
  localSecretsManager,
  type RotationHarness,
} from '../support/rotation-harness';

const { cwModel, lambda } = cliModels();
const harnesses: RotationHarness[] = [];
/** Everything the CLI printed in this file: no password may appear in it. */
const printed: string[] = [];
const repoRoot = resolve(__dirname, '../..');

afterAll(() => {
  const passwords = harnesses.flatMap((h) => h.passwords());
  expect(passwords.length).toBeGreaterThan(0);
  for (const text of printed) for (const p of passwords) expect(text).not.toContain(p);
});

/** A rotation function registered with the local Lambda model, with a consumer registry. */
async function setup(prefix: string, consumers: object[]): Promise<RotationHarness> {
  const env = {
    CONVERGE_CONSUMERS: JSON.stringify(consumers),
    CONVERGE_GATE_MAX_WAIT_SECONDS: '0',
  };
  const h = await createRotationHarness({ prefix, env });
  lambda.register(h.lambdaArn, (e) => h.handler(e as never), env);
  harnesses.push(h);
  return h;
}

/** The CLI in process; what it printed is kept for the password check. */
async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await cli(...argv);
  printed.push(r.out, r.err);
  return r;
}

function nameOf(h: RotationHarness): string {
  return h.model.describeSecret({ SecretId: h.secretArn }).Name!;
}

/** The `LoadedGeneration` cells stored for a consumer of a secret (default namespace). */
function cells(secretName: string, consumer: string) {
  return cwModel.cells(
    'SecretRotation',
    LOADED_GENERATION,
    loadedGenerationDimensions(secretName, consumer),
  );
}

/** The real binary (cli/bin.js) with stdin not a terminal, its AWS calls going to `endpoint`. */
async function converge(
  endpoint: string,
  ...args: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await runChild(process.execPath, [join(repoRoot, 'cli/bin.js'), ...args], {
    cwd: repoRoot,
    env: { ...process.env, AWS_ENDPOINT_URL: endpoint, NODE_NO_WARNINGS: '1' },
  });
  printed.push(r.stdout, r.stderr);
  return r;
}

describe('CLI: converge report', () => {
  it('lands under the secret name and the promotion gate reads it: a rotation held by a silent live consumer completes once it reports', async () => {
    // Prepare: a rotation past setSecret and testSecret, held at finishSecret by a live consumer that never reported
    const h = await setup('rptg', [{ name: 'api', mode: 'live', maxStalenessSeconds: 300 }]);
    const token = h.begin();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const)
      await h.step(step, token);
    await expect(h.step('finishSecret', token)).rejects.toThrow(ConvergencePendingError);
    expect(h.current().generation).toBe(0);
    // Act: the consumer reports the pending generation, through an ARN as --secret
    const r = await run(
      'report',
      '--secret',
      h.secretArn,
      '--consumer',
      'api',
      '--generation',
      '1',
      '--json',
    );
    // Assess: sent under the name, unit None; the promotion gate admits, status is healthy
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out) as ReportResult).toEqual({
      contractVersion: 1,
      namespace: 'SecretRotation',
      secretName: nameOf(h),
      consumer: 'api',
      metric: 'LoadedGeneration',
      unit: 'None',
      generation: 1,
      source: { kind: 'option' },
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      storageResolution: 60,
      via: 'PutMetricData',
    });
    expect(secretNameDimension(h.secretArn)).toBe(nameOf(h));
    expect(cells(nameOf(h), 'api')).toEqual([
      expect.objectContaining({ count: 1, min: 1, max: 1, unit: 'None' }),
    ]);
    await h.step('finishSecret', token);
    expect(h.current().generation).toBe(1);
    const status = await run('status', h.secretArn, '--json');
    expect(status.code).toBe(0);
    expect((JSON.parse(status.out) as StatusReport).consumers).toEqual([
      expect.objectContaining({ name: 'api', state: 'OK', generation: 1 }),
    ]);
  });

  it('--from-secret reports the generation of AWSCURRENT (after a rotation, the new one) and prints no password', async () => {
    // Prepare: one rotation done, generation 1 is AWSCURRENT
    const h = await setup('rptf', []);
    await h.rotate();
    const current = h.current();
    expect(current.generation).toBe(1);
    const currentVersion = Object.entries(h.model.snapshot(h.secretArn)).find(([, v]) =>
      v.stages.includes('AWSCURRENT'),
    )![0];
    // Act
    const json = await run(
      'report',
      '--secret',
      h.secretArn,
      '--consumer',
      'nightly',
      '--from-secret',
      '--json',
    );
    const text = await run(
      'report',
      '--secret',
      nameOf(h),
      '--consumer',
      'nightly',
      '--from-secret',
    );
    // Assess
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toMatchObject({
      secretName: nameOf(h),
      consumer: 'nightly',
      generation: 1,
      source: { kind: 'AWSCURRENT', versionId: currentVersion },
    });
    expect(text.code).toBe(0);
    expect(text.out).toMatch(
      new RegExp(
        `^reported LoadedGeneration 1 \\(from AWSCURRENT \\(version ${currentVersion}\\)\\) for consumer "nightly" of secret "${nameOf(h)}": namespace SecretRotation, PutMetricData at \\S+Z$`,
      ),
    );
    expect(cells(nameOf(h), 'nightly').map((c) => [c.min, c.max])).toEqual([[1, 1]]);
    for (const out of [json, text]) expect(`${out.out}${out.err}`).not.toContain(current.password);
    // ... and the revocation guard's view sees the scheduled job on the current generation
    const status = await run(
      'status',
      h.secretArn,
      '--json',
      '--consumers',
      '[{"name":"nightly","mode":"scheduled","maxStalenessSeconds":3600}]',
    );
    const report = JSON.parse(status.out) as StatusReport;
    expect(status.code).toBe(0);
    expect(report.consumers).toEqual([
      expect.objectContaining({ name: 'nightly', state: 'OK', generation: 1 }),
    ]);
    // (without --sessions the open sessions are not counted, so the verdict is not a full admit)
    expect(report.gates.revocation).toMatchObject({
      verdict: 'unknown',
      requiredGeneration: 1,
      reasons: [
        expect.stringMatching(/^every consumer reports the current generation/),
        expect.stringMatching(/not checked \(pass --sessions\)$/),
      ],
    });
  });

  it('--emf prints one line that passes the contract checker and sends nothing; extracted by CloudWatch Logs, the gates read it', async () => {
    // Prepare
    const h = await setup('rpte', [{ name: 'job', mode: 'scheduled', maxStalenessSeconds: 3600 }]);
    const puts = cwModel.stats.putMetricDataCalls;
    const reads = localSecretsManager().sm.commandCalls(GetSecretValueCommand).length;
    // Act
    const r = await run(
      'report',
      '--secret',
      h.secretArn,
      '--consumer',
      'job',
      '--generation',
      '0',
      '--emf',
      '--high-resolution',
    );
    // Assess: one line on stdout, valid under the contract, no AWS call
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out.split('\n')).toHaveLength(1);
    expect(
      parseGenerationReport(r.out, { namespace: 'SecretRotation', now: Date.now() }),
    ).toMatchObject({
      secretName: nameOf(h),
      consumer: 'job',
      generation: 0,
      highResolution: true,
    });
    expect(cwModel.stats.putMetricDataCalls).toBe(puts);
    expect(localSecretsManager().sm.commandCalls(GetSecretValueCommand)).toHaveLength(reads);
    // ... and once CloudWatch Logs extracts it, the consumer is OK for the gates
    expect(cwModel.putEmbeddedMetricLine(r.out)).toBe(1);
    const status = await run('status', h.secretArn, '--json');
    expect(status.code).toBe(0);
    expect((JSON.parse(status.out) as StatusReport).consumers).toEqual([
      expect.objectContaining({ name: 'job', state: 'OK', generation: 0 }),
    ]);
  });

  it.each([
    [
      ['--consumer', 'api', '--generation', '-1'],
      /^error: option '--generation <n>' argument '-1' is invalid\. expected a whole number >= 0$/m,
    ],
    [
      ['--consumer', 'api', '--generation', '1.5'],
      /^error: option '--generation <n>' argument '1\.5' is invalid\. expected a whole number >= 0$/m,
    ],
    [
      ['--consumer', 'api', '--generation', 'seven'],
      /^error: option '--generation <n>' argument 'seven' is invalid\./m,
    ],
    [
      ['--consumer', '', '--generation', '1'],
      /^error: option '--consumer <name>' argument '' is invalid\. must be 1-255 characters of letters, digits and \._:\/@\+=- starting with a letter or digit, got ""$/m,
    ],
    [
      ['--consumer', 'nightly export', '--generation', '1'],
      /^error: option '--consumer <name>' argument 'nightly export' is invalid\. must be 1-255 characters/m,
    ],
    [
      ['--consumer', 'caf\u00e9', '--generation', '1'],
      /^error: option '--consumer <name>' argument 'caf\u00e9' is invalid\./m,
    ],
    [
      ['--consumer', 'a'.repeat(256), '--generation', '1'],
      /^error: option '--consumer <name>' argument 'a{256}' is invalid\./m,
    ],
    [['--consumer', 'api'], /^error: pass --generation <n> or --from-secret$/m],
    [
      ['--consumer', 'api', '--generation', '1', '--from-secret'],
      /^error: option '--generation <n>' cannot be used with option '--from-secret'$/m,
    ],
    [
      ['--consumer', 'api', '--generation', '1', '--emf', '--json'],
      /^error: option '--emf' cannot be used with option '--json'$/m,
    ],
    [
      ['--consumer', 'api', '--generation', '1', '--namespace', 'AWS/RDS'],
      /^error: option '--namespace <namespace>' argument 'AWS\/RDS' is invalid\. must not start with "AWS\/"/m,
    ],
    [['--generation', '1'], /^error: required option '--consumer <name>' not specified$/m],
  ])(
    '%j is a usage error (exit 2) naming the option and the value, before any AWS call',
    async (args, message) => {
      // Prepare
      const puts = cwModel.stats.putMetricDataCalls;
      const reads = localSecretsManager().sm.commandCalls(GetSecretValueCommand).length;
      // Act
      const r = await run('report', '--secret', 'orders-app', ...args);
      // Assess
      expect(r.code).toBe(2);
      expect(r.err).toMatch(message);
      expect(r.out).toBe('');
      expect(cwModel.stats.putMetricDataCalls).toBe(puts);
      expect(localSecretsManager().sm.commandCalls(GetSecretValueCommand)).toHaveLength(reads);
    },
  );

  it('a partial ARN with --generation is a usage error: the SecretName dimension must be the name', async () => {
    const partial = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:orders-app';
    const r = await run('report', '--secret', partial, '--consumer', 'api', '--generation', '3');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      new RegExp(
        `^error: option '--secret <secret>' argument '${partial}' is invalid\\. is an ARN: .*pass the secret's name, or its complete ARN \\(with the six-character suffix\\), or use --from-secret$`,
        'm',
      ),
    );
  });

  it('an unknown secret with --from-secret: exit 1, one line, nothing sent', async () => {
    const puts = cwModel.stats.putMetricDataCalls;
    const r = await run(
      'report',
      '--secret',
      'no-such-secret',
      '--consumer',
      'api',
      '--from-secret',
    );
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^converge: not found: .*no-such-secret/);
    expect(r.err.split('\n')).toHaveLength(1);
    expect(cwModel.stats.putMetricDataCalls).toBe(puts);
  });

  it('the real binary reports from a shell line through AWS_ENDPOINT_URL; with CloudWatch unreachable it names the service, region and endpoint', async () => {
    // Prepare: the models served over HTTP, as a cron job on another host would reach AWS
    const h = await setup('rptb', []);
    const endpoint = await startLocalEndpoint({ secretsManager: h.model, cloudWatch: cwModel });
    try {
      // Act
      const sent = await converge(
        endpoint.url,
        'report',
        '--secret',
        nameOf(h),
        '--consumer',
        'cron-export',
        '--from-secret',
      );
      const unreachable = await converge(
        'http://127.0.0.1:9',
        'report',
        '--secret',
        nameOf(h),
        '--consumer',
        'cron-export',
        '--generation',
        '0',
      );
      const usage = await converge(
        'http://127.0.0.1:9',
        'report',
        '--secret',
        nameOf(h),
        '--consumer',
        'cron export',
        '--generation',
        '0',
      );
      // Assess
      expect(sent).toMatchObject({ code: 0, stderr: '' });
      expect(sent.stdout).toMatch(
        new RegExp(
          `^reported LoadedGeneration 0 \\(from AWSCURRENT \\(version \\S+\\)\\) for consumer "cron-export" of secret "${nameOf(h)}"`,
        ),
      );
      expect(endpoint.answered).toEqual(['GetSecretValue', 'PutMetricData']);
      expect(cells(nameOf(h), 'cron-export').map((c) => c.min)).toEqual([0]);
      expect(unreachable.code).toBe(1);
      expect(unreachable.stderr).toMatch(
        /^converge: cannot reach CloudWatch \(region us-east-1, endpoint 127\.0\.0\.1:9, profile default chain\): /,
      );
      expect(usage.code).toBe(2);
      expect(usage.stderr).toMatch(
        /^error: option '--consumer <name>' argument 'cron export' is invalid\./,
      );
      expect(usage.stdout).toBe('');
    } finally {
      await endpoint.close();
    }
  });
});
