/**
 * What ConvergeRotation refuses at synth (a KMS alias as a key, the master secret as the rotated
 * one, one secret rotated twice), what the rotation schedule waits for (every network path of the
 * function), and its API conventions (grants returned, `securityGroups`, the invoke permission's
 * source).
 */
import { CfnParameter, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ConvergeRotation } from '../../lib';
import {
  ACCOUNT,
  fixture,
  logicalIdOf,
  MASTER_ARN,
  newApp,
  REGION,
  SECRET_ARN,
  type Fixture,
} from './fixtures';

/** The DependsOn of the only rotation schedule. */
function scheduleDependsOn(template: Template): string[] {
  const schedules = Object.values(template.findResources('AWS::SecretsManager::RotationSchedule'));
  expect(schedules).toHaveLength(1);
  return (schedules[0] as { DependsOn?: string[] }).DependsOn ?? [];
}

/** Logical IDs of every security group and every separate security group rule in the template. */
function networkResources(template: Template): string[] {
  return [
    'AWS::EC2::SecurityGroup',
    'AWS::EC2::SecurityGroupIngress',
    'AWS::EC2::SecurityGroupEgress',
  ].flatMap((type) => Object.keys(template.findResources(type)));
}

describe('ConvergeRotation: refusals, schedule dependencies, API conventions', () => {
  let f: Fixture;
  let stack: Stack;

  beforeEach(() => {
    f = fixture();
    stack = f.stack;
  });

  describe('KMS aliases as encryption keys', () => {
    test('an alias on the rotated secret fails synth, naming the alias', () => {
      // GIVEN
      const secret = secretsmanager.Secret.fromSecretAttributes(stack, 'Aliased', {
        secretCompleteArn: SECRET_ARN,
        encryptionKey: kms.Alias.fromAliasName(stack, 'Alias', 'alias/orders-secrets'),
      });

      // WHEN / THEN
      expect(() => new ConvergeRotation(stack, 'Rotation', { ...f.props, secret })).toThrow(
        /secret\.encryptionKey must be a KMS key, not an alias, got alias\/orders-secrets: IAM statements on an alias apply to the alias, not to the key behind it.*kms\.Key\.fromKeyArn/,
      );
    });

    test('a master secret key imported by an alias ARN fails synth, naming the ARN', () => {
      // GIVEN
      const aliasArn = `arn:aws:kms:${REGION}:${ACCOUNT}:alias/orders-master`;
      const masterSecret = secretsmanager.Secret.fromSecretAttributes(stack, 'AliasedMaster', {
        secretCompleteArn: MASTER_ARN,
        encryptionKey: kms.Key.fromKeyArn(stack, 'MasterAlias', aliasArn),
      });

      // WHEN / THEN
      expect(() => new ConvergeRotation(stack, 'Rotation', { ...f.props, masterSecret })).toThrow(
        new RegExp(
          `masterSecret\\.encryptionKey must be a KMS key, not an alias, got ${aliasArn.replace(/\//g, '\\/')}`,
        ),
      );
    });

    test('an alias the stack creates fails synth too; the key behind it is accepted', () => {
      // GIVEN
      const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
      const alias = new kms.Alias(stack, 'KeyAlias', { aliasName: 'alias/orders', targetKey: key });
      const withAlias = secretsmanager.Secret.fromSecretAttributes(stack, 'WithAlias', {
        secretCompleteArn: SECRET_ARN,
        encryptionKey: alias,
      });
      const withKey = secretsmanager.Secret.fromSecretAttributes(stack, 'WithKey', {
        secretCompleteArn: SECRET_ARN,
        encryptionKey: key,
      });

      // WHEN / THEN
      expect(
        () => new ConvergeRotation(stack, 'AliasRotation', { ...f.props, secret: withAlias }),
      ).toThrow(/secret\.encryptionKey must be a KMS key, not an alias, got alias\/orders/);
      new ConvergeRotation(stack, 'KeyRotation', { ...f.props, secret: withKey });
      Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Sid: 'UseSecretKey',
              Resource: {
                'Fn::GetAtt': [logicalIdOf(Template.fromStack(stack), 'AWS::KMS::Key'), 'Arn'],
              },
            }),
          ]),
        },
      });
    });
  });

  describe('the rotation schedule waits for every network path', () => {
    test('the database ingress, the function egress rules, the endpoint and its ingress', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', { ...f.props, secretsManagerEndpoint: true });

      // THEN
      const template = Template.fromStack(stack);
      const functionSg = logicalIdOf(template, 'AWS::EC2::SecurityGroup', {
        GroupDescription: Match.stringLikeRegexp('converge rotation'),
      });
      const endpointSg = logicalIdOf(template, 'AWS::EC2::SecurityGroup', {
        GroupDescription: Match.stringLikeRegexp('SecretsManagerEndpoint'),
      });
      const fromOrTo = (sg: string) => ({ 'Fn::GetAtt': [sg, 'GroupId'] });
      // The rules that make the paths, found by what they connect.
      const egress = Object.keys(
        template.findResources('AWS::EC2::SecurityGroupEgress', {
          Properties: { GroupId: fromOrTo(functionSg) },
        }),
      );
      const ingress = Object.keys(
        template.findResources('AWS::EC2::SecurityGroupIngress', {
          Properties: { SourceSecurityGroupId: fromOrTo(functionSg) },
        }),
      );
      expect(egress).toHaveLength(2); // to the database and to the endpoint
      expect(ingress).toHaveLength(2); // into the database and into the endpoint
      const dependsOn = scheduleDependsOn(template);
      expect(dependsOn).toEqual(
        expect.arrayContaining([
          ...egress,
          ...ingress,
          functionSg, // its inline HTTPS egress
          endpointSg,
          logicalIdOf(template, 'AWS::EC2::VPCEndpoint'),
          stack.getLogicalId(f.databaseSecurityGroup.node.defaultChild as ec2.CfnSecurityGroup),
        ]),
      );
      // Nothing network-related is left out.
      expect(dependsOn).toEqual(expect.arrayContaining(networkResources(template)));
    });

    test('with given security groups, their rules', () => {
      // GIVEN
      const given = new ec2.SecurityGroup(stack, 'Given', { vpc: f.vpc, allowAllOutbound: false });

      // WHEN
      new ConvergeRotation(stack, 'Rotation', {
        ...f.props,
        securityGroups: [given],
        secretsManagerEndpoint: true,
      });

      // THEN
      const template = Template.fromStack(stack);
      const rules = networkResources(template);
      expect(rules.length).toBeGreaterThanOrEqual(7); // 3 groups, 2 egress, 2 ingress
      expect(scheduleDependsOn(template)).toEqual(expect.arrayContaining(rules));
    });
  });

  describe('securityGroups', () => {
    test('the function uses exactly the given groups, the database admits them, no group is created', () => {
      // GIVEN
      const given = new ec2.SecurityGroup(stack, 'Given', { vpc: f.vpc, allowAllOutbound: false });
      const imported = ec2.SecurityGroup.fromSecurityGroupId(
        stack,
        'Imported',
        'sg-0123456789abcdef0',
      );

      // WHEN
      const rotation = new ConvergeRotation(stack, 'Rotation', {
        ...f.props,
        securityGroups: [given, imported],
      });

      // THEN
      expect(rotation.securityGroup).toBeUndefined();
      expect(rotation.securityGroups).toEqual([given, imported]);
      expect(rotation.connections.securityGroups).toEqual([given, imported]);
      const template = Template.fromStack(stack);
      const givenId = {
        'Fn::GetAtt': [
          stack.getLogicalId(given.node.defaultChild as ec2.CfnSecurityGroup),
          'GroupId',
        ],
      };
      template.resourcePropertiesCountIs(
        'AWS::EC2::SecurityGroup',
        { GroupDescription: Match.stringLikeRegexp('converge rotation') },
        0,
      );
      template.hasResourceProperties('AWS::Lambda::Function', {
        VpcConfig: Match.objectLike({ SecurityGroupIds: [givenId, 'sg-0123456789abcdef0'] }),
      });
      const databaseSg = {
        'Fn::GetAtt': [
          stack.getLogicalId(f.databaseSecurityGroup.node.defaultChild as ec2.CfnSecurityGroup),
          'GroupId',
        ],
      };
      for (const source of [givenId, 'sg-0123456789abcdef0']) {
        template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
          GroupId: databaseSg,
          SourceSecurityGroupId: source,
          FromPort: 5432,
          ToPort: 5432,
        });
      }
      // The given group restricts outbound traffic: it gets the path to the database, not more.
      template.hasResourceProperties('AWS::EC2::SecurityGroupEgress', {
        GroupId: givenId,
        DestinationSecurityGroupId: databaseSg,
        FromPort: 5432,
      });
      template.resourcePropertiesCountIs(
        'AWS::EC2::SecurityGroup',
        { SecurityGroupEgress: Match.arrayWith([Match.objectLike({ FromPort: 443 })]) },
        0,
      );
    });

    test('an empty list fails synth', () => {
      // GIVEN / WHEN / THEN
      expect(
        () => new ConvergeRotation(stack, 'Rotation', { ...f.props, securityGroups: [] }),
      ).toThrow(
        /securityGroups must name at least one security group when given, got an empty list/,
      );
    });

    test('by default the created group is both securityGroup and the only one of securityGroups', () => {
      // GIVEN / WHEN
      const rotation = new ConvergeRotation(stack, 'Rotation', f.props);

      // THEN
      expect(rotation.securityGroup).toBeInstanceOf(ec2.SecurityGroup);
      expect(rotation.securityGroups).toEqual([rotation.securityGroup]);
    });
  });

  describe('one secret, one rotation, a distinct master', () => {
    test('the same construct as secret and masterSecret fails synth', () => {
      // GIVEN / WHEN / THEN
      expect(
        () => new ConvergeRotation(stack, 'Rotation', { ...f.props, masterSecret: f.props.secret }),
      ).toThrow(
        `masterSecret must be a different secret from secret (the master role creates and alters the rotated users), got ${SECRET_ARN} for both in Test/Rotation`,
      );
    });

    test('the same secret imported twice, by complete and by partial ARN, fails synth', () => {
      // GIVEN
      const again = secretsmanager.Secret.fromSecretCompleteArn(stack, 'Again', SECRET_ARN);
      const partial = secretsmanager.Secret.fromSecretPartialArn(
        stack,
        'Partial',
        SECRET_ARN.replace(/-AbCdEf$/, ''),
      );

      // WHEN / THEN
      for (const [id, masterSecret] of [
        ['Complete', again],
        ['PartialRotation', partial],
      ] as const) {
        expect(() => new ConvergeRotation(stack, id, { ...f.props, masterSecret })).toThrow(
          /masterSecret must be a different secret from secret/,
        );
      }
    });

    test('two rotations of one secret in one stack fail synth, naming both', () => {
      // GIVEN
      new ConvergeRotation(stack, 'First', f.props);

      // WHEN / THEN
      expect(() => new ConvergeRotation(stack, 'Second', f.props)).toThrow(
        `secret ${SECRET_ARN} is already rotated by Test/First; Test/Second would rotate it a second time`,
      );
    });

    test('two rotations of one secret in two stacks of one app fail synth, naming both', () => {
      // GIVEN
      const app = newApp();
      const env = { account: ACCOUNT, region: REGION };
      const one = fixture(new Stack(app, 'One', { env }));
      const two = fixture(new Stack(app, 'Two', { env }));
      new ConvergeRotation(one.stack, 'Rotation', one.props);

      // WHEN / THEN
      expect(() => new ConvergeRotation(two.stack, 'Rotation', two.props)).toThrow(
        /is already rotated by One\/Rotation; Two\/Rotation would rotate it a second time/,
      );
    });

    test('a secret the stack creates and its attachment are one secret', () => {
      // GIVEN
      const database = new rds.DatabaseInstance(stack, 'Db', {
        engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17 }),
        vpc: f.vpc,
      });
      const secret = new rds.DatabaseSecret(stack, 'AppUser', {
        username: 'app_user',
        masterSecret: database.secret!,
      });
      const props = { ...f.props, masterSecret: database.secret!, database };
      new ConvergeRotation(stack, 'First', { ...props, secret });

      // WHEN / THEN
      expect(
        () => new ConvergeRotation(stack, 'Second', { ...props, secret: secret.attach(database) }),
      ).toThrow(/secret Test\/AppUser is already rotated by Test\/First; Test\/Second/);
    });

    test('the same ARN parameter rotated twice in one stack fails synth; different secrets do not', () => {
      // GIVEN
      const arn = new CfnParameter(stack, 'SecretArn', { type: 'String' }).valueAsString;
      const a = secretsmanager.Secret.fromSecretCompleteArn(stack, 'A', arn);
      const b = secretsmanager.Secret.fromSecretCompleteArn(stack, 'B', arn);
      const other = secretsmanager.Secret.fromSecretCompleteArn(
        stack,
        'Other',
        SECRET_ARN.replace('app-user', 'reporting'),
      );
      new ConvergeRotation(stack, 'First', {
        ...f.props,
        secret: a,
        secretName: 'orders/app-user',
      });
      new ConvergeRotation(stack, 'Unrelated', { ...f.props, secret: other });

      // WHEN / THEN
      expect(
        () =>
          new ConvergeRotation(stack, 'Second', {
            ...f.props,
            secret: b,
            secretName: 'orders/app-user',
          }),
      ).toThrow(/secret Test\/B is already rotated by Test\/First; Test\/Second/);
    });
  });

  describe('grants and the invoke permission', () => {
    test('grantConsumer and grantOperator return grants that can order other resources', () => {
      // GIVEN
      const rotation = new ConvergeRotation(stack, 'Rotation', f.props);
      const consumer = new iam.Role(stack, 'Consumer', {
        assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      });
      const operator = new iam.Role(stack, 'Operator', {
        assumedBy: new iam.AccountRootPrincipal(),
      });
      const consumerQueue = new sqs.Queue(stack, 'ConsumerWork', { enforceSSL: true });
      const operatorQueue = new sqs.Queue(stack, 'OperatorWork', { enforceSSL: true });

      // WHEN
      const consumerGrant: iam.Grant = rotation.grantConsumer(consumer);
      const operatorGrant: iam.Grant = rotation.grantOperator(operator);
      consumerGrant.assertSuccess();
      operatorGrant.assertSuccess();
      consumerGrant.applyBefore(consumerQueue);
      operatorGrant.applyBefore(operatorQueue);

      // THEN
      expect(consumerGrant.principalStatements.flatMap((s) => s.actions)).toEqual([
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
        'cloudwatch:PutMetricData',
      ]);
      const template = Template.fromStack(stack);
      const policyOf = (role: iam.Role) =>
        logicalIdOf(template, 'AWS::IAM::Policy', {
          Roles: [{ Ref: stack.getLogicalId(role.node.defaultChild as iam.CfnRole) }],
        });
      const queues = template.findResources('AWS::SQS::Queue');
      const dependsOn = (q: sqs.Queue) =>
        (
          queues[stack.getLogicalId(q.node.defaultChild as sqs.CfnQueue)] as {
            DependsOn?: string[];
          }
        ).DependsOn;
      expect(dependsOn(consumerQueue)).toEqual([policyOf(consumer)]);
      expect(dependsOn(operatorQueue)).toEqual([policyOf(operator)]);
    });

    test('Secrets Manager may invoke the function only for this secret, from this account', () => {
      // GIVEN / WHEN
      new ConvergeRotation(stack, 'Rotation', f.props);

      // THEN
      Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Permission', {
        Principal: 'secretsmanager.amazonaws.com',
        SourceAccount: ACCOUNT,
        SourceArn: SECRET_ARN,
      });
    });

    test('for a secret known by name, the source is its ARN with the suffix wildcard', () => {
      // GIVEN
      const secret = secretsmanager.Secret.fromSecretNameV2(stack, 'ByName', 'orders/by-name');

      // WHEN
      new ConvergeRotation(stack, 'Rotation', { ...f.props, secret });

      // THEN
      Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Permission', {
        Principal: 'secretsmanager.amazonaws.com',
        SourceArn: {
          'Fn::Join': [
            '',
            [
              'arn:',
              { Ref: 'AWS::Partition' },
              `:secretsmanager:${REGION}:${ACCOUNT}:secret:orders/by-name-??????`,
            ],
          ],
        },
      });
    });

    test('cdk-nag finds nothing more with given groups and the endpoint than with the defaults', () => {
      // GIVEN
      const baseline = fixture();
      new ConvergeRotation(baseline.stack, 'Rotation', baseline.props);
      const given = new ec2.SecurityGroup(stack, 'Given', { vpc: f.vpc, allowAllOutbound: false });
      new ConvergeRotation(stack, 'Rotation', {
        ...f.props,
        securityGroups: [given],
        secretsManagerEndpoint: true,
      });

      // WHEN
      const findings = (s: Stack) =>
        [
          ...new Set(new AwsSolutionsChecks().validateScope(s).violations.map((v) => v.ruleName)),
        ].sort();

      // THEN
      expect(findings(stack)).toEqual(findings(baseline.stack));
    });
  });
});
