import { Aws, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as rds from 'aws-cdk-lib/aws-rds';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ConvergeRotation } from '../../lib';
import { allPolicyStatements, DESCRIBE_DATABASE_MEMBERS, fixture, newApp } from './fixtures';

/** The id cdk-nag gives the wildcard of the members statement (pseudo parameters rendered as <...>). */
const MEMBERS_FINDING =
  'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:db:*]';

function statementsWithRdsActions(stack: Stack): Array<Record<string, unknown>> {
  return allPolicyStatements(Template.fromStack(stack)).filter((s) =>
    ([] as unknown[]).concat(s.Action).some((a) => typeof a === 'string' && a.startsWith('rds:')),
  );
}

describe('ConvergeRotation: describing the members of the database (revocation guard)', () => {
  test('an Aurora cluster: DescribeDBClusters on the cluster, DescribeDBInstances on instances of the account and region only', () => {
    // GIVEN
    const f = fixture();
    const cluster = rds.DatabaseCluster.fromDatabaseClusterAttributes(f.stack, 'Cluster', {
      clusterIdentifier: 'orders-cluster',
      port: 5432,
      securityGroups: [f.databaseSecurityGroup],
    });

    // WHEN
    new ConvergeRotation(f.stack, 'Rotation', { ...f.props, database: cluster });

    // THEN
    const rdsStatements = statementsWithRdsActions(f.stack);
    expect(rdsStatements.map((s) => [s.Sid, s.Action])).toEqual([
      ['DescribeDatabase', 'rds:DescribeDBClusters'],
      ['DescribeDatabaseMembers', 'rds:DescribeDBInstances'],
    ]);
    expect(rdsStatements[1].Resource).toEqual(DESCRIBE_DATABASE_MEMBERS.Resource);
    expect(rdsStatements.every((s) => s.Effect === 'Allow' && s.Condition === undefined)).toBe(
      true,
    );
  });

  test('a database that is not RDS gets no RDS permission (its members are not looked up)', () => {
    // GIVEN
    const f = fixture();
    const selfManaged: ec2.IConnectable = {
      connections: new ec2.Connections({
        securityGroups: [f.databaseSecurityGroup],
        defaultPort: ec2.Port.tcp(5432),
      }),
    };

    // WHEN
    new ConvergeRotation(f.stack, 'Rotation', { ...f.props, database: selfManaged });

    // THEN
    expect(statementsWithRdsActions(f.stack)).toEqual([]);
  });

  test('cdk-nag raises exactly the acknowledged id for that statement, and the construct acknowledges only it', () => {
    // GIVEN: the same statement on a bare role, and the construct
    const bare = new Stack(newApp(), 'Bare', {
      env: { account: '123456789012', region: 'eu-west-1' },
    });
    new iam.Role(bare, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    }).addToPolicy(
      new iam.PolicyStatement({
        actions: ['rds:DescribeDBInstances'],
        resources: [`arn:${Aws.PARTITION}:rds:${Aws.REGION}:${Aws.ACCOUNT_ID}:db:*`],
      }),
    );
    const f = fixture();
    new ConvergeRotation(f.stack, 'Rotation', f.props);

    // WHEN
    const bareFindings = new AwsSolutionsChecks()
      .validateScope(bare)
      .violations.map((v) => v.ruleName);
    const constructFindings = new AwsSolutionsChecks()
      .validateScope(f.stack)
      .violations.map((v) => v.ruleName);

    // THEN
    expect(bareFindings).toEqual([MEMBERS_FINDING]);
    expect(constructFindings).not.toContain(MEMBERS_FINDING);
    // The other wildcards stay for the application to acknowledge (lib/stacks/example-stack.ts does).
    expect(constructFindings).toContain('AwsSolutions-IAM5[Resource::*]');
  });

  test('grantSessionsReader: the same describe for status --sessions, acknowledged on the grantee only', () => {
    // GIVEN
    const f = fixture();
    const rotation = new ConvergeRotation(f.stack, 'Rotation', f.props);
    const reader = new iam.Role(f.stack, 'SessionsReader', {
      assumedBy: new iam.AccountRootPrincipal(),
    });
    const other = new iam.Role(f.stack, 'Other', { assumedBy: new iam.AccountRootPrincipal() });
    other.addToPolicy(
      new iam.PolicyStatement({
        actions: ['rds:DescribeDBInstances'],
        resources: [`arn:${Aws.PARTITION}:rds:${Aws.REGION}:${Aws.ACCOUNT_ID}:db:*`],
      }),
    );

    // WHEN
    rotation.grantSessionsReader(reader);
    const findings = new AwsSolutionsChecks()
      .validateScope(f.stack)
      .violations.filter((v) => v.ruleName === MEMBERS_FINDING)
      .flatMap((v) => v.violatingResources.map((r) => r.constructPath ?? r.resourceLogicalId));

    // THEN: the reader's policy is acknowledged; an unrelated role with the same statement is not.
    expect(findings).toHaveLength(1);
    expect(String(findings[0])).toMatch(/Other/);
  });
});
