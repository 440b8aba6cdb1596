/**
 * `converge drill --keep`: the real binary leaves the stand-ins up and prints how to reach them;
 * real SDK clients (no model in this process) read the secret's status through the printed
 * endpoint; Ctrl-C (SIGINT) ends the drill cleanly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { RDSClient } from '@aws-sdk/client-rds';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { status, type StatusReport } from '../../cli/commands/status';

const repoRoot = resolve(__dirname, '../..');

describe('converge drill --keep', () => {
  let tempRoot: string;
  let child: ChildProcess;
  let stdout = '';
  let stderr = '';
  let exited: Promise<number | null>;

  beforeAll(() => {
    tempRoot = mkdtempSync(join(tmpdir(), 'converge-drill-keep-'));
    chmodSync(tempRoot, 0o755);
  });

  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(tempRoot, { recursive: true, force: true });
  });

  it('prints the endpoint and commands, serves the secret status to real SDK clients, and stops on SIGINT', async () => {
    // Prepare: the real binary, local models, one rotation, then --keep.
    const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tempRoot };
    delete env.AWS_ENDPOINT_URL;
    delete env.CONVERGE_PG_MAJOR;
    child = spawn(
      process.execPath,
      [
        join(repoRoot, 'cli/bin.js'),
        'drill',
        '--scenario',
        'healthy',
        '--consumers',
        '2',
        '--rotations',
        '1',
        '--refresh',
        '1',
        '--keep',
        '--json',
      ],
      {
        cwd: repoRoot,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    exited = new Promise((done) => child.on('close', (code) => done(code)));
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    const ready = new Promise<{ url: string; secret: string; ca: string }>((done, fail) => {
      child.stderr!.on('data', (c: Buffer) => {
        stderr += c.toString();
        const url =
          /export AWS_ENDPOINT_URL=(http:\/\/127\.0\.0\.1:\d+) AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local/.exec(
            stderr,
          );
        const cmd = /converge status (\S+) --sessions --ca-bundle (\S+)/.exec(stderr);
        if (url && cmd && /converge blast-radius /.test(stderr))
          done({ url: url[1], secret: cmd[1], ca: cmd[2] });
      });
      void exited.then((code) =>
        fail(new Error(`the drill exited (${code}) before printing the endpoint:\n${stderr}`)),
      );
    });
    const { url, secret, ca } = await ready;
    const config = {
      endpoint: url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    };

    // Act: converge status --sessions through the endpoint, as the printed instructions say.
    const report: StatusReport = await status(
      {
        sm: new SecretsManagerClient(config),
        cw: new CloudWatchClient(config),
        lambda: new LambdaClient(config),
        rds: new RDSClient(config),
      },
      secret,
      { sessions: true, caBundlePath: ca },
    );
    child.kill('SIGINT');
    const code = await exited;

    // Assess
    expect(stderr.indexOf('converge drill --scenario healthy')).toBeLessThan(stderr.indexOf('[')); // header before progress
    expect(report.registry.source).toBe('function');
    expect(report.consumers.map((c) => c.name)).toEqual(['drill-live-1', 'drill-live-2']);
    expect(report.consumers.every((c) => c.generation === 1)).toBe(true);
    expect(report.versions.find((v) => v.stages.includes('AWSCURRENT'))?.generation).toBe(1);
    expect(report.oldUser?.sessionsError).toBeUndefined();
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      scenario: 'healthy',
      summary: expect.objectContaining({ rotationsOk: 1, failedQueries: 0 }),
    });
  }, 150_000);
});
