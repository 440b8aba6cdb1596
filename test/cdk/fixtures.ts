/**
 * Shared pieces of the CDK tests: a stack whose Lambda assets are not bundled (the bundled code is
 * checked once, in example-app.test.ts), and an imported database with its secrets.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { ConvergeRotationProps } from '../../lib';

export const ACCOUNT = '123456789012';
export const REGION = 'eu-west-1';
export const SECRET_ARN = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:orders/app-user-AbCdEf`;
export const MASTER_ARN = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:orders/master-GhIjKl`;
export const KEY_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:key/11111111-2222-3333-4444-555555555555`;
export const MASTER_KEY_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:key/66666666-7777-8888-9999-000000000000`;

/** The feature flags of cdk.json, so tests see the templates `cdk synth` produces. */
export const CDK_JSON_CONTEXT: Record<string, unknown> = JSON.parse(
  readFileSync(join(__dirname, '..', '..', 'cdk.json'), 'utf8'),
).context;

/** An app with the project's feature flags whose Lambda assets are staged without running esbuild. */
export function newApp(): App {
  return new App({ context: { ...CDK_JSON_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
}

/** A stack in a fixed environment whose assets are not bundled. */
export function newStack(): Stack {
  return new Stack(newApp(), 'Test', { env: { account: ACCOUNT, region: REGION } });
}

/** The same, without an environment (account and region resolve at deployment). */
export function newAgnosticStack(): Stack {
  return new Stack(newApp(), 'Agnostic');
}

/** What a ConvergeRotation needs, all imported except the VPC and the database security group. */
export interface Fixture {
  readonly stack: Stack;
  readonly vpc: ec2.Vpc;
  readonly databaseSecurityGroup: ec2.SecurityGroup;
  readonly props: ConvergeRotationProps;
}

export function fixture(stack: Stack = newStack()): Fixture {
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });
  const databaseSecurityGroup = new ec2.SecurityGroup(stack, 'DatabaseSecurityGroup', {
    vpc,
    allowAllOutbound: false,
  });
  const database = rds.DatabaseInstance.fromDatabaseInstanceAttributes(stack, 'Database', {
    instanceIdentifier: 'orders',
    instanceEndpointAddress: 'orders.abcdefghijkl.eu-west-1.rds.amazonaws.com',
    port: 5432,
    securityGroups: [databaseSecurityGroup],
  });
  const secret = secretsmanager.Secret.fromSecretCompleteArn(stack, 'AppUserSecret', SECRET_ARN);
  const masterSecret = secretsmanager.Secret.fromSecretCompleteArn(
    stack,
    'MasterSecret',
    MASTER_ARN,
  );
  return { stack, vpc, databaseSecurityGroup, props: { secret, masterSecret, database, vpc } };
}

/** The logical ID of the only resource of a type that matches the properties. */
export function logicalIdOf(
  template: Template,
  type: string,
  props: Record<string, unknown> = {},
): string {
  const found = Object.keys(template.findResources(type, { Properties: props }));
  if (found.length !== 1)
    throw new Error(`expected one ${type}, found ${found.length}: ${found.join(', ')}`);
  return found[0];
}

/** Every statement of every IAM policy in the template. */
export function allPolicyStatements(template: Template): Array<Record<string, unknown>> {
  return Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
    (r) =>
      (r as { Properties: { PolicyDocument: { Statement: Array<Record<string, unknown>> } } })
        .Properties.PolicyDocument.Statement,
  );
}

/**
 * The revocation guard's describe of the database's readers and replicas (lambda/rotation/gates/members.ts):
 * their identifiers are unknown at synthesis, so the instances of the account and region.
 */
export const DESCRIBE_DATABASE_MEMBERS = {
  Sid: 'DescribeDatabaseMembers',
  Effect: 'Allow',
  Action: 'rds:DescribeDBInstances',
  Resource: {
    'Fn::Join': [
      '',
      [
        'arn:',
        { Ref: 'AWS::Partition' },
        ':rds:',
        { Ref: 'AWS::Region' },
        ':',
        { Ref: 'AWS::AccountId' },
        ':db:*',
      ],
    ],
  },
};
