/**
 * The example app as a user runs it: `npx cdk synth` through cdk.json on this checkout, offline,
 * with no account and no AWS credentials, cdk-nag's AwsSolutions pack registered by bin/app.ts.
 * The one real esbuild bundle of the rotation function is checked here.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { ENV } from '../../lambda/rotation/config';
import { ConfigurationError } from '../../lambda/shared/errors';
import {
  ConvergeExampleStack,
  ConvergeRotation,
  DEFAULT_EXAMPLE_SETTINGS,
  exampleSettingsFromContext,
  PINNED_POSTGRES_VERSIONS,
  PROJECT_ROOT,
  ROTATION_ENTRY,
  type ExampleSettings,
} from '../../lib';
import { CDK_JSON_CONTEXT, fixture, logicalIdOf, newApp } from './fixtures';

const STACK = 'ConvergeExample';

/** A role ECS tasks assume: the example task role of `orders-api`. */
const ECS_TASK_ROLE = {
  AssumeRolePolicyDocument: Match.objectLike({
    Statement: Match.arrayWith([
      Match.objectLike({ Principal: { Service: 'ecs-tasks.amazonaws.com' } }),
    ]),
  }),
};

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
          // Nothing registered: no gate waits for a consumer the example does not deploy.
          [ENV.consumers]: '[]',
          AWS_ENDPOINT_URL_SECRETS_MANAGER: Match.anyValue(),
        }),
      },
    });
    template.resourcePropertiesCountIs('AWS::IAM::Role', ECS_TASK_ROLE, 0);
    template.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'ALL' });
  });

  // The database (GIVEN / WHEN for each: beforeAll, `cdk synth` with cdk.json's settings).
  test('the database stores on gp3', () => {
    template.hasResourceProperties('AWS::RDS::DBInstance', { StorageType: 'gp3' });
  });

  test('the database pins its CA to rds-ca-rsa2048-g1', () => {
    template.hasResourceProperties('AWS::RDS::DBInstance', {
      CACertificateIdentifier: 'rds-ca-rsa2048-g1',
    });
  });

  test('the database runs a pinned minor of the default major and does not upgrade it by itself', () => {
    const pinned = PINNED_POSTGRES_VERSIONS[DEFAULT_EXAMPLE_SETTINGS.postgresVersion];
    expect(pinned.postgresFullVersion).toMatch(/^17\.\d+$/);
    template.hasResourceProperties('AWS::RDS::DBInstance', {
      EngineVersion: pinned.postgresFullVersion,
      AutoMinorVersionUpgrade: false,
    });
  });

  test('the database refuses connections without TLS: rds.force_ssl=1 in its own parameter group', () => {
    template.hasResourceProperties('AWS::RDS::DBParameterGroup', {
      Family: 'postgres17',
      Parameters: { 'rds.force_ssl': '1' },
    });
    template.hasResourceProperties('AWS::RDS::DBInstance', {
      DBParameterGroupName: { Ref: logicalIdOf(template, 'AWS::RDS::DBParameterGroup') },
    });
  });

  test('the exported PostgreSQL log group keeps its logs for a month', () => {
    template.hasResourceProperties('AWS::RDS::DBInstance', {
      EnableCloudwatchLogsExports: ['postgresql'],
    });
    const database = logicalIdOf(template, 'AWS::RDS::DBInstance');
    template.hasResourceProperties('Custom::LogRetention', {
      LogGroupName: { 'Fn::Join': ['', ['/aws/rds/instance/', { Ref: database }, '/postgresql']] },
      RetentionInDays: 30,
    });
  });

  test('the bundled function is lambda/rotation/index.ts, the module the tests exercise', () => {
    // GIVEN
    // (the other function is aws-cdk-lib's LogRetention provider)
    const fn = Object.values(
      template.findResources('AWS::Lambda::Function', {
        Properties: {
          Environment: { Variables: Match.objectLike({ [ENV.consumers]: Match.anyValue() }) },
        },
      }),
    )[0] as {
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

/** The example stack's template with these settings (assets not bundled). */
function exampleTemplate(settings: Partial<ExampleSettings> = {}): Template {
  const stack = new ConvergeExampleStack(newApp(), STACK, {
    settings: { ...DEFAULT_EXAMPLE_SETTINGS, ...settings },
  });
  return Template.fromStack(stack);
}

describe('example settings', () => {
  test('with converge:exampleConsumers=true it registers the two example consumers and a task role for one', () => {
    // GIVEN
    const app = new App({
      context: {
        ...CDK_JSON_CONTEXT,
        'aws:cdk:bundling-stacks': [],
        'converge:exampleConsumers': 'true',
      },
    });
    const settings = exampleSettingsFromContext(app.node);

    // WHEN
    const template = Template.fromStack(new ConvergeExampleStack(app, STACK, { settings }));

    // THEN
    expect(settings.exampleConsumers).toBe(true);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          [ENV.consumers]: JSON.stringify([
            { name: 'orders-api', mode: 'live', maxStalenessSeconds: 300 },
            { name: 'nightly-report', mode: 'scheduled', maxStalenessSeconds: 90000 },
          ]),
        }),
      },
    });
    template.resourcePropertiesCountIs('AWS::IAM::Role', ECS_TASK_ROLE, 1);
  });

  test('consumers passed to the stack are registered, and only those', () => {
    // GIVEN
    const stack = new ConvergeExampleStack(newApp(), STACK, {
      consumers: [{ name: 'billing-worker', mode: 'restart-only' }],
    });

    // WHEN
    const template = Template.fromStack(stack);

    // THEN
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          [ENV.consumers]: JSON.stringify([
            { name: 'billing-worker', mode: 'restart-only', maxStalenessSeconds: 300 },
          ]),
        }),
      },
    });
  });

  test('the context flag defaults to off and accepts only true or false', () => {
    // GIVEN
    const withFlag = (value: unknown) =>
      exampleSettingsFromContext(
        new App({ context: value === undefined ? {} : { 'converge:exampleConsumers': value } })
          .node,
      );

    // WHEN / THEN
    expect(withFlag(undefined).exampleConsumers).toBe(false);
    expect(withFlag(false).exampleConsumers).toBe(false);
    expect(withFlag('true').exampleConsumers).toBe(true);
    expect(() => withFlag('yes')).toThrow(ConfigurationError);
  });

  test.each(Object.keys(PINNED_POSTGRES_VERSIONS))(
    'postgresVersion %s runs its pinned minor, with rds.force_ssl=1 in a parameter group of that family',
    (major) => {
      // GIVEN / WHEN
      const template = exampleTemplate({ postgresVersion: major });

      // THEN
      const version = PINNED_POSTGRES_VERSIONS[major].postgresFullVersion;
      expect(version).toMatch(new RegExp(`^${major}\\.\\d+$`));
      template.hasResourceProperties('AWS::RDS::DBInstance', {
        EngineVersion: version,
        DBParameterGroupName: { Ref: logicalIdOf(template, 'AWS::RDS::DBParameterGroup') },
      });
      template.hasResourceProperties('AWS::RDS::DBParameterGroup', {
        Family: `postgres${major}`,
        Parameters: { 'rds.force_ssl': '1' },
      });
    },
  );

  test('a full postgresVersion of a supported major runs as given', () => {
    // GIVEN / WHEN
    const template = exampleTemplate({ postgresVersion: '16.8' });

    // THEN
    template.hasResourceProperties('AWS::RDS::DBInstance', { EngineVersion: '16.8' });
    template.hasResourceProperties('AWS::RDS::DBParameterGroup', {
      Family: 'postgres16',
      Parameters: { 'rds.force_ssl': '1' },
    });
  });

  test.each(['13', '19', '17.x', '17.9.1', 'latest'])(
    'postgresVersion %s is refused at synth with what is accepted',
    (version) => {
      // GIVEN / WHEN / THEN
      expect(() => exampleTemplate({ postgresVersion: version })).toThrow(ConfigurationError);
      expect(() => exampleTemplate({ postgresVersion: version })).toThrow(
        /converge:postgresVersion must be a PostgreSQL major \(14, 15, 16, 17, 18\) or a full version/,
      );
    },
  );
});

describe('cdk-nag acknowledgments of the example', () => {
  /** Every AwsSolutions finding of the stack with no acknowledgment at all, as `path rule`. */
  function unacknowledgedFindings(settings: Partial<ExampleSettings>): string[] {
    const ack = jest
      .spyOn(Validations.prototype, 'acknowledge')
      .mockImplementation(() => undefined);
    try {
      const stack = new ConvergeExampleStack(newApp(), STACK, {
        settings: { ...DEFAULT_EXAMPLE_SETTINGS, ...settings },
      });
      return new AwsSolutionsChecks()
        .validateScope(stack)
        .violations.flatMap((v) =>
          v.violatingResources.map((r) => `${r.constructPath} ${v.ruleName}`),
        );
    } finally {
      ack.mockRestore();
    }
  }

  test.each([
    ['the default settings', {}],
    [
      'Multi-AZ, deletion protection and the example consumers',
      { multiAz: true, deletionProtection: true, exampleConsumers: true },
    ],
  ])('with %s, every acknowledgment answers a finding of its resource', (_, settings) => {
    // GIVEN
    const findings = unacknowledgedFindings(settings);
    const stack = new ConvergeExampleStack(newApp(), STACK, {
      settings: { ...DEFAULT_EXAMPLE_SETTINGS, ...settings },
    });

    // WHEN
    const acks = acknowledgments(stack).filter((a) => a.id.includes('AwsSolutions-'));

    // THEN
    expect(acks.length).toBeGreaterThan(0);
    const stale = acks.filter((a) => {
      const rule = a.id.replace(/^Annotation::/, '');
      return !findings.some((f) => f.startsWith(`${a.path}/`) && f.endsWith(` ${rule}`));
    });
    expect(stale).toEqual([]);
    expect(new AwsSolutionsChecks().validateScope(stack).violations).toEqual([]);
  });
});
