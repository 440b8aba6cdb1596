import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import { TAG_ABORTED } from '../../lambda/rotation/aborted';
import { DEFAULT_EXCLUDE_CHARACTERS, ENV } from '../../lambda/rotation/config';
import {
  TAG_EMERGENCY,
  TAG_FORCE_FINISH,
  TAG_GENERATION_HIGH_WATER,
} from '../../lambda/rotation/overrides';
import { TAG_GATE, TAG_LAST_FAILURE, TAG_VERSION_PREFIX } from '../../lambda/rotation/records';
import {
  CONVERGENCE_PENDING,
  GATE_HOLD_ERRORS,
  GATE_WAIT_SECONDS,
  LOADED_GENERATION,
  PENDING_AGE_SECONDS,
  PENDING_GENERATION,
  ROTATION_STEP_FAILURES,
  ROTATIONS_COMPLETED,
} from '../../lambda/shared/metric-contract';
import { CaBundle, ConvergeRotation, RotationScheduleExpression, VPC_ENI_ACTIONS } from '../../lib';
import {
  ACCOUNT,
  allPolicyStatements,
  fixture,
  KEY_ARN,
  logicalIdOf,
  MASTER_ARN,
  MASTER_KEY_ARN,
  newAgnosticStack,
  REGION,
  SECRET_ARN,
  type Fixture,
  DESCRIBE_DATABASE_MEMBERS,
} from './fixtures';

/** Actions that may have a `*` resource: none of them supports resource-level permissions. */
const STAR_ALLOWED = new Set<string>([
  'secretsmanager:GetRandomPassword',
  'cloudwatch:GetMetricData',
  'cloudwatch:PutMetricData',
  ...VPC_ENI_ACTIONS,
  // Added by Lambda for active tracing; X-Ray has no resource-level permissions either.
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
]);

function asArray<T>(v: T | T[]): T[] {
  return Array.isArray(v) ? v : [v];
}

/** Asserts that `*` appears only with allowed actions, and PutMetricData only with its namespace condition. */
function expectOnlyAllowedStars(template: Template): void {
  for (const statement of allPolicyStatements(template)) {
    if (!asArray(statement.Resource).includes('*')) continue;
    for (const action of asArray(statement.Action as string | string[])) {
      expect({ action, allowed: STAR_ALLOWED.has(action) }).toEqual({ action, allowed: true });
    }
    if (asArray(statement.Action as string | string[]).includes('cloudwatch:PutMetricData')) {
      expect(statement.Condition).toEqual({
        StringEquals: { 'cloudwatch:namespace': expect.any(String) },
      });
    }
  }
}

describe('ConvergeRotation', () => {
  let f: Fixture;
  let stack: Stack;

  beforeEach(() => {
    f = fixture();
    stack = f.stack;
  });

  describe('rotation schedule', () => {
    test('defaults to every 30 days, rotating immediately, with our function', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', f.props);

      // THEN
      const template = Template.fromStack(stack);
      template.resourceCountIs('AWS::SecretsManager::RotationSchedule', 1);
      template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
        SecretId: SECRET_ARN,
        RotationLambdaARN: {
          'Fn::GetAtt': [logicalIdOf(template, 'AWS::Lambda::Function'), 'Arn'],
        },
        RotationRules: {
          ScheduleExpression: 'rate(30 days)',
          Duration: Match.absent(),
          AutomaticallyAfterDays: Match.absent(),
        },
        RotateImmediatelyOnUpdate: true,
      });
      // No SAR application: our function, nothing hosted.
      template.resourceCountIs('AWS::Serverless::Application', 0);
      expect(JSON.stringify(template.toJSON())).not.toContain('HostedRotationLambda');
    });

    test('automaticallyAfter in hours becomes a rate in hours, with the window', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', {
        ...f.props,
        automaticallyAfter: Duration.hours(12),
        rotationWindow: Duration.hours(4),
      });

      // THEN
      Template.fromStack(stack).hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
        RotationRules: { ScheduleExpression: 'rate(12 hours)', Duration: '4h' },
      });
    });

    test('automaticallyAfter in whole days becomes a rate in days', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', { ...f.props, automaticallyAfter: Duration.days(7) });

      // THEN
      Template.fromStack(stack).hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
        RotationRules: { ScheduleExpression: 'rate(7 days)' },
      });
    });

    test('a cron schedule with a window and rotateImmediatelyOnUpdate false', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', {
        ...f.props,
        schedule: RotationScheduleExpression.cron({ hour: '3', weekDay: 'SUN' }),
        rotationWindow: Duration.hours(2),
        rotateImmediatelyOnUpdate: false,
      });

      // THEN
      Template.fromStack(stack).hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
        RotationRules: { ScheduleExpression: 'cron(0 3 ? * SUN *)', Duration: '2h' },
        RotateImmediatelyOnUpdate: false,
      });
    });

    test('a literal expression passes through unchanged', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', {
        ...f.props,
        schedule: RotationScheduleExpression.expression('cron(0 4/12 * * ? *)'),
        rotationWindow: Duration.hours(3),
      });

      // THEN
      Template.fromStack(stack).hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
        RotationRules: { ScheduleExpression: 'cron(0 4/12 * * ? *)', Duration: '3h' },
      });
    });

    test('the schedule waits for the invoke permission and the role', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', f.props);

      // THEN
      const template = Template.fromStack(stack);
      const schedule = Object.values(
        template.findResources('AWS::SecretsManager::RotationSchedule'),
      )[0] as {
        DependsOn: string[];
      };
      expect(schedule.DependsOn).toEqual(
        expect.arrayContaining([
          logicalIdOf(template, 'AWS::Lambda::Permission', {
            Principal: 'secretsmanager.amazonaws.com',
          }),
          logicalIdOf(template, 'AWS::IAM::Role'),
          logicalIdOf(template, 'AWS::IAM::Policy', {
            Roles: [{ Ref: logicalIdOf(template, 'AWS::IAM::Role') }],
          }),
        ]),
      );
    });
  });

  describe('rotation function', () => {
    test('Node 24 on ARM64 in the VPC private subnets with its own security group', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', f.props);

      // THEN
      const template = Template.fromStack(stack);
      const privateSubnets = f.vpc.privateSubnets.map((s) => ({
        Ref: stack.getLogicalId(s.node.defaultChild as ec2.CfnSubnet),
      }));
      template.hasResourceProperties('AWS::Lambda::Function', {
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        Timeout: 720,
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogGroup: { Ref: logicalIdOf(template, 'AWS::Logs::LogGroup') } },
        VpcConfig: {
          SubnetIds: privateSubnets,
          SecurityGroupIds: [
            {
              'Fn::GetAtt': [
                logicalIdOf(template, 'AWS::EC2::SecurityGroup', {
                  GroupDescription: Match.stringLikeRegexp('converge rotation'),
                }),
                'GroupId',
              ],
            },
          ],
        },
      });
      template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 });
    });

    test('configuration reaches the function under the names config.ts reads', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', {
        ...f.props,
        consumers: [
          { name: 'orders-api', mode: 'live' },
          { name: 'nightly-report', mode: 'scheduled', maxStaleness: Duration.hours(25) },
        ],
        gate: {
          maxWait: Duration.minutes(5),
          pollInterval: Duration.seconds(15),
          lookback: Duration.minutes(20),
        },
        passwordLength: 40,
        metricNamespace: 'Acme/Rotation',
        caBundle: CaBundle.fromPath('/opt/rds-ca.pem'),
      });

      // THEN
      Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
        Timeout: 420,
        Environment: {
          Variables: {
            [ENV.consumers]: JSON.stringify([
              { name: 'orders-api', mode: 'live', maxStalenessSeconds: 300 },
              { name: 'nightly-report', mode: 'scheduled', maxStalenessSeconds: 90000 },
            ]),
            [ENV.metricNamespace]: 'Acme/Rotation',
            [ENV.gateMaxWaitSeconds]: '300',
            [ENV.gatePollSeconds]: '15',
            [ENV.gateLookbackSeconds]: '1200',
            [ENV.passwordLength]: '40',
            [ENV.excludeCharacters]: DEFAULT_EXCLUDE_CHARACTERS,
            [ENV.connectTimeoutMs]: '5000',
            [ENV.statementTimeoutMs]: '10000',
            [ENV.caBundle]: '/opt/rds-ca.pem',
            NODE_OPTIONS: '--enable-source-maps',
          },
        },
      });
    });

    test('without a CA override the function keeps its Lambda-runtime default', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', { ...f.props, caBundle: CaBundle.lambdaRuntime() });

      // THEN
      Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
        Environment: {
          Variables: Match.objectLike({ [ENV.caBundle]: Match.absent(), [ENV.consumers]: '[]' }),
        },
      });
    });

    test('the execution role has no AWS managed policy', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', f.props);

      // THEN
      Template.fromStack(stack).hasResourceProperties('AWS::IAM::Role', {
        AssumeRolePolicyDocument: {
          Statement: [
            {
              Action: 'sts:AssumeRole',
              Effect: 'Allow',
              Principal: { Service: 'lambda.amazonaws.com' },
            },
          ],
        },
        ManagedPolicyArns: Match.absent(),
      });
    });
  });

  describe('IAM', () => {
    test('every statement of the rotation role, scoped to the secrets and the database', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', f.props);

      // THEN
      const template = Template.fromStack(stack);
      const logGroup = logicalIdOf(template, 'AWS::Logs::LogGroup');
      template.resourceCountIs('AWS::IAM::Policy', 1);
      template.hasResourceProperties('AWS::IAM::Policy', {
        PolicyDocument: {
          Statement: [
            {
              Sid: 'WriteOwnLogGroup',
              Effect: 'Allow',
              Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
              Resource: { 'Fn::GetAtt': [logGroup, 'Arn'] },
            },
            {
              Sid: 'AttachToVpc',
              Effect: 'Allow',
              Action: [...VPC_ENI_ACTIONS].sort(),
              Resource: '*',
            },
            {
              Effect: 'Allow',
              Action: ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'],
              Resource: '*',
            },
            {
              Sid: 'RotateSecret',
              Effect: 'Allow',
              Action: [
                'secretsmanager:DescribeSecret',
                'secretsmanager:GetSecretValue',
                'secretsmanager:ListSecretVersionIds',
                'secretsmanager:PutSecretValue',
                'secretsmanager:UpdateSecretVersionStage',
              ],
              Resource: SECRET_ARN,
            },
            {
              Sid: 'TagSecretWithConvergeTags',
              Effect: 'Allow',
              Action: ['secretsmanager:TagResource', 'secretsmanager:UntagResource'],
              Resource: SECRET_ARN,
              Condition: {
                'ForAllValues:StringLike': {
                  'aws:TagKeys': [
                    TAG_GENERATION_HIGH_WATER,
                    TAG_EMERGENCY,
                    TAG_FORCE_FINISH,
                    TAG_GATE,
                    TAG_LAST_FAILURE,
                    `${TAG_VERSION_PREFIX}*`,
                  ],
                },
              },
            },
            {
              Sid: 'ReadMasterSecret',
              Effect: 'Allow',
              Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
              Resource: MASTER_ARN,
            },
            {
              Sid: 'GeneratePassword',
              Effect: 'Allow',
              Action: 'secretsmanager:GetRandomPassword',
              Resource: '*',
            },
            {
              Sid: 'ReadGateMetrics',
              Effect: 'Allow',
              Action: 'cloudwatch:GetMetricData',
              Resource: '*',
            },
            {
              Sid: 'DescribeDatabase',
              Effect: 'Allow',
              Action: 'rds:DescribeDBInstances',
              Resource: {
                'Fn::Join': [
                  '',
                  ['arn:', { Ref: 'AWS::Partition' }, `:rds:${REGION}:${ACCOUNT}:db:orders`],
                ],
              },
            },
            DESCRIBE_DATABASE_MEMBERS,
          ],
        },
      });
      expectOnlyAllowedStars(template);
    });

    test('customer keys are granted through Secrets Manager only, for the secret and the master secret', () => {
      // GIVEN
      const secret = secretsmanager.Secret.fromSecretAttributes(stack, 'KeyedSecret', {
        secretCompleteArn: SECRET_ARN.replace('app-user', 'keyed'),
        encryptionKey: kms.Key.fromKeyArn(stack, 'Key', KEY_ARN),
      });
      const masterSecret = secretsmanager.Secret.fromSecretAttributes(stack, 'KeyedMaster', {
        secretCompleteArn: MASTER_ARN.replace('master', 'keyed-master'),
        encryptionKey: kms.Key.fromKeyArn(stack, 'MasterKey', MASTER_KEY_ARN),
      });

      // WHEN
      new ConvergeRotation(stack, 'Rotation', { ...f.props, secret, masterSecret });

      // THEN
      const template = Template.fromStack(stack);
      const viaSecretsManager = {
        StringEquals: { 'kms:ViaService': `secretsmanager.${REGION}.amazonaws.com` },
      };
      template.hasResourceProperties('AWS::IAM::Policy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            {
              Sid: 'UseSecretKey',
              Effect: 'Allow',
              Action: ['kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKey'],
              Resource: KEY_ARN,
              Condition: viaSecretsManager,
            },
            {
              Sid: 'UseMasterSecretKey',
              Effect: 'Allow',
              Action: 'kms:Decrypt',
              Resource: MASTER_KEY_ARN,
              Condition: viaSecretsManager,
            },
          ]),
        },
      });
      expectOnlyAllowedStars(template);
    });

    test('a secret known by a partial ARN is matched with its six-character suffix', () => {
      // GIVEN
      const secret = secretsmanager.Secret.fromSecretNameV2(stack, 'ByName', 'orders/by-name');

      // WHEN
      new ConvergeRotation(stack, 'Rotation', { ...f.props, secret });

      // THEN
      Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Sid: 'RotateSecret',
              Resource: {
                'Fn::Join': [
                  '',
                  [
                    'arn:',
                    { Ref: 'AWS::Partition' },
                    `:secretsmanager:${REGION}:${ACCOUNT}:secret:orders/by-name-??????`,
                  ],
                ],
              },
            }),
          ]),
        },
      });
    });

    test('an Aurora cluster is described by its own ARN, its instances within the account and region', () => {
      // GIVEN
      const cluster = rds.DatabaseCluster.fromDatabaseClusterAttributes(stack, 'Cluster', {
        clusterIdentifier: 'orders-cluster',
        port: 5432,
        securityGroups: [f.databaseSecurityGroup],
      });

      // WHEN
      new ConvergeRotation(stack, 'Rotation', { ...f.props, database: cluster });

      // THEN
      Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            {
              Sid: 'DescribeDatabase',
              Effect: 'Allow',
              Action: 'rds:DescribeDBClusters',
              Resource: {
                'Fn::Join': [
                  '',
                  [
                    'arn:',
                    { Ref: 'AWS::Partition' },
                    `:rds:${REGION}:${ACCOUNT}:cluster:orders-cluster`,
                  ],
                ],
              },
            },
            DESCRIBE_DATABASE_MEMBERS,
          ]),
        },
      });
    });

    test('Secrets Manager may invoke the function only from this account', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', f.props);

      // THEN
      const template = Template.fromStack(stack);
      template.hasResourceProperties('AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunction',
        Principal: 'secretsmanager.amazonaws.com',
        SourceAccount: ACCOUNT,
        FunctionName: { 'Fn::GetAtt': [logicalIdOf(template, 'AWS::Lambda::Function'), 'Arn'] },
      });
      // Every invoke permission names a source: the account for Secrets Manager, the rule for EventBridge.
      for (const permission of Object.values(template.findResources('AWS::Lambda::Permission'))) {
        const p = (permission as { Properties: Record<string, unknown> }).Properties;
        expect(p.SourceAccount ?? p.SourceArn).toBeDefined();
      }
    });

    test('in an environment-agnostic stack the source account is the deploying account', () => {
      // GIVEN
      const agnostic = fixture(newAgnosticStack());

      // WHEN
      new ConvergeRotation(agnostic.stack, 'Rotation', agnostic.props);

      // THEN
      Template.fromStack(agnostic.stack).hasResourceProperties('AWS::Lambda::Permission', {
        Principal: 'secretsmanager.amazonaws.com',
        SourceAccount: { Ref: 'AWS::AccountId' },
      });
    });

    test('grantConsumer: read the secret and publish into the namespace, nothing more', () => {
      // GIVEN
      const keyed = secretsmanager.Secret.fromSecretAttributes(stack, 'KeyedSecret', {
        secretCompleteArn: SECRET_ARN,
        encryptionKey: kms.Key.fromKeyArn(stack, 'Key', KEY_ARN),
      });
      const rotation = new ConvergeRotation(stack, 'Rotation', {
        ...f.props,
        secret: keyed,
        metricNamespace: 'Acme/Rotation',
      });
      const consumerRole = new iam.Role(stack, 'ConsumerRole', {
        assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      });

      // WHEN
      rotation.grantConsumer(consumerRole);

      // THEN
      const template = Template.fromStack(stack);
      template.hasResourceProperties('AWS::IAM::Policy', {
        Roles: [{ Ref: stack.getLogicalId(consumerRole.node.defaultChild as iam.CfnRole) }],
        PolicyDocument: {
          Statement: [
            {
              Effect: 'Allow',
              Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
              Resource: SECRET_ARN,
            },
            {
              Effect: 'Allow',
              Action: 'kms:Decrypt',
              Resource: KEY_ARN,
              Condition: {
                StringEquals: { 'kms:ViaService': `secretsmanager.${REGION}.amazonaws.com` },
              },
            },
            {
              Effect: 'Allow',
              Action: 'cloudwatch:PutMetricData',
              Resource: '*',
              Condition: { StringEquals: { 'cloudwatch:namespace': 'Acme/Rotation' } },
            },
          ],
        },
      });
      expectOnlyAllowedStars(template);
    });
  });

  describe('operator access', () => {
    test('grantOperator: what the converge CLI needs on this secret and its function', () => {
      // GIVEN
      const rotation = new ConvergeRotation(stack, 'Rotation', f.props);
      const operator = new iam.Role(stack, 'Operator', {
        assumedBy: new iam.AccountRootPrincipal(),
      });

      // WHEN
      rotation.grantOperator(operator);

      // THEN
      const template = Template.fromStack(stack);
      template.hasResourceProperties('AWS::IAM::Policy', {
        Roles: [{ Ref: stack.getLogicalId(operator.node.defaultChild as iam.CfnRole) }],
        PolicyDocument: {
          Statement: [
            {
              Effect: 'Allow',
              Action: [
                'secretsmanager:DescribeSecret',
                'secretsmanager:RotateSecret',
                'secretsmanager:UpdateSecretVersionStage',
              ],
              Resource: SECRET_ARN,
            },
            {
              Effect: 'Allow',
              Action: ['secretsmanager:TagResource', 'secretsmanager:UntagResource'],
              Resource: SECRET_ARN,
              Condition: {
                'ForAllValues:StringEquals': {
                  'aws:TagKeys': [TAG_EMERGENCY, TAG_FORCE_FINISH, TAG_ABORTED],
                },
              },
            },
            {
              Effect: 'Allow',
              Action: ['lambda:GetFunctionConfiguration', 'lambda:InvokeFunction'],
              Resource: { 'Fn::GetAtt': [logicalIdOf(template, 'AWS::Lambda::Function'), 'Arn'] },
            },
            { Effect: 'Allow', Action: 'cloudwatch:GetMetricData', Resource: '*' },
          ],
        },
      });
      expectOnlyAllowedStars(template);
    });
  });

  describe('operator access without secret values (issue 12)', () => {
    /** The statements of the policies attached to `role`. */
    const statementsOf = (template: Template, role: iam.Role) => {
      const policies = template.findResources('AWS::IAM::Policy', {
        Properties: { Roles: [{ Ref: stack.getLogicalId(role.node.defaultChild as iam.CfnRole) }] },
      });
      return Object.values(policies).flatMap(
        (r) =>
          (r as { Properties: { PolicyDocument: { Statement: Array<Record<string, unknown>> } } })
            .Properties.PolicyDocument.Statement,
      );
    };
    /** One row per action and resource (CDK merges statements that differ in only one of them). */
    const rowsOf = (statements: Array<Record<string, unknown>>) =>
      statements.flatMap((st) =>
        asArray(st.Action as string | string[]).flatMap((action) =>
          asArray(st.Resource as unknown).map((resource) => ({
            action,
            resource,
            condition: st.Condition,
          })),
        ),
      );
    const keyedSecrets = () => ({
      secret: secretsmanager.Secret.fromSecretAttributes(stack, 'KeyedSecret', {
        secretCompleteArn: SECRET_ARN,
        encryptionKey: kms.Key.fromKeyArn(stack, 'Key', KEY_ARN),
      }),
      masterSecret: secretsmanager.Secret.fromSecretAttributes(stack, 'KeyedMaster', {
        secretCompleteArn: MASTER_ARN,
        encryptionKey: kms.Key.fromKeyArn(stack, 'MasterKey', MASTER_KEY_ARN),
      }),
    });

    test('grantOperator grants no GetSecretValue and no kms:Decrypt, even when customer keys encrypt the secrets', () => {
      // GIVEN
      const rotation = new ConvergeRotation(stack, 'Rotation', { ...f.props, ...keyedSecrets() });
      const operator = new iam.Role(stack, 'Operator', {
        assumedBy: new iam.AccountRootPrincipal(),
      });

      // WHEN
      rotation.grantOperator(operator);

      // THEN
      const actions = rowsOf(statementsOf(Template.fromStack(stack), operator)).map(
        (r) => r.action,
      );
      expect(actions).toContain('secretsmanager:DescribeSecret');
      expect(actions).not.toContain('secretsmanager:GetSecretValue');
      expect(actions).not.toContain('kms:Decrypt');
    });

    test('grantSessionsReader: exactly what status --sessions reads, scoped to the two secrets, their keys and the database', () => {
      // GIVEN
      const rotation = new ConvergeRotation(stack, 'Rotation', { ...f.props, ...keyedSecrets() });
      const reader = new iam.Role(stack, 'SessionsReader', {
        assumedBy: new iam.AccountRootPrincipal(),
      });

      // WHEN
      const grant = rotation.grantSessionsReader(reader);

      // THEN
      grant.assertSuccess();
      const template = Template.fromStack(stack);
      const rows = rowsOf(statementsOf(template, reader));
      const viaSecretsManager = {
        StringEquals: { 'kms:ViaService': `secretsmanager.${REGION}.amazonaws.com` },
      };
      const secretRows = rows.filter((r) => !r.action.startsWith('rds:'));
      expect(secretRows).toEqual(
        expect.arrayContaining([
          { action: 'secretsmanager:GetSecretValue', resource: SECRET_ARN, condition: undefined },
          { action: 'secretsmanager:DescribeSecret', resource: MASTER_ARN, condition: undefined },
          { action: 'secretsmanager:GetSecretValue', resource: MASTER_ARN, condition: undefined },
          { action: 'kms:Decrypt', resource: KEY_ARN, condition: viaSecretsManager },
          { action: 'kms:Decrypt', resource: MASTER_KEY_ARN, condition: viaSecretsManager },
        ]),
      );
      expect(secretRows).toHaveLength(5);
      // The database and its readers and replicas (the revocation guard's scope), describe only.
      const rdsRows = rows.filter((r) => r.action.startsWith('rds:'));
      expect(rdsRows.map((r) => r.action)).toEqual([
        'rds:DescribeDBInstances',
        'rds:DescribeDBInstances',
      ]);
      expect(rdsRows.map((r) => r.resource)).toContainEqual(DESCRIBE_DATABASE_MEMBERS.Resource);
      expectOnlyAllowedStars(template);
    });
  });

  describe('network', () => {
    test('the database admits its port from the rotation function and from nothing else', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', f.props);

      // THEN
      const template = Template.fromStack(stack);
      const databaseSg = stack.getLogicalId(
        f.databaseSecurityGroup.node.defaultChild as ec2.CfnSecurityGroup,
      );
      const functionSg = logicalIdOf(template, 'AWS::EC2::SecurityGroup', {
        GroupDescription: Match.stringLikeRegexp('converge rotation'),
      });
      const intoDatabase = template.findResources('AWS::EC2::SecurityGroupIngress', {
        Properties: { GroupId: { 'Fn::GetAtt': [databaseSg, 'GroupId'] } },
      });
      expect(
        Object.values(intoDatabase).map((r) => (r as { Properties: unknown }).Properties),
      ).toEqual([
        {
          Description: 'converge rotation function',
          GroupId: { 'Fn::GetAtt': [databaseSg, 'GroupId'] },
          IpProtocol: 'tcp',
          FromPort: 5432,
          ToPort: 5432,
          SourceSecurityGroupId: { 'Fn::GetAtt': [functionSg, 'GroupId'] },
        },
      ]);
      template.hasResourceProperties('AWS::EC2::SecurityGroup', {
        GroupDescription:
          'converge rotation function: the database port and HTTPS to AWS APIs only',
        SecurityGroupIngress: Match.absent(),
        SecurityGroupEgress: [
          {
            CidrIp: '0.0.0.0/0',
            IpProtocol: 'tcp',
            FromPort: 443,
            ToPort: 443,
            Description: Match.anyValue(),
          },
        ],
      });
      template.hasResourceProperties('AWS::EC2::SecurityGroupEgress', {
        GroupId: { 'Fn::GetAtt': [functionSg, 'GroupId'] },
        DestinationSecurityGroupId: { 'Fn::GetAtt': [databaseSg, 'GroupId'] },
        FromPort: 5432,
        ToPort: 5432,
      });
    });

    test('databasePort overrides the database default', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', { ...f.props, databasePort: 6432 });

      // THEN
      Template.fromStack(stack).hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
        FromPort: 6432,
        ToPort: 6432,
      });
    });

    test('optional Secrets Manager endpoint: private to the function, its URL passed in', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', { ...f.props, secretsManagerEndpoint: true });

      // THEN
      const template = Template.fromStack(stack);
      const endpoint = logicalIdOf(template, 'AWS::EC2::VPCEndpoint');
      template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
        ServiceName: `com.amazonaws.${REGION}.secretsmanager`,
        VpcEndpointType: 'Interface',
        PrivateDnsEnabled: false,
      });
      const functionSg = logicalIdOf(template, 'AWS::EC2::SecurityGroup', {
        GroupDescription: Match.stringLikeRegexp('converge rotation'),
      });
      const endpointSg = logicalIdOf(template, 'AWS::EC2::SecurityGroup', {
        GroupDescription: Match.stringLikeRegexp('SecretsManagerEndpoint'),
      });
      template.hasResourceProperties('AWS::EC2::SecurityGroup', {
        GroupDescription: Match.stringLikeRegexp('SecretsManagerEndpoint'),
        SecurityGroupIngress: Match.absent(),
      });
      template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
        GroupId: { 'Fn::GetAtt': [endpointSg, 'GroupId'] },
        SourceSecurityGroupId: { 'Fn::GetAtt': [functionSg, 'GroupId'] },
        FromPort: 443,
        ToPort: 443,
      });
      template.hasResourceProperties('AWS::Lambda::Function', {
        Environment: {
          Variables: Match.objectLike({
            AWS_ENDPOINT_URL_SECRETS_MANAGER: {
              'Fn::Join': [
                '',
                [
                  'https://',
                  {
                    'Fn::Select': [
                      1,
                      {
                        'Fn::Split': [
                          ':',
                          { 'Fn::Select': [0, { 'Fn::GetAtt': [endpoint, 'DnsEntries'] }] },
                        ],
                      },
                    ],
                  },
                ],
              ],
            },
          }),
        },
      });
    });

    test('without the endpoint option there is none and no endpoint URL', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', f.props);

      // THEN
      const template = Template.fromStack(stack);
      template.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
      template.hasResourceProperties('AWS::Lambda::Function', {
        Environment: {
          Variables: Match.objectLike({ AWS_ENDPOINT_URL_SECRETS_MANAGER: Match.absent() }),
        },
      });
    });
  });

  describe('gate alarm, re-drive and operator alarms', () => {
    const consumers = [
      { name: 'orders-api', mode: 'live' as const },
      { name: 'billing-worker', mode: 'live' as const },
      { name: 'nightly-report', mode: 'scheduled' as const, maxStaleness: Duration.hours(25) },
    ];
    const secretDimension = { Name: 'SecretName', Value: 'orders/app-user' };

    test('ConvergenceLag: pending generation minus the lowest live consumer, missing data not breaching', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', { ...f.props, consumers });

      // THEN
      Template.fromStack(stack).hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmDescription: Match.stringLikeRegexp('waits at the promotion gate'),
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 0,
        EvaluationPeriods: 1,
        DatapointsToAlarm: 1,
        TreatMissingData: 'notBreaching',
        AlarmActions: Match.absent(),
        Metrics: [
          {
            Id: 'expr_1',
            Expression: 'FILL(pending, 0) - MIN(FILL([c0, c1], 0))',
            Label: Match.anyValue(),
            ReturnData: true,
          },
          {
            Id: 'pending',
            ReturnData: false,
            MetricStat: {
              Metric: {
                Namespace: 'SecretRotation',
                MetricName: PENDING_GENERATION,
                Dimensions: [secretDimension],
              },
              Period: 60,
              Stat: 'Maximum',
            },
          },
          {
            Id: 'c0',
            Label: 'orders-api',
            ReturnData: false,
            MetricStat: {
              Metric: {
                Namespace: 'SecretRotation',
                MetricName: LOADED_GENERATION,
                Dimensions: [{ Name: 'Consumer', Value: 'orders-api' }, secretDimension],
              },
              Period: 60,
              Stat: 'Minimum',
            },
          },
          {
            Id: 'c1',
            Label: 'billing-worker',
            ReturnData: false,
            MetricStat: {
              Metric: {
                Namespace: 'SecretRotation',
                MetricName: LOADED_GENERATION,
                Dimensions: [{ Name: 'Consumer', Value: 'billing-worker' }, secretDimension],
              },
              Period: 60,
              Stat: 'Minimum',
            },
          },
        ],
      });
    });

    test('alarms read the namespace the function and the consumers write to', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', {
        ...f.props,
        consumers,
        metricNamespace: 'Acme/Rotation',
      });

      // THEN
      const template = Template.fromStack(stack);
      template.hasResourceProperties('AWS::Lambda::Function', {
        Environment: { Variables: Match.objectLike({ [ENV.metricNamespace]: 'Acme/Rotation' }) },
      });
      const alarms = JSON.stringify(template.findResources('AWS::CloudWatch::Alarm'));
      expect(alarms).toContain('"Namespace":"Acme/Rotation"');
      expect(alarms).not.toContain('"Namespace":"SecretRotation"');
    });

    test('with one live consumer the expression subtracts its (filled) series directly', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', {
        ...f.props,
        consumers: [{ name: 'orders-api', mode: 'live' }],
      });

      // THEN
      Template.fromStack(stack).hasResourceProperties('AWS::CloudWatch::Alarm', {
        Metrics: Match.arrayWith([
          Match.objectLike({ Expression: 'FILL(pending, 0) - FILL(c0, 0)' }),
        ]),
      });
    });

    test('the EventBridge rule re-drives finishSecret when the gate alarm goes from ALARM to OK', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', { ...f.props, consumers });

      // THEN
      const template = Template.fromStack(stack);
      const lagAlarm = logicalIdOf(template, 'AWS::CloudWatch::Alarm', {
        AlarmDescription: Match.stringLikeRegexp('waits at the promotion gate'),
      });
      const fn = logicalIdOf(template, 'AWS::Lambda::Function');
      template.hasResourceProperties('AWS::Events::Rule', {
        State: 'ENABLED',
        EventPattern: {
          source: ['aws.cloudwatch'],
          'detail-type': ['CloudWatch Alarm State Change'],
          resources: [{ 'Fn::GetAtt': [lagAlarm, 'Arn'] }],
          detail: { state: { value: ['OK'] }, previousState: { value: ['ALARM'] } },
        },
        Targets: [
          {
            Id: Match.anyValue(),
            Arn: { 'Fn::GetAtt': [fn, 'Arn'] },
            Input: JSON.stringify({ converge: 'redrive', SecretId: SECRET_ARN }),
          },
        ],
      });
      template.hasResourceProperties('AWS::Lambda::Permission', {
        Principal: 'events.amazonaws.com',
        FunctionName: { 'Fn::GetAtt': [fn, 'Arn'] },
        SourceArn: {
          'Fn::GetAtt': [
            logicalIdOf(template, 'AWS::Events::Rule', {
              EventPattern: Match.objectLike({ source: ['aws.cloudwatch'] }),
            }),
            'Arn',
          ],
        },
      });
    });

    test('RotationStuck reads the pending age the scheduled check publishes; silence notifies too', () => {
      // GIVEN
      const topic = new sns.Topic(stack, 'Operators');

      // WHEN
      new ConvergeRotation(stack, 'Rotation', {
        ...f.props,
        consumers,
        gate: { stuckAfter: Duration.minutes(90) },
        alarmActions: [new cloudwatchActions.SnsAction(topic)],
      });

      // THEN
      const template = Template.fromStack(stack);
      const topicRef = { Ref: stack.getLogicalId(topic.node.defaultChild as sns.CfnTopic) };
      const fn = logicalIdOf(template, 'AWS::Lambda::Function');
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmDescription: Match.stringLikeRegexp(
          'has been pending for more than 1 hour 30 minutes.*converge abort.*finish .*--force',
        ),
        Namespace: 'SecretRotation',
        MetricName: PENDING_AGE_SECONDS,
        Dimensions: [secretDimension],
        Statistic: 'Maximum',
        Period: 300,
        EvaluationPeriods: 2,
        DatapointsToAlarm: 1,
        Threshold: 5400,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'missing',
        AlarmActions: [topicRef],
        InsufficientDataActions: [topicRef],
      });
      template.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: 'rate(5 minutes)',
        State: 'ENABLED',
        Targets: [
          {
            Id: Match.anyValue(),
            Arn: { 'Fn::GetAtt': [fn, 'Arn'] },
            Input: JSON.stringify({ converge: 'check', SecretId: SECRET_ARN }),
          },
        ],
      });
    });

    test('RotationFailed: the max of step failures, invocation errors, throttles and Secrets Manager failure events, each FILLed with 0', () => {
      // GIVEN
      const topic = new sns.Topic(stack, 'Operators');

      // WHEN
      new ConvergeRotation(stack, 'Rotation', {
        ...f.props,
        consumers,
        alarmActions: [new cloudwatchActions.SnsAction(topic)],
      });

      // THEN
      const template = Template.fromStack(stack);
      const topicRef = { Ref: stack.getLogicalId(topic.node.defaultChild as sns.CfnTopic) };
      const fn = logicalIdOf(template, 'AWS::Lambda::Function');
      const eventsRule = logicalIdOf(template, 'AWS::Events::Rule', {
        EventPattern: Match.objectLike({ source: ['aws.secretsmanager'] }),
      });
      template.hasResourceProperties('AWS::Events::Rule', {
        EventPattern: {
          source: ['aws.secretsmanager'],
          'detail-type': ['AWS Service Event via CloudTrail'],
          detail: {
            eventSource: ['secretsmanager.amazonaws.com'],
            eventName: ['RotationFailed', 'RotationAbandoned'],
            additionalEventData: { SecretId: [SECRET_ARN] },
          },
        },
        Targets: [
          Match.objectLike({
            Arn: { 'Fn::GetAtt': [fn, 'Arn'] },
            Input: JSON.stringify({ converge: 'check', SecretId: SECRET_ARN }),
          }),
        ],
      });
      const stat = (namespace: string, metricName: string, dimensions: unknown[]) =>
        Match.objectLike({
          ReturnData: false,
          MetricStat: {
            Metric: { Namespace: namespace, MetricName: metricName, Dimensions: dimensions },
            Period: 300,
            Stat: 'Sum',
          },
        });
      const expression = (id: string, text: string) =>
        Match.objectLike({ Id: id, Expression: text, ReturnData: false });
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmDescription: Match.stringLikeRegexp(
          'failed: a step failed for a reason other than the promotion gate waiting, the function could not run',
        ),
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 0,
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
        AlarmActions: [topicRef],
        Metrics: Match.arrayWith([
          Match.objectLike({
            Expression: 'MAX([stepFailures, invocationErrors, throttles, serviceEvents])',
            ReturnData: true,
          }),
          expression('stepFailures', 'FILL(failures, 0) - FILL(held, 0)'),
          stat('SecretRotation', ROTATION_STEP_FAILURES, [secretDimension]),
          stat('SecretRotation', CONVERGENCE_PENDING, [secretDimension]),
          expression('invocationErrors', 'FILL(errors, 0) - FILL(holdErrors, 0)'),
          stat('AWS/Lambda', 'Errors', [{ Name: 'FunctionName', Value: { Ref: fn } }]),
          stat('SecretRotation', GATE_HOLD_ERRORS, [secretDimension]),
          expression('throttles', 'FILL(throttled, 0)'),
          stat('AWS/Lambda', 'Throttles', [{ Name: 'FunctionName', Value: { Ref: fn } }]),
          expression('serviceEvents', 'FILL(matched, 0)'),
          stat('AWS/Events', 'TriggeredRules', [{ Name: 'RuleName', Value: { Ref: eventsRule } }]),
        ]),
      });
    });

    test('without live consumers there is no gate alarm and no re-drive, but stuck and failed rotations still alarm', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', {
        ...f.props,
        consumers: [{ name: 'nightly-report', mode: 'scheduled' }],
      });

      // THEN
      const template = Template.fromStack(stack);
      template.resourceCountIs('AWS::CloudWatch::Alarm', 2);
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmDescription: Match.stringLikeRegexp('failed: a step failed'),
      });
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: PENDING_AGE_SECONDS,
      });
      const rules = JSON.stringify(template.findResources('AWS::Events::Rule'));
      expect(rules).not.toContain('CloudWatch Alarm State Change');
      template.resourceCountIs('AWS::Events::Rule', 2);
    });

    test("metric*() helpers name the metrics the function writes, under the secret's name", () => {
      // GIVEN
      const rotation = new ConvergeRotation(stack, 'Rotation', { ...f.props, consumers });

      // WHEN
      const metrics = [
        [rotation.metricPendingAge(), PENDING_AGE_SECONDS, 'Maximum'],
        [rotation.metricRotationsCompleted(), ROTATIONS_COMPLETED, 'Sum'],
        [rotation.metricStepFailures(), ROTATION_STEP_FAILURES, 'Sum'],
        [rotation.metricGateHolds({ period: Duration.hours(1) }), CONVERGENCE_PENDING, 'Sum'],
      ] as const;

      // THEN
      for (const [metric, name, statistic] of metrics) {
        expect(metric.namespace).toBe('SecretRotation');
        expect(metric.metricName).toBe(name);
        expect(metric.statistic).toBe(statistic);
        expect(stack.resolve(metric.dimensions)).toEqual({ SecretName: 'orders/app-user' });
      }
      expect(metrics[3][0].period.toMinutes()).toBe(60);
      expect(rotation.metricFailures().expression).toBe(
        'MAX([stepFailures, invocationErrors, throttles, serviceEvents])',
      );
    });

    test('the dashboard shows consumers by generation, rotation outcomes and gate waits', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', {
        ...f.props,
        consumers,
        dashboardName: 'orders-rotation',
      });

      // THEN
      const template = Template.fromStack(stack);
      template.hasResourceProperties('AWS::CloudWatch::Dashboard', {
        DashboardName: 'orders-rotation',
      });
      const body = JSON.stringify(
        Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0],
      );
      for (const expected of [
        'Consumers by generation',
        'Rotation outcomes',
        'Gate waits',
        '1 scheduled',
        '2 live',
        ROTATIONS_COMPLETED,
        ROTATION_STEP_FAILURES,
        GATE_WAIT_SECONDS,
        CONVERGENCE_PENDING,
        PENDING_GENERATION,
      ]) {
        expect(body).toContain(expected);
      }
      for (const consumer of consumers) {
        expect(body).toMatch(
          new RegExp(`${LOADED_GENERATION}\\\\",\\\\"Consumer\\\\",\\\\"${consumer.name}`),
        );
      }
    });
  });
});
