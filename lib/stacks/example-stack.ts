/**
 * The example deployment (bin/app.ts): a VPC, RDS for PostgreSQL with a generated master secret,
 * and an application user secret rotated by {@link ConvergeRotation}. It registers no consumers
 * unless asked to (`consumers`, or `-c converge:exampleConsumers=true` for two example ones), so
 * its scheduled rotations complete right after `cdk deploy`. Every setting can be changed with CDK
 * context (`cdk synth -c converge:natGateways=2`); nothing is looked up, so `cdk synth` runs
 * offline without an account.
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
import { ConvergeRotation, type ConsumerOptions } from '../constructs/converge-rotation';
import { RotationScheduleExpression } from '../constructs/rotation-schedule-expression';

/** Settings of the example, each read from the CDK context key `converge:<name>`. */
export interface ExampleSettings {
  /** Target account; without it the stack is environment-agnostic. */
  readonly account?: string;
  /** Target region; without it the stack is environment-agnostic. */
  readonly region?: string;
  /** RDS instance type. */
  readonly instanceType: string;
  /**
   * PostgreSQL version: a major (`14` to `18`), which runs the minor pinned for it in
   * {@link PINNED_POSTGRES_VERSIONS}, or a full version of one of those majors (`16.9`, `17.9`),
   * which runs as given.
   */
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
  /**
   * Register the two example consumers ({@link EXAMPLE_CONSUMERS}) and create the example task
   * role of `orders-api`. Nothing in the example reports their metrics, so with this on every
   * rotation waits at the gates until they do: it is for trying the gates, not for a first deploy.
   */
  readonly exampleConsumers: boolean;
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
  exampleConsumers: false,
};

/**
 * The consumers `converge:exampleConsumers=true` registers. They stand for applications you would
 * deploy yourself; the example deploys neither, so they never report.
 */
export const EXAMPLE_CONSUMERS: readonly ConsumerOptions[] = [
  // A service that refreshes in place: the promotion gate waits for it.
  { name: 'orders-api', mode: 'live' },
  // A nightly job: it loads AWSCURRENT when it runs; the revocation guard waits for it.
  { name: 'nightly-report', mode: 'scheduled', maxStaleness: Duration.hours(25) },
];

/**
 * The minor version each PostgreSQL major runs when `postgresVersion` names only the major: the
 * newest of each in the aws-cdk-lib this project uses. The instance does not upgrade minors by
 * itself (that would drift from the template); moving to a newer minor is a change of this table or
 * of `postgresVersion`, and a deployment.
 */
export const PINNED_POSTGRES_VERSIONS: Readonly<Record<string, rds.PostgresEngineVersion>> = {
  '14': rds.PostgresEngineVersion.VER_14_22,
  '15': rds.PostgresEngineVersion.VER_15_17,
  '16': rds.PostgresEngineVersion.VER_16_13,
  '17': rds.PostgresEngineVersion.VER_17_9,
  '18': rds.PostgresEngineVersion.VER_18_3,
};

/**
 * The engine version of a `postgresVersion` setting: a major maps to its pinned minor, a full
 * version of a supported major is used as given.
 *
 * @throws {@link ConfigurationError} for anything else (an unsupported major, a malformed version)
 *
 * @example
 * postgresEngineVersion('17').postgresFullVersion;   // '17.9'
 * postgresEngineVersion('16.8').postgresFullVersion; // '16.8'
 */
export function postgresEngineVersion(setting: string): rds.PostgresEngineVersion {
  const pinned = PINNED_POSTGRES_VERSIONS[setting];
  if (pinned) return pinned;
  const m = /^(\d+)\.(\d+)$/.exec(setting);
  if (m && PINNED_POSTGRES_VERSIONS[m[1]]) return rds.PostgresEngineVersion.of(setting, m[1]);
  throw new ConfigurationError(
    `context converge:postgresVersion must be a PostgreSQL major (${Object.keys(PINNED_POSTGRES_VERSIONS).join(', ')}) or a full version of one (e.g. 17.9), got ${JSON.stringify(setting)}`,
  );
}

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
    exampleConsumers: flag('exampleConsumers', d.exampleConsumers),
  };
}

export interface ConvergeExampleStackProps extends StackProps {
  /**
   * The example's settings.
   *
   * @default DEFAULT_EXAMPLE_SETTINGS
   */
  readonly settings?: ExampleSettings;
  /**
   * Your consumers of the application user secret, registered with the rotation (see
   * docs/deploy.md, "Register consumers": deploy each with its reporter before registering it).
   * With `settings.exampleConsumers`, the example consumers are registered as well.
   *
   * @default - none
   */
  readonly consumers?: readonly ConsumerOptions[];
}

/**
 * The complete example: network, database, secrets, converge rotation (and, with
 * `exampleConsumers`, the example consumers and a task role for one of them).
 *
 * @example
 * new ConvergeExampleStack(app, 'ConvergeExample', {
 *   settings: exampleSettingsFromContext(app.node),
 *   consumers: [{ name: 'orders-api', mode: 'live' }],
 * });
 */
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

    const engine = rds.DatabaseInstanceEngine.postgres({
      version: postgresEngineVersion(settings.postgresVersion),
    });
    // rds.force_ssl is on by default only from PostgreSQL 15; set it on every major so no client
    // can connect without TLS, whatever postgresVersion says.
    const parameterGroup = new rds.ParameterGroup(this, 'DatabaseParameters', {
      engine,
      description: 'converge example: TLS required for every connection',
      parameters: { 'rds.force_ssl': '1' },
    });
    // aws-cdk-lib sets the retention of the exported log group with its LogRetention custom
    // resource; its function runs as this role (so the acknowledgments below sit on a resource of
    // this stack, not on the library's singleton).
    const logRetentionRole = new iam.Role(this, 'DatabaseLogRetentionRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Sets the retention of the converge example database log group',
      managedPolicies: [
        iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaBasicExecutionRole'),
      ],
    });
    const database = new rds.DatabaseInstance(this, 'Database', {
      engine,
      parameterGroup,
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
      cloudwatchLogsRetention: logs.RetentionDays.ONE_MONTH,
      cloudwatchLogsRetentionRole: logRetentionRole,
      caCertificate: rds.CaCertificate.RDS_CA_RSA2048_G1,
      storageType: rds.StorageType.GP3,
      backupRetention: Duration.days(7),
      allocatedStorage: 20,
      // The minor is pinned (PINNED_POSTGRES_VERSIONS): automatic upgrades would move the instance
      // away from the template's EngineVersion.
      autoMinorVersionUpgrade: false,
      publiclyAccessible: false,
    });
    // Acknowledged only where the settings leave the finding in place.
    if (!settings.multiAz) {
      Validations.of(database).acknowledge({
        id: 'AwsSolutions-RDS3',
        reason: 'Single-AZ keeps the example cheap; converge:multiAz=true turns Multi-AZ on.',
      });
    }
    if (!settings.deletionProtection) {
      Validations.of(database).acknowledge({
        id: 'AwsSolutions-RDS10',
        reason:
          'Deletion protection is off so the example can be destroyed; converge:deletionProtection=true turns it on.',
      });
    }
    Validations.of(database).acknowledge({
      id: 'AwsSolutions-RDS11',
      reason:
        'The port only obscures; access is limited to the rotation function and consumers by security groups, the server refuses connections without TLS (rds.force_ssl=1 in its parameter group), and converge verifies the server certificate (verify-full), issued by the pinned CA rds-ca-rsa2048-g1.',
    });
    Validations.of(logRetentionRole).acknowledge(
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason:
          'The log retention function writes its own logs: AWSLambdaBasicExecutionRole grants only logs:CreateLogGroup, CreateLogStream and PutLogEvents.',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'aws-cdk-lib grants logs:PutRetentionPolicy and logs:DeleteRetentionPolicy on "*" to its LogRetention function, which only acts on the log group its custom resource names (the database\'s postgresql log group).',
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
      // A registered consumer that never reports holds every rotation at the gates, so nothing is
      // registered unless asked for.
      consumers: [
        ...(props.consumers ?? []),
        ...(settings.exampleConsumers ? EXAMPLE_CONSUMERS : []),
      ],
      secretsManagerEndpoint: settings.secretsManagerEndpoint,
      alarmActions: alarmTopic ? [new cloudwatchActions.SnsAction(alarmTopic)] : undefined,
    });
    Validations.of(this.rotation.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Only actions without resource-level permissions use "*": secretsmanager:GetRandomPassword, cloudwatch:GetMetricData, X-Ray trace upload, and the network-interface actions Lambda needs in a VPC. Secret, key, database and log permissions name their resources.',
    });

    if (settings.exampleConsumers) {
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
    }

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
