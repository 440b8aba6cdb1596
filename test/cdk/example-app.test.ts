/**
 * The example app as a user runs it: `npx cdk synth` through cdk.json on this checkout, offline,
 * with no account and no AWS credentials, cdk-nag's AwsSolutions pack registered by bin/app.ts.
 * The one real esbuild bundle of the rotation function is checked here.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { ENV } from '../../lambda/rotation/config';
import {
  ConvergeExampleStack,
  ConvergeRotation,
  DEFAULT_EXAMPLE_SETTINGS,
  PROJECT_ROOT,
  ROTATION_ENTRY,
} from '../../lib';
import { fixture, newApp } from './fixtures';

const STACK = 'ConvergeExample';

/** The environment of a fresh shell without AWS credentials: nothing can be looked up. */
function offlineEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith('AWS_') || name.startsWith('CDK_') || name === 'CONVERGE_TEST_PG')
      delete env[name];
  }
  return {
    ...env,
    AWS_EC2_METADATA_DISABLED: 'true',
    CDK_DISABLE_CLI_TELEMETRY: 'true',
    CI: 'true',
  };
}

/** Every acknowledgment (`Validations.of(x).acknowledge`) in a construct tree, with where it sits. */
function acknowledgments(
  root: IConstruct,
): Array<{ path: string; id: string; reason: string; onStack: boolean }> {
  return root.node.findAll().flatMap((c) =>
    c.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) =>
        Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({
          path: c.node.path,
          id,
          reason,
          onStack: Stack.isStack(c),
        })),
      ),
  );
}

describe('example app (bin/app.ts)', () => {
  let outdir: string;
  let synth: SpawnSyncReturns<string>;
  let template: Template;

  beforeAll(() => {
    outdir = mkdtempSync(join(tmpdir(), 'converge-cdk-'));
    synth = spawnSync(
      'npx',
      ['cdk', 'synth', '--quiet', '--no-notices', '--no-lookups', '--output', outdir],
      {
        cwd: PROJECT_ROOT,
        env: offlineEnv(),
        encoding: 'utf8',
        timeout: 240_000,
      },
    );
    const file = join(outdir, `${STACK}.template.json`);
    if (existsSync(file)) template = Template.fromJSON(JSON.parse(readFileSync(file, 'utf8')));
  }, 250_000);

  afterAll(() => {
    rmSync(outdir, { recursive: true, force: true });
  });

  test('`npx cdk synth` succeeds offline, without an account', () => {
    // GIVEN / WHEN: beforeAll

    // THEN
    expect({ status: synth.status, stderr: synth.status === 0 ? '' : synth.stderr }).toEqual({
      status: 0,
      stderr: '',
    });
    const manifest = JSON.parse(readFileSync(join(outdir, 'manifest.json'), 'utf8'));
    expect(manifest.artifacts[STACK].environment).toBe('aws://unknown-account/unknown-region');
  });

  test('cdk-nag reports no unsuppressed finding in the synthesized app', () => {
    // GIVEN / WHEN: beforeAll

    // THEN: bin/app.ts registers AwsSolutionsChecks; a violation would fail synth and be listed here.
    const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8'));
    expect(report.pluginReports).toEqual([]);
    expect(synth.stderr).not.toMatch(/AwsSolutions-/);
  });

  test('the example wires VPC, PostgreSQL, the generated master secret and the rotated user secret', () => {
    // GIVEN / WHEN: beforeAll

    // THEN
    template.hasResourceProperties('AWS::RDS::DBInstance', {
      Engine: 'postgres',
      StorageEncrypted: true,
      PubliclyAccessible: false,
    });
    template.resourceCountIs('AWS::SecretsManager::Secret', 2);
    const appUser = JSON.stringify(
      template.findResources('AWS::SecretsManager::Secret', {
        Properties: { Name: `${STACK}/app-user` },
      }),
    );
    for (const field of [
      '\\"username\\":\\"app_user\\"',
      '\\"dbname\\":\\"app\\"',
      '\\"masterarn\\":',
    ]) {
      expect(appUser).toContain(field);
    }
    template.resourceCountIs('AWS::SecretsManager::RotationSchedule', 1);
    template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
      RotationRules: { ScheduleExpression: DEFAULT_EXAMPLE_SETTINGS.schedule, Duration: '2h' },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          [ENV.consumers]: JSON.stringify([
            { name: 'orders-api', mode: 'live', maxStalenessSeconds: 300 },
            { name: 'nightly-report', mode: 'scheduled', maxStalenessSeconds: 90000 },
          ]),
          AWS_ENDPOINT_URL_SECRETS_MANAGER: Match.anyValue(),
        }),
      },
    });
    template.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'ALL' });
  });

  test('the bundled function is lambda/rotation/index.ts, the module the tests exercise', () => {
    // GIVEN
    const fn = Object.values(template.findResources('AWS::Lambda::Function'))[0] as {
      Properties: { Handler: string; Code: { S3Key: string } };
    };
    const assets = JSON.parse(readFileSync(join(outdir, `${STACK}.assets.json`), 'utf8'));
    const asset = assets.files[fn.Properties.Code.S3Key.replace(/\.zip$/, '')];
    const bundleDir = join(outdir, asset.source.path);

    // WHEN
    const bundled = require(join(bundleDir, 'index.js'));
    const sourceMap = JSON.parse(readFileSync(join(bundleDir, 'index.js.map'), 'utf8')) as {
      sources: string[];
    };
    const tested = require('../../lambda/rotation');

    // THEN
    expect(ROTATION_ENTRY).toBe(join(PROJECT_ROOT, 'lambda', 'rotation', 'index.ts'));
    expect(fn.Properties.Handler).toBe('index.handler');
    expect(typeof bundled.handler).toBe('function');
    expect(Object.keys(bundled).sort()).toEqual(Object.keys(tested).sort());
    const sources = sourceMap.sources.map((s) => resolve(bundleDir, s));
    expect(sources).toEqual(
      expect.arrayContaining([
        ROTATION_ENTRY,
        join(PROJECT_ROOT, 'lambda', 'rotation', 'handler.ts'),
      ]),
    );
  });
});

describe('cdk-nag on the example stack', () => {
  test('AwsSolutions finds nothing unacknowledged', () => {
    // GIVEN
    const stack = new ConvergeExampleStack(newApp(), STACK);

    // WHEN
    const report = new AwsSolutionsChecks().validateScope(stack);

    // THEN
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
    expect(report.success).toBe(true);
  });

  test('the check is live: without acknowledgments the construct has findings', () => {
    // GIVEN
    const f = fixture();
    new ConvergeRotation(f.stack, 'Rotation', f.props);

    // WHEN
    const report = new AwsSolutionsChecks().validateScope(f.stack);

    // THEN
    expect(report.violations.map((v) => v.ruleName)).toContain('AwsSolutions-IAM5[Resource::*]');
  });

  test('every acknowledgment sits on its resource, not the stack, and says why', () => {
    // GIVEN
    const stack = new ConvergeExampleStack(newApp(), STACK);

    // WHEN
    // (aws-cdk-lib acknowledges one CloudFormation-Validate rule on every stack itself.)
    const acks = acknowledgments(stack).filter(
      (a) => !a.id.startsWith('CloudFormation-Validate::'),
    );

    // THEN
    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks) {
      expect({ ...ack, reasonLength: ack.reason.length >= 40 }).toEqual({
        ...ack,
        onStack: false,
        reasonLength: true,
      });
    }
  });
});
