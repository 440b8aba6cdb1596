/**
 * The converge rotation of one PostgreSQL secret: our TypeScript rotation function and everything
 * around it (docs/deploy.md). Added next to an `rds.DatabaseInstance` or `DatabaseCluster`, or an
 * imported database and secrets.
 *
 * Unlike aws-cdk-lib's hosted rotation (a pinned Python application from the Serverless
 * Application Repository), this deploys code built from this repository, takes a cron or rate
 * schedule with a rotation window, scopes Secrets Manager's invoke permission to this account,
 * can add a Secrets Manager VPC endpoint, and adds the convergence gate's alarms and re-drive.
 */
import { join } from 'node:path';
import { Aws, Duration, Fn, Stack, Token, Validations } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, type IConstruct } from 'constructs';
import { TAG_ABORTED } from '../../lambda/rotation/aborted';
import { DEFAULT_EXCLUDE_CHARACTERS, ENV, loadConfig } from '../../lambda/rotation/config';
import {
  TAG_EMERGENCY,
  TAG_FORCE_FINISH,
  TAG_GENERATION_HIGH_WATER,
} from '../../lambda/rotation/override-tag-keys';
import { TAG_GATE, TAG_LAST_FAILURE, TAG_VERSION_PREFIX } from '../../lambda/rotation/records';
import { ConfigurationError } from '../../lambda/shared/errors';
import { DEFAULT_NAMESPACE } from '../../lambda/shared/metric-contract';
import {
  parseRegistry,
  type ConsumerMode,
  type ConsumerRegistration,
} from '../../lambda/shared/registry';
import { namespaceProblem } from '../../lambda/shared/report-document';
import { ConvergeFunction, PROJECT_ROOT } from './converge-function';
import { ConvergenceMonitoring } from './convergence-monitoring';
import {
  describeSecret,
  rejectKeyAlias,
  sameSecret,
  secretIdentity,
  secretNameFor,
  type SecretIdentity,
} from './rotated-secret';
import { rotationRules, type RotationScheduleExpression } from './rotation-schedule-expression';

/** The rotation function's one entry point, for Secrets Manager's steps and the gate's re-drive. */
export const ROTATION_ENTRY = join(PROJECT_ROOT, 'lambda', 'rotation', 'index.ts');

/**
 * Where the installed `@converge/cdk` package keeps the rotation function prebuilt: `assets/rotation`
 * beside its `dist/` (scripts/build-packages.mjs). In this repository the directory does not exist
 * and {@link ROTATION_ENTRY} is bundled at synth time instead.
 */
export const ROTATION_PREBUILT = join(__dirname, '..', 'assets', 'rotation');

/** Seconds the Lambda timeout must leave after the gate's longest wait (cold start, promotion). */
export const TIMEOUT_MARGIN_SECONDS = 60;
/** Lambda's longest timeout. */
const MAX_LAMBDA_TIMEOUT = Duration.minutes(15);

/** One application that uses the rotated secret (lambda/shared/registry.ts). */
export interface ConsumerOptions {
  /** Unique name: the `Consumer` dimension of the metrics it reports. */
  readonly name: string;
  /**
   * How it picks up a new credential: `live` ones are waited for by the promotion gate, every
   * mode by the revocation guard.
   */
  readonly mode: ConsumerMode;
  /**
   * How old its last report may be and still count as fresh. A `scheduled` job that runs hourly
   * needs at least an hour.
   *
   * @default Duration.minutes(5)
   */
  readonly maxStaleness?: Duration;
}

/** The promotion gate's timing (lambda/rotation/promotion-gate.ts). */
export interface ConvergenceGateOptions {
  /**
   * How long finishSecret polls CloudWatch within one invocation before it gives up with
   * ConvergencePendingError (the re-drive rule or Secrets Manager run it again). At most 15 minutes
   * minus a margin, since it must fit in the Lambda timeout.
   *
   * @default Duration.minutes(10)
   */
  readonly maxWait?: Duration;
  /**
   * Pause between two evaluations while waiting.
   *
   * @default Duration.seconds(20)
   */
  readonly pollInterval?: Duration;
  /**
   * How far back the gate reads consumer reports.
   *
   * @default Duration.minutes(15)
   */
  readonly lookback?: Duration;
  /**
   * How long a rotation may wait at the gate, over all invocations, before the RotationStuck alarm
   * asks an operator to abort or force it.
   *
   * @default Duration.hours(1)
   */
  readonly stuckAfter?: Duration;
}

/** Where the rotation function finds the CA certificates that verify the database (TLS verify-full). */
export class CaBundle {
  /** The RDS CA bundle Lambda's Node.js runtime ships at /var/runtime/ca-cert.pem (the function's default). */
  public static lambdaRuntime(): CaBundle {
    return new CaBundle(undefined);
  }

  /** A PEM file at this absolute path in the function's file system, for example from a layer under /opt. */
  public static fromPath(path: string): CaBundle {
    return new CaBundle(path);
  }

  private constructor(
    /** The path, or undefined for the function's own default. */
    public readonly path: string | undefined,
  ) {}
}

/** Everything about a converge rotation except which secret and database it rotates. */
export interface ConvergeRotationOptions {
  /**
   * Rotate every this often (whole hours, 4 hours to 999 days). Give this or `schedule`.
   *
   * @default Duration.days(30) when `schedule` is not given either
   */
  readonly automaticallyAfter?: Duration;
  /**
   * Rotate on this cron or rate schedule (UTC). Give this or `automaticallyAfter`.
   *
   * @default - the `automaticallyAfter` interval
   */
  readonly schedule?: RotationScheduleExpression;
  /**
   * How long after the window opens Secrets Manager may start the rotation (whole hours).
   *
   * @default - Secrets Manager's default: one hour for schedules in hours, the rest of the UTC day otherwise
   */
  readonly rotationWindow?: Duration;
  /**
   * Whether a deployment that creates or changes the schedule rotates at once. With `false`,
   * Secrets Manager only tests the configuration by running testSecret.
   *
   * @default true
   */
  readonly rotateImmediatelyOnUpdate?: boolean;
  /**
   * The applications that use the secret: the promotion gate waits for the `live` ones, the
   * revocation guard for all of them.
   *
   * @default - none (every rotation is promoted as soon as testSecret passes)
   */
  readonly consumers?: ConsumerOptions[];
  /**
   * The promotion gate's timing.
   *
   * @default - see {@link ConvergenceGateOptions}
   */
  readonly gate?: ConvergenceGateOptions;
  /**
   * CloudWatch namespace of every converge metric (consumers report into it too).
   *
   * @default 'SecretRotation'
   */
  readonly metricNamespace?: string;
  /**
   * Length of generated passwords (16-4096).
   *
   * @default 32
   */
  readonly passwordLength?: number;
  /**
   * Characters generated passwords never contain.
   *
   * @default - the function's DEFAULT_EXCLUDE_CHARACTERS: characters that break libpq URIs, shell and JSON quoting
   */
  readonly excludeCharacters?: string;
  /**
   * PostgreSQL connect timeout.
   *
   * @default Duration.seconds(5)
   */
  readonly connectTimeout?: Duration;
  /**
   * PostgreSQL statement timeout of the rotation's own statements.
   *
   * @default Duration.seconds(10)
   */
  readonly statementTimeout?: Duration;
  /**
   * CA certificates that verify the database's TLS certificate.
   *
   * @default CaBundle.lambdaRuntime()
   */
  readonly caBundle?: CaBundle;
  /**
   * Lambda timeout. Must exceed `gate.maxWait` by at least 60 seconds.
   *
   * @default - gate.maxWait plus 2 minutes, at most 15 minutes
   */
  readonly timeout?: Duration;
  /**
   * Lambda memory in MiB.
   *
   * @default 256
   */
  readonly memorySize?: number;
  /**
   * Retention of the function's logs (the rotation audit trail).
   *
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Subnets of the function's network interfaces: they need a route to the database and to the
   * Secrets Manager, CloudWatch and (for RDS-managed master secrets) RDS APIs.
   *
   * @default - private subnets with egress
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Security groups of the function's network interfaces, used instead of the group the construct
   * would create. The database admits its port from each of them (and, where a group restricts
   * outbound traffic and belongs to this app, the group gets the egress rule to the database and
   * to the Secrets Manager endpoint), and the rotation schedule waits for their rules. Their other
   * outbound rules are yours: the function needs HTTPS to the Secrets Manager, CloudWatch and (for
   * RDS) RDS APIs.
   *
   * @default - a new group that allows outbound traffic only to the database port and to HTTPS
   *
   * @example
   * securityGroups: [ec2.SecurityGroup.fromSecurityGroupId(this, 'RotationSg', 'sg-0123456789abcdef0')],
   */
  readonly securityGroups?: ec2.ISecurityGroup[];
  /**
   * Create a Secrets Manager interface endpoint in the function's subnets, reachable only from the
   * function, and point the function at it (AWS_ENDPOINT_URL_SECRETS_MANAGER). Private DNS stays
   * off so it cannot clash with an endpoint the VPC already has.
   *
   * @default false
   */
  readonly secretsManagerEndpoint?: boolean;
  /**
   * Actions of the operator alarms (RotationStuck, RotationFailed).
   *
   * @default - no actions
   */
  readonly alarmActions?: cloudwatch.IAlarmAction[];
  /**
   * Name of the CloudWatch dashboard.
   *
   * @default - a name CloudFormation generates
   */
  readonly dashboardName?: string;
}

export interface ConvergeRotationProps extends ConvergeRotationOptions {
  /**
   * The secret to rotate (README.md, "The secret": engine, host, port, username, password, dbname, masterarn).
   * One ConvergeRotation per secret in an app. Its `encryptionKey`, if any, must be a KMS key, not
   * an alias.
   */
  readonly secret: secretsmanager.ISecret;
  /**
   * The secret's name as Secrets Manager reports it (DescribeSecret `Name`, the ARN's resource
   * name without the six-character suffix). The rotation function reports its metrics under this
   * name, and the alarms read them there.
   *
   * Required when the name cannot be known at synth: a secret imported by a complete or partial
   * ARN that is a token (a parameter, another stack's output). Otherwise it is taken from the
   * secret (a secret this app creates, `Secret.fromSecretNameV2`, a literal ARN) and, if given,
   * must agree with it.
   *
   * @default - the name known from `secret`; synth fails when there is none
   *
   * @example
   * secret: secretsmanager.Secret.fromSecretCompleteArn(this, 'AppUser', secretArnParameter.valueAsString),
   * secretName: 'orders/app-user',
   */
  readonly secretName?: string;
  /**
   * The secret named by `masterarn`: a role that may CREATE and ALTER ROLE. Read only. A different
   * secret from `secret`; its `encryptionKey`, if any, must be a KMS key, not an alias.
   */
  readonly masterSecret: secretsmanager.ISecret;
  /** The VPC the function runs in. */
  readonly vpc: ec2.IVpc;
  /**
   * The database: an `rds.DatabaseInstance` or `DatabaseCluster` (new or imported) or anything
   * connectable. The function's security group is allowed to its port, and for RDS databases the
   * function may describe this one (to resolve hosts of RDS-managed master secrets) and the DB
   * instances of the account and region (the revocation guard checks sessions on the database's
   * readers and read replicas, and reads their endpoints; it connects only to those).
   */
  readonly database: ec2.IConnectable;
  /**
   * The database port.
   *
   * @default - the database's default port
   */
  readonly databasePort?: number;
}

/**
 * Zero-downtime rotation of a PostgreSQL secret with alternating users and a convergence gate.
 *
 * Children: `Resource` (the rotation schedule), `Function`, `SecurityGroup` (unless
 * `securityGroups` is given), `SecretsManagerEndpoint` (optional), `Monitoring` (alarms, re-drive
 * rule, dashboard).
 *
 * @example
 * const rotation = new ConvergeRotation(this, 'AppUserRotation', {
 *   secret: appUserSecret,
 *   masterSecret: database.secret!,
 *   database,
 *   vpc,
 *   schedule: RotationScheduleExpression.cron({ hour: '3', weekDay: 'SUN' }),
 *   rotationWindow: Duration.hours(2),
 *   consumers: [{ name: 'orders-api', mode: 'live' }],
 * });
 * rotation.grantConsumer(ordersApiTaskRole);
 */
export class ConvergeRotation extends Construct implements ec2.IConnectable {
  /** The rotation schedule. */
  public readonly rotationSchedule: secretsmanager.CfnRotationSchedule;
  /** The rotation function. */
  public readonly rotationFunction: lambda.IFunction;
  /** The rotation function's execution role. */
  public readonly role: iam.IRole;
  /**
   * The security group the construct created for the function, or undefined when the
   * `securityGroups` prop was given (the function then uses exactly those). Every group of the
   * function, either way, is in {@link securityGroups}.
   */
  public readonly securityGroup?: ec2.SecurityGroup;
  /**
   * Every security group of the function's network interfaces.
   *
   * @example
   * monitoringEndpoint.connections.allowDefaultPortFrom(rotation.securityGroups[0]);
   */
  public readonly securityGroups: readonly ec2.ISecurityGroup[];
  /**
   * The function's network connections, as for any connectable.
   *
   * @example
   * rotation.connections.allowTo(proxy, ec2.Port.tcp(5432), 'converge rotation function');
   */
  public readonly connections: ec2.Connections;
  /** The Secrets Manager interface endpoint, when requested. */
  public readonly secretsManagerEndpoint?: ec2.InterfaceVpcEndpoint;
  /** Alarms, re-drive rule and dashboard. */
  public readonly monitoring: ConvergenceMonitoring;
  /** The consumer registry as the function receives it. */
  public readonly consumers: readonly ConsumerRegistration[];
  /** The CloudWatch namespace of every converge metric of this secret. */
  public readonly metricNamespace: string;
  /**
   * The rotated secret's name as Secrets Manager reports it: the `SecretName` dimension of every
   * converge metric of this secret, from the `secretName` prop or the secret (may be a token that
   * CloudFormation resolves to the name).
   *
   * @example
   * new CfnOutput(this, 'MetricSecretName', { value: rotation.secretName }); // what consumers report under
   */
  public readonly secretName: string;

  private readonly secret: secretsmanager.ISecret;
  private readonly masterSecret: secretsmanager.ISecret;
  private readonly database: ec2.IConnectable;

  constructor(scope: Construct, id: string, props: ConvergeRotationProps) {
    super(scope, id);
    this.secret = props.secret;
    this.masterSecret = props.masterSecret;
    this.database = props.database;
    this.secretName = secretNameFor(props.secret, props.secretName);
    const identity = this.checkSecrets(props);
    this.metricNamespace = props.metricNamespace ?? DEFAULT_NAMESPACE;
    if (!Token.isUnresolved(this.metricNamespace) && namespaceProblem(this.metricNamespace) !== undefined) {
      throw new ConfigurationError(
        `metricNamespace must be 1-255 letters, digits, spaces and . - _ / # : and not start with "AWS/", got ${JSON.stringify(this.metricNamespace)}`,
      );
    }

    // Checks first, so an invalid prop fails before anything is built.
    const rules = rotationRules(props);
    this.consumers = parseRegistry(
      (props.consumers ?? []).map((c) => ({
        name: c.name,
        mode: c.mode,
        maxStalenessSeconds: c.maxStaleness?.toSeconds(),
      })),
      'consumers',
    );
    const gate = props.gate ?? {};
    const maxWait = gate.maxWait ?? Duration.minutes(10);
    const timeout = functionTimeout(maxWait, props.timeout);
    const port =
      props.databasePort !== undefined
        ? ec2.Port.tcp(props.databasePort)
        : props.database.connections.defaultPort;
    if (!port) {
      throw new ConfigurationError(
        'databasePort is required when the database has no default port, got none',
      );
    }
    const environment: Record<string, string> = {
      [ENV.consumers]: JSON.stringify(this.consumers),
      [ENV.metricNamespace]: this.metricNamespace,
      [ENV.gateMaxWaitSeconds]: String(maxWait.toSeconds()),
      [ENV.gatePollSeconds]: String((gate.pollInterval ?? Duration.seconds(20)).toSeconds()),
      [ENV.gateLookbackSeconds]: String((gate.lookback ?? Duration.minutes(15)).toSeconds()),
      [ENV.passwordLength]: String(props.passwordLength ?? 32),
      [ENV.excludeCharacters]: props.excludeCharacters ?? DEFAULT_EXCLUDE_CHARACTERS,
      [ENV.connectTimeoutMs]: String(
        (props.connectTimeout ?? Duration.seconds(5)).toMilliseconds(),
      ),
      [ENV.statementTimeoutMs]: String(
        (props.statementTimeout ?? Duration.seconds(10)).toMilliseconds(),
      ),
    };
    const caPath = props.caBundle?.path;
    if (caPath !== undefined) environment[ENV.caBundle] = caPath;
    // The function's own loader is the single definition of valid configuration: run it now, at
    // synth, so a bad value fails here with the value received instead of at the first rotation.
    loadConfig(environment, () => true);

    if (props.securityGroups !== undefined) {
      if (props.securityGroups.length === 0) {
        throw new ConfigurationError(
          'securityGroups must name at least one security group when given, got an empty list',
        );
      }
      this.securityGroups = [...props.securityGroups];
    } else {
      this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
        vpc: props.vpc,
        description: 'converge rotation function: the database port and HTTPS to AWS APIs only',
        allowAllOutbound: false,
      });
      this.securityGroup.addEgressRule(
        ec2.Peer.anyIpv4(),
        ec2.Port.tcp(443),
        'HTTPS to the Secrets Manager, CloudWatch and RDS APIs',
      );
      this.securityGroups = [this.securityGroup];
    }
    this.connections = new ec2.Connections({ securityGroups: [...this.securityGroups] });
    props.database.connections.allowFrom(this.connections, port, 'converge rotation function');

    const subnets = props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };
    if (props.secretsManagerEndpoint) {
      this.secretsManagerEndpoint = new ec2.InterfaceVpcEndpoint(this, 'SecretsManagerEndpoint', {
        vpc: props.vpc,
        service: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
        subnets,
        privateDnsEnabled: false,
        open: false,
      });
      this.secretsManagerEndpoint.connections.allowDefaultPortFrom(
        this.connections,
        'converge rotation function',
      );
      // DNS entries read "<hosted zone id>:<dns name>"; the first is the regional name.
      const dnsName = Fn.select(
        1,
        Fn.split(':', Fn.select(0, this.secretsManagerEndpoint.vpcEndpointDnsEntries)),
      );
      environment.AWS_ENDPOINT_URL_SECRETS_MANAGER = `https://${dnsName}`;
    }

    const fn = new ConvergeFunction(this, 'Function', {
      entry: ROTATION_ENTRY,
      prebuilt: ROTATION_PREBUILT,
      // Static: function descriptions are limited to 256 characters and secret names may have 512.
      description:
        'converge: rotates a PostgreSQL secret with alternating users and a convergence gate',
      environment,
      timeout,
      memorySize: props.memorySize,
      logRetention: props.logRetention,
      vpc: props.vpc,
      vpcSubnets: subnets,
      securityGroups: [...this.securityGroups],
    });
    this.rotationFunction = fn.function;
    this.role = fn.role;
    this.grantRotation(props);

    // The function serves this one secret: Secrets Manager may invoke it for this secret only.
    fn.function.addPermission('InvokedBySecretsManager', {
      principal: new iam.ServicePrincipal('secretsmanager.amazonaws.com'),
      action: 'lambda:InvokeFunction',
      sourceAccount: Stack.of(this).account,
      sourceArn: arnForPolicies(props.secret),
    });

    this.rotationSchedule = new secretsmanager.CfnRotationSchedule(this, 'Resource', {
      secretId: props.secret.secretArn,
      rotationLambdaArn: fn.function.functionArn,
      rotationRules: rules,
      rotateImmediatelyOnUpdate: props.rotateImmediatelyOnUpdate ?? true,
    });
    // Secrets Manager checks the invoke permission when the schedule is set, and an immediate
    // rotation needs the function's permissions and every network path in place: the database's
    // ingress rule (under the database's groups), the function's egress rules (inline on its
    // group, or rules under it) and the endpoint's ingress rule (under the endpoint's group).
    // A dependency on a construct covers every resource beneath it.
    this.rotationSchedule.node.addDependency(
      fn.function.permissionsNode.findChild('InvokedBySecretsManager'),
      fn.role,
      ...props.database.connections.securityGroups,
      ...this.securityGroups,
      ...(this.secretsManagerEndpoint ? [this.secretsManagerEndpoint] : []),
    );

    this.monitoring = new ConvergenceMonitoring(this, 'Monitoring', {
      secretName: this.secretName,
      secretArn: props.secret.secretFullArn ?? props.secret.secretArn,
      secretFullArn: props.secret.secretFullArn,
      namespace: this.metricNamespace,
      consumers: this.consumers,
      rotationFunction: fn.function,
      gateMaxWait: maxWait,
      stuckAfter: gate.stuckAfter,
      alarmActions: props.alarmActions,
      dashboardName: props.dashboardName,
    });
    registerRotation(this, identity);
  }

  /**
   * Lets a consumer read the secret (AWSCURRENT and AWSPENDING: the consumer library reads
   * versions by VersionId, so the grant covers the secret's versions) and decrypt it through
   * Secrets Manager when a customer key encrypts it.
   */
  public grantRead(grantee: iam.IGrantable): iam.Grant {
    const grant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
      resourceArns: [arnForPolicies(this.secret)],
    });
    const key = this.secret.encryptionKey;
    if (!key) return grant;
    const statement = useKeyThroughSecretsManager(this, undefined, key, ['kms:Decrypt']);
    return grant.combine(
      iam.Grant.addToPrincipal({
        grantee,
        actions: statement.actions,
        resourceArns: statement.resources,
        conditions: statement.conditions,
      }),
    );
  }

  /** Lets a consumer report its metrics with PutMetricData, into this rotation's namespace only. */
  public grantPublishMetrics(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['cloudwatch:PutMetricData'],
      resourceArns: ['*'],
      conditions: { StringEquals: { 'cloudwatch:namespace': this.metricNamespace } },
    });
  }

  /**
   * Seconds the waiting rotation has been pending (0 when none waits), as the pending check
   * publishes it every 5 minutes: what the RotationStuck alarm reads.
   *
   * @example
   * new cloudwatch.Alarm(this, 'PendingTwoHours', {
   *   metric: rotation.metricPendingAge(),
   *   threshold: 7200,
   *   evaluationPeriods: 1,
   * });
   */
  public metricPendingAge(options?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.monitoring.metricPendingAge(options);
  }

  /**
   * Completed rotations (finishSecret moved AWSCURRENT); Sum per 5 minutes by default.
   *
   * @example
   * dashboard.addWidgets(new cloudwatch.GraphWidget({ left: [rotation.metricRotationsCompleted()] }));
   */
  public metricRotationsCompleted(options?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.monitoring.metricRotationsCompleted(options);
  }

  /**
   * Failed rotation steps as the handler counted them, gate holds included; Sum per 5 minutes.
   *
   * @example
   * rotation.metricStepFailures({ period: Duration.hours(1) });
   */
  public metricStepFailures(options?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.monitoring.metricStepFailures(options);
  }

  /**
   * Times the promotion gate held finishSecret; Sum per 5 minutes.
   *
   * @example
   * rotation.metricGateHolds();
   */
  public metricGateHolds(options?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.monitoring.metricGateHolds(options);
  }

  /**
   * The RotationFailed alarm's signal: above 0 in a 5-minute period in which a step, an invocation
   * or Secrets Manager's rotation failed (gate holds excluded).
   *
   * @example
   * new cloudwatch.SingleValueWidget({ metrics: [rotation.metricFailures()] });
   */
  public metricFailures(): cloudwatch.MathExpression {
    return this.monitoring.metricFailures();
  }

  /**
   * Everything a consumer needs and nothing more: {@link grantRead} and {@link grantPublishMetrics},
   * combined into one grant.
   *
   * @example
   * const grant = rotation.grantConsumer(ordersApiTaskRole);
   * grant.applyBefore(ordersApiService); // the service starts once it may read the secret
   */
  public grantConsumer(grantee: iam.IGrantable): iam.Grant {
    return this.grantRead(grantee).combine(this.grantPublishMetrics(grantee));
  }

  /**
   * Lets an operator run the converge CLI on this secret: `status` (stages, generations and users
   * from the rotation function's records, the registry from the function's configuration, consumer
   * reports), `rotate [--emergency]`, `abort` and `finish --force`. It grants no
   * `secretsmanager:GetSecretValue` and no `kms:Decrypt`: the operator never reads the live
   * password. `status --sessions` logs in as the master to count the old user's sessions; grant
   * that separately with {@link grantSessionsReader} (and a network path to the database) where
   * it is wanted.
   *
   * @example
   * rotation.grantOperator(onCallRole);
   */
  public grantOperator(grantee: iam.IGrantable): iam.Grant {
    const secretArn = arnForPolicies(this.secret);
    const grants = [
      iam.Grant.addToPrincipal({
        grantee,
        actions: [
          'secretsmanager:DescribeSecret',
          'secretsmanager:RotateSecret',
          'secretsmanager:UpdateSecretVersionStage',
        ],
        resourceArns: [secretArn],
      }),
      iam.Grant.addToPrincipal({
        grantee,
        actions: ['secretsmanager:TagResource', 'secretsmanager:UntagResource'],
        resourceArns: [secretArn],
        conditions: {
          'ForAllValues:StringEquals': {
            'aws:TagKeys': [TAG_EMERGENCY, TAG_FORCE_FINISH, TAG_ABORTED],
          },
        },
      }),
      iam.Grant.addToPrincipal({
        grantee,
        actions: ['lambda:GetFunctionConfiguration', 'lambda:InvokeFunction'],
        resourceArns: [this.rotationFunction.functionArn],
      }),
      iam.Grant.addToPrincipal({
        grantee,
        actions: ['cloudwatch:GetMetricData'],
        resourceArns: ['*'],
      }),
    ];
    return grants.reduce((all, g) => all.combine(g));
  }

  /**
   * What `converge status --sessions` reads to count the old user's open sessions, and nothing
   * more: the rotated secret's AWSCURRENT value (for the database and the master secret's ARN),
   * the master secret (DescribeSecret and GetSecretValue: it logs in as the master), `kms:Decrypt`
   * through Secrets Manager for the keys that encrypt them, and, for an RDS database, the describe
   * calls that find the database and its readers and read replicas (the same scope as the
   * revocation guard). This grant reads live credentials, the master's included: give it only to
   * whoever may log in as the master. It adds no network path to the database.
   *
   * @example
   * rotation.grantOperator(onCallRole);
   * rotation.grantSessionsReader(dbaBreakGlassRole);
   */
  public grantSessionsReader(grantee: iam.IGrantable): iam.Grant {
    const grants = [
      iam.Grant.addToPrincipal({
        grantee,
        actions: ['secretsmanager:GetSecretValue'],
        resourceArns: [arnForPolicies(this.secret)],
      }),
      iam.Grant.addToPrincipal({
        grantee,
        actions: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
        resourceArns: [arnForPolicies(this.masterSecret)],
      }),
    ];
    for (const key of [this.secret.encryptionKey, this.masterSecret.encryptionKey]) {
      if (!key) continue;
      const statement = useKeyThroughSecretsManager(this, undefined, key, ['kms:Decrypt']);
      grants.push(
        iam.Grant.addToPrincipal({
          grantee,
          actions: statement.actions,
          resourceArns: statement.resources,
          conditions: statement.conditions,
        }),
      );
    }
    const rdsArn = rdsDatabaseArn(this.database);
    if (rdsArn) {
      grants.push(
        iam.Grant.addToPrincipal({ grantee, actions: [rdsArn.action], resourceArns: [rdsArn.arn] }),
        iam.Grant.addToPrincipal({
          grantee,
          actions: ['rds:DescribeDBInstances'],
          resourceArns: [DATABASE_MEMBERS_ARN],
        }),
      );
      const principal = grantee.grantPrincipal;
      if (Construct.isConstruct(principal)) {
        Validations.of(principal).acknowledge({
          id: DATABASE_MEMBERS_FINDING,
          reason:
            "rds:DescribeDBInstances on the DB instances of this account and region: converge status --sessions counts sessions on the database's readers and read replicas, whose identifiers are not known when the stack is synthesized.",
        });
      }
    }
    return grants.reduce((all, g) => all.combine(g));
  }

  /**
   * Refuses what cannot work: the master secret being the rotated secret, a KMS alias as a
   * secret's key, and a secret another ConvergeRotation of this app already rotates.
   */
  private checkSecrets(props: ConvergeRotationProps): SecretIdentity {
    const identity = secretIdentity(this, props.secret);
    if (sameSecret(identity, secretIdentity(this, props.masterSecret))) {
      throw new ConfigurationError(
        `masterSecret must be a different secret from secret (the master role creates and alters the rotated users), got ${describeSecret(props.secret)} for both in ${this.node.path}`,
      );
    }
    rejectKeyAlias(this, 'secret', props.secret.encryptionKey);
    rejectKeyAlias(this, 'masterSecret', props.masterSecret.encryptionKey);
    const other = rotationOf(this, identity);
    if (other !== undefined) {
      throw new ConfigurationError(
        `secret ${describeSecret(props.secret)} is already rotated by ${other}; ${this.node.path} would rotate it a second time (one ConvergeRotation per secret: two would race on AWSPENDING and report under one SecretName)`,
      );
    }
    return identity;
  }

  /** The function's permissions beyond logging and the VPC (which its wrapper grants). */
  private grantRotation(props: ConvergeRotationProps): void {
    const addStatement = (statement: iam.PolicyStatement) =>
      this.role.addToPrincipalPolicy(statement);
    const secretArn = arnForPolicies(props.secret);
    addStatement(
      new iam.PolicyStatement({
        sid: 'RotateSecret',
        actions: [
          'secretsmanager:DescribeSecret',
          'secretsmanager:GetSecretValue',
          // The pending check reads version creation dates (lambda/rotation/pending-check.ts).
          'secretsmanager:ListSecretVersionIds',
          'secretsmanager:PutSecretValue',
          'secretsmanager:UpdateSecretVersionStage',
        ],
        resources: [secretArn],
      }),
    );
    // The generation high-water mark, the operator override tags and the records status reads
    // (lambda/rotation/records.ts: one per version, the gate's hold, the last failure), and no
    // other tag.
    addStatement(
      new iam.PolicyStatement({
        sid: 'TagSecretWithConvergeTags',
        actions: ['secretsmanager:TagResource', 'secretsmanager:UntagResource'],
        resources: [secretArn],
        conditions: {
          'ForAllValues:StringLike': { 'aws:TagKeys': FUNCTION_TAG_KEYS },
        },
      }),
    );
    addStatement(
      new iam.PolicyStatement({
        sid: 'ReadMasterSecret',
        actions: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
        resources: [arnForPolicies(props.masterSecret)],
      }),
    );
    // The only two actions with a `*` resource: neither supports resource-level permissions.
    addStatement(
      new iam.PolicyStatement({
        sid: 'GeneratePassword',
        actions: ['secretsmanager:GetRandomPassword'],
        resources: ['*'],
      }),
    );
    addStatement(
      new iam.PolicyStatement({
        sid: 'ReadGateMetrics',
        actions: ['cloudwatch:GetMetricData'],
        resources: ['*'],
      }),
    );
    const rdsArn = rdsDatabaseArn(props.database);
    if (rdsArn) {
      addStatement(
        new iam.PolicyStatement({
          sid: 'DescribeDatabase',
          actions: [rdsArn.action],
          resources: [rdsArn.arn],
        }),
      );
      // The revocation guard checks sessions on every reader and read replica too
      // (lambda/rotation/gates/members.ts): it describes each one by identifier for its endpoint.
      // Those identifiers are not known here (readers and replicas are added after deployment, by
      // Aurora auto scaling for one), so the grant covers the instances of this account and region.
      addStatement(
        new iam.PolicyStatement({
          sid: 'DescribeDatabaseMembers',
          actions: ['rds:DescribeDBInstances'],
          resources: [DATABASE_MEMBERS_ARN],
        }),
      );
      Validations.of(this.role).acknowledge({
        id: DATABASE_MEMBERS_FINDING,
        reason:
          "rds:DescribeDBInstances on the DB instances of this account and region: the revocation guard reads the endpoints of the database's readers and read replicas, whose identifiers are not known when the stack is synthesized.",
      });
    }

    // Customer-managed keys, only through Secrets Manager in this region. Written as identity
    // statements: aws-cdk-lib's key grants go to the key policy, and are silently dropped for an
    // imported key, when the grantee is a service-conditioned principal.
    if (props.secret.encryptionKey) {
      addStatement(
        useKeyThroughSecretsManager(this, 'UseSecretKey', props.secret.encryptionKey, [
          'kms:Decrypt',
          'kms:DescribeKey',
          'kms:GenerateDataKey',
        ]),
      );
    }
    if (props.masterSecret.encryptionKey) {
      addStatement(
        useKeyThroughSecretsManager(this, 'UseMasterSecretKey', props.masterSecret.encryptionKey, [
          'kms:Decrypt',
        ]),
      );
    }
  }
}

/**
 * The tag keys the rotation function writes and removes: exact keys, and the version records'
 * prefix with a wildcard (version ids are only known at run time).
 */
const FUNCTION_TAG_KEYS = [
  TAG_GENERATION_HIGH_WATER,
  TAG_EMERGENCY,
  TAG_FORCE_FINISH,
  TAG_GATE,
  TAG_LAST_FAILURE,
  `${TAG_VERSION_PREFIX}*`,
];

/** The ConvergeRotations of each app (keyed by the construct tree's root) and their secrets. */
const ROTATIONS = new WeakMap<
  IConstruct,
  Array<{ readonly identity: SecretIdentity; readonly path: string }>
>();

/** The path of the ConvergeRotation of this app that already rotates the secret, if any. */
function rotationOf(rotation: ConvergeRotation, identity: SecretIdentity): string | undefined {
  const known = ROTATIONS.get(rotation.node.root) ?? [];
  return known.find((r) => sameSecret(r.identity, identity))?.path;
}

/** Records a fully built ConvergeRotation (one that failed its checks rotates nothing). */
function registerRotation(rotation: ConvergeRotation, identity: SecretIdentity): void {
  const root = rotation.node.root;
  const known = ROTATIONS.get(root) ?? [];
  known.push({ identity, path: rotation.node.path });
  ROTATIONS.set(root, known);
}

/** A namespace CloudWatch accepts for custom metrics (AWS/ is reserved for AWS services). */
/** The secret's ARN for IAM: the full ARN, or the partial one with the six-character suffix wildcard. */
function arnForPolicies(secret: secretsmanager.ISecret): string {
  return secret.secretFullArn ?? `${secret.secretArn}-??????`;
}

/** Use of a KMS key only as Secrets Manager does it on the caller's behalf, in this region. */
function useKeyThroughSecretsManager(
  scope: Construct,
  sid: string | undefined,
  key: kms.IKey,
  actions: string[],
): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid,
    actions,
    resources: [key.keyArn],
    conditions: {
      StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(scope).region}.amazonaws.com` },
    },
  });
}

/**
 * Every DB instance of the stack's account and region, written with the pseudo parameters (also in a
 * stack with an environment) so the cdk-nag finding it raises has one fixed id.
 */
const DATABASE_MEMBERS_ARN = `arn:${Aws.PARTITION}:rds:${Aws.REGION}:${Aws.ACCOUNT_ID}:db:*`;

/** The cdk-nag finding of {@link DATABASE_MEMBERS_ARN}, acknowledged on the execution role. */
const DATABASE_MEMBERS_FINDING =
  'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:db:*]';

/** The describe action and ARN of an RDS instance or cluster, or undefined for another database. */
function rdsDatabaseArn(database: ec2.IConnectable): { action: string; arn: string } | undefined {
  if ('instanceArn' in database && typeof database.instanceArn === 'string') {
    return { action: 'rds:DescribeDBInstances', arn: database.instanceArn };
  }
  if ('clusterArn' in database && typeof database.clusterArn === 'string') {
    return { action: 'rds:DescribeDBClusters', arn: database.clusterArn };
  }
  return undefined;
}

/** The Lambda timeout: it must hold the gate's longest wait plus a margin. */
function functionTimeout(maxWait: Duration, timeout: Duration | undefined): Duration {
  const waitSeconds = maxWait.toSeconds();
  const needed = waitSeconds + TIMEOUT_MARGIN_SECONDS;
  if (timeout === undefined) {
    const seconds = Math.min(
      waitSeconds + 2 * TIMEOUT_MARGIN_SECONDS,
      MAX_LAMBDA_TIMEOUT.toSeconds(),
    );
    if (seconds < needed) {
      throw new ConfigurationError(
        `gate.maxWait must leave a ${TIMEOUT_MARGIN_SECONDS}-second margin in Lambda's 15-minute timeout, so at most ${MAX_LAMBDA_TIMEOUT.toSeconds() - TIMEOUT_MARGIN_SECONDS} seconds, got ${waitSeconds} seconds`,
      );
    }
    return Duration.seconds(seconds);
  }
  const seconds = timeout.toSeconds();
  if (seconds < needed || seconds > MAX_LAMBDA_TIMEOUT.toSeconds()) {
    throw new ConfigurationError(
      `timeout must exceed gate.maxWait (${waitSeconds} seconds) by at least ${TIMEOUT_MARGIN_SECONDS} seconds and be at most 15 minutes, got ${seconds} seconds`,
    );
  }
  return timeout;
}
