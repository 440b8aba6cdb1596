/**
 * The example deployment (bin/app.ts): a VPC, RDS for PostgreSQL with a generated master secret,
 * and an application user secret rotated by {@link ConvergeRotation} with two registered
 * consumers. Every setting can be changed with CDK context (`cdk synth -c converge:natGateways=2`);
 * nothing is looked up, so `cdk synth` runs offline without an account.
 */
import { CfnOutput, Duration, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct, Node } from 'constructs';
import { DEFAULT_EXCLUDE_CHARACTERS } from '../../lambda/rotation/config';
import { ConfigurationError } from '../../lambda/shared/errors';
import { ConvergeRotation } from '../constructs/converge-rotation';
import { RotationScheduleExpression } from '../constructs/rotation-schedule-expression';

/** Settings of the example, each read from the CDK context key `converge:<name>`. */
export interface ExampleSettings {
  /** Target account; without it the stack is environment-agnostic. */
  readonly account?: string;
  /** Target region; without it the stack is environment-agnostic. */
  readonly region?: string;
  /** RDS instance type. */
  readonly instanceType: string;
  /** PostgreSQL major version. */
  readonly postgresVersion: string;
  /** Standby in a second Availability Zone. */
  readonly multiAz: boolean;
  /** Protect the database from deletion. */
  readonly deletionProtection: boolean;
  /** NAT gateways of the VPC (at least 1: the function calls CloudWatch and RDS APIs). */
  readonly natGateways: number;
  /** Rotation schedule, a cron() or rate() expression (UTC). */
  readonly schedule: string;
  /** Rotation window in hours. */
  readonly rotationWindowHours: number;
  /** Rotate as soon as the schedule is created or changed. */
  readonly rotateImmediately: boolean;
  /** Create the Secrets Manager interface endpoint for the rotation function. */
  readonly secretsManagerEndpoint: boolean;
  /** SNS topic ARN for the operator alarms. */
  readonly alarmTopicArn?: string;
}

/** The settings when no context is given. */
export const DEFAULT_EXAMPLE_SETTINGS: ExampleSettings = {
  instanceType: 't4g.micro',
  postgresVersion: '17',
  multiAz: false,
  deletionProtection: false,
  natGateways: 1,
  schedule: 'cron(0 3 ? * SUN *)',
  rotationWindowHours: 2,
  rotateImmediately: true,
  secretsManagerEndpoint: true,
};

/**
 * Reads the example's settings from CDK context (`-c converge:<name>=<value>` or cdk.json).
 *
 * @example
 * const settings = exampleSettingsFromContext(app.node);
 */
export function exampleSettingsFromContext(node: Node): ExampleSettings {
  const raw = (name: keyof ExampleSettings): unknown => node.tryGetContext(`converge:${name}`);
  const text = (name: keyof ExampleSettings): string | undefined => {
    const v = raw(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '') {
      throw new ConfigurationError(
        `context converge:${name} must be a non-empty string, got ${JSON.stringify(v)}`,
      );
    }
    return v;
  };
  const flag = (name: keyof ExampleSettings, fallback: boolean): boolean => {
    const v = raw(name);
    if (v === undefined) return fallback;
    if (v === true || v === 'true') return true;
    if (v === false || v === 'false') return false;
    throw new ConfigurationError(
      `context converge:${name} must be true or false, got ${JSON.stringify(v)}`,
    );
  };
  const count = (name: keyof ExampleSettings, fallback: number, min: number): number => {
    const v = raw(name);
    if (v === undefined) return fallback;
    const n = typeof v === 'number' ? v : Number(v);
    if (!Number.isInteger(n) || n < min) {
      throw new ConfigurationError(
        `context converge:${name} must be an integer of at least ${min}, got ${JSON.stringify(v)}`,
      );
    }
    return n;
  };
  const d = DEFAULT_EXAMPLE_SETTINGS;
  return {
    account: text('account'),
    region: text('region'),
    instanceType: text('instanceType') ?? d.instanceType,
    postgresVersion: text('postgresVersion') ?? d.postgresVersion,
    multiAz: flag('multiAz', d.multiAz),
    deletionProtection: flag('deletionProtection', d.deletionProtection),
    natGateways: count('natGateways', d.natGateways, 1),
    schedule: text('schedule') ?? d.schedule,
    rotationWindowHours: count('rotationWindowHours', d.rotationWindowHours, 1),
    rotateImmediately: flag('rotateImmediately', d.rotateImmediately),
    secretsManagerEndpoint: flag('secretsManagerEndpoint', d.secretsManagerEndpoint),
    alarmTopicArn: text('alarmTopicArn'),
  };
}

export interface ConvergeExampleStackProps extends StackProps {
  /**
   * The example's settings.
   *
   * @default DEFAULT_EXAMPLE_SETTINGS
   */
  readonly settings?: ExampleSettings;
}

/** The complete example: network, database, secrets, converge rotation, an example consumer role. */
export class ConvergeExampleStack extends Stack {
  /** The rotation of the application user's secret. */
  public readonly rotation: ConvergeRotation;

  constructor(scope: Construct, id: string, props: ConvergeExampleStackProps = {}) {
    super(scope, id, props);
    const settings = props.settings ?? DEFAULT_EXAMPLE_SETTINGS;

    const flowLogGroup = new logs.LogGroup(this, 'VpcFlowLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
    });
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: settings.natGateways,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'app', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 24 },
        { name: 'database', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      flowLogs: { all: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup) } },
    });

    const database = new rds.DatabaseInstance(this, 'Database', {
      engine: rds.DatabaseInstanceEngine.postgres({
        version: rds.PostgresEngineVersion.of(settings.postgresVersion, settings.postgresVersion),
      }),
      instanceType: new ec2.InstanceType(settings.instanceType),
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      credentials: rds.Credentials.fromGeneratedSecret('postgres', {
        secretName: `${this.stackName}/master`,
        excludeCharacters: DEFAULT_EXCLUDE_CHARACTERS,
      }),
      databaseName: 'app',
      port: 5432,
      multiAz: settings.multiAz,
      deletionProtection: settings.deletionProtection,
      storageEncrypted: true,
      iamAuthentication: true,
      cloudwatchLogsExports: ['postgresql'],
      backupRetention: Duration.days(7),
      allocatedStorage: 20,
      autoMinorVersionUpgrade: true,
      publiclyAccessible: false,
    });
    Validations.of(database).acknowledge(
      {
        id: 'AwsSolutions-RDS3',
        reason: 'Single-AZ keeps the example cheap; converge:multiAz=true turns Multi-AZ on.',
      },
      {
        id: 'AwsSolutions-RDS10',
        reason:
          'Deletion protection is off so the example can be destroyed; converge:deletionProtection=true turns it on.',
      },
      {
        id: 'AwsSolutions-RDS11',
        reason:
          'The port only obscures; access is limited to the rotation function and consumers by security groups, and TLS with verify-full is required.',
      },
    );
    // database.secret is the attachment that adds host and port; the rule looks at the secret itself.
    const masterSecret = database.secret!;
    Validations.of(database.node.findChild('Secret')).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'The master credential is break-glass: only the converge rotation function reads it, to create and alter the application roles. Rotating it would need a single-user rotation of its own, which is outside this example.',
    });

    // A customer-managed key on the application secret exercises the construct's KMS grants.
    const secretsKey = new kms.Key(this, 'SecretsKey', {
      description: 'Encrypts the converge example application user secret',
      enableKeyRotation: true,
    });
    const appUserSecret = new rds.DatabaseSecret(this, 'AppUserSecret', {
      username: 'app_user',
      secretName: `${this.stackName}/app-user`,
      dbname: 'app',
      masterSecret,
      encryptionKey: secretsKey,
      excludeCharacters: DEFAULT_EXCLUDE_CHARACTERS,
    }).attach(database);

    const alarmTopic = settings.alarmTopicArn
      ? sns.Topic.fromTopicArn(this, 'AlarmTopic', settings.alarmTopicArn)
      : undefined;
    this.rotation = new ConvergeRotation(this, 'AppUserRotation', {
      secret: appUserSecret,
      masterSecret,
      database,
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      schedule: RotationScheduleExpression.expression(settings.schedule),
      rotationWindow: Duration.hours(settings.rotationWindowHours),
      rotateImmediatelyOnUpdate: settings.rotateImmediately,
      consumers: [
        // A service that refreshes in place: the promotion gate waits for it.
        { name: 'orders-api', mode: 'live' },
        // A nightly job: it loads AWSCURRENT when it runs; the revocation guard waits for it.
        { name: 'nightly-report', mode: 'scheduled', maxStaleness: Duration.hours(25) },
      ],
      secretsManagerEndpoint: settings.secretsManagerEndpoint,
      alarmActions: alarmTopic ? [new cloudwatchActions.SnsAction(alarmTopic)] : undefined,
    });
    Validations.of(this.rotation.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Only actions without resource-level permissions use "*": secretsmanager:GetRandomPassword, cloudwatch:GetMetricData, X-Ray trace upload, and the network-interface actions Lambda needs in a VPC. Secret, key, database and log permissions name their resources.',
    });

    // The task role of the orders-api consumer: it may read the secret and report its metrics.
    const ordersApiRole = new iam.Role(this, 'OrdersApiTaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'Example task role of the orders-api consumer of the converge-rotated secret',
    });
    this.rotation.grantConsumer(ordersApiRole);
    Validations.of(ordersApiRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'cloudwatch:PutMetricData has no resource-level permissions; the statement is limited to the converge namespace by the cloudwatch:namespace condition.',
    });

    new CfnOutput(this, 'AppUserSecretArn', { value: appUserSecret.secretArn });
    new CfnOutput(this, 'MasterSecretArn', { value: masterSecret.secretArn });
    new CfnOutput(this, 'DatabaseEndpoint', { value: database.dbInstanceEndpointAddress });
    new CfnOutput(this, 'RotationFunctionName', {
      value: this.rotation.rotationFunction.functionName,
    });
    new CfnOutput(this, 'DashboardName', {
      value: this.rotation.monitoring.dashboard.dashboardName,
    });
  }
}
