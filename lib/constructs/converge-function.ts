/**
 * The one in-house Lambda function wrapper. Every Lambda function converge deploys is built here,
 * so runtime, architecture, bundling, logging and the execution role are decided once.
 *
 * Two ways to the same code: in this repository the TypeScript entry is bundled by esbuild through
 * NodejsFunction at synth time; the installed `@converge/cdk` package ships the bundle prebuilt
 * (scripts/build-packages.mjs, same esbuild settings), so a user's `cdk synth` needs neither these
 * sources nor esbuild.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ConfigurationError } from '../../lambda/shared/errors';

/** Repository root: where package-lock.json and the `lambda/` sources live. */
export const PROJECT_ROOT = join(__dirname, '..', '..');

/**
 * The Node.js runtime every converge function uses: the newest one Lambda offers (cdk-nag
 * AwsSolutions-L1 checks exactly that). It ships the RDS CA bundle at /var/runtime/ca-cert.pem.
 */
export const CONVERGE_RUNTIME = lambda.Runtime.NODEJS_24_X;

/**
 * Actions a function needs to attach to a VPC, the same set as the AWS managed policy
 * AWSLambdaVPCAccessExecutionRole but written inline (cdk-nag AwsSolutions-IAM4). EC2 offers no
 * resource-level permissions for the Describe actions and Lambda creates the network interfaces
 * before their IDs exist, so the resource is `*`.
 */
export const VPC_ENI_ACTIONS = [
  'ec2:CreateNetworkInterface',
  'ec2:DescribeNetworkInterfaces',
  'ec2:DescribeSubnets',
  'ec2:DeleteNetworkInterface',
  'ec2:AssignPrivateIpAddresses',
  'ec2:UnassignPrivateIpAddresses',
] as const;

export interface ConvergeFunctionProps {
  /** Absolute path of the TypeScript entry file, given as `join(__dirname, ...)` or {@link PROJECT_ROOT}. */
  readonly entry: string;
  /**
   * Directory of the same function prebuilt (an `index.js` exporting the handler, with its source
   * map), used as the code asset instead of bundling `entry` when that directory exists.
   *
   * @default - always bundle `entry`
   */
  readonly prebuilt?: string;
  /**
   * Exported handler name in the entry file.
   *
   * @default 'handler'
   */
  readonly handler?: string;
  /**
   * What the function does, shown in the console.
   *
   * @default - no description
   */
  readonly description?: string;
  /**
   * Environment variables for the function.
   *
   * @default - only NODE_OPTIONS=--enable-source-maps
   */
  readonly environment?: Record<string, string>;
  /**
   * Function timeout.
   *
   * @default Duration.minutes(1)
   */
  readonly timeout?: Duration;
  /**
   * Memory in MiB.
   *
   * @default 256
   */
  readonly memorySize?: number;
  /**
   * How long the function's log group keeps its logs.
   *
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * What happens to the log group when the stack deletes it. Rotation logs are an audit trail.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * X-Ray tracing mode.
   *
   * @default lambda.Tracing.ACTIVE
   */
  readonly tracing?: lambda.Tracing;
  /**
   * VPC to place the function in.
   *
   * @default - the function is not in a VPC
   */
  readonly vpc?: ec2.IVpc;
  /**
   * Subnets for the function's network interfaces.
   *
   * @default - private subnets with egress
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Security groups for the function's network interfaces (only with `vpc`).
   *
   * @default - Lambda's default for a VPC function: a new security group
   */
  readonly securityGroups?: ec2.ISecurityGroup[];
  /**
   * Physical function name.
   *
   * @default - a name CloudFormation generates
   */
  readonly functionName?: string;
}

/**
 * The esbuild settings of every converge function: minified, with source maps (no sources inside),
 * CommonJS for the current Node runtime, every dependency bundled at the version package-lock.json
 * pins, the AWS SDK included (the function runs exactly the SDK version the tests ran against;
 * the default would leave `@aws-sdk/*` to whatever version the runtime ships). pg's optional native
 * binding is never used. scripts/build-packages.mjs builds the prebuilt bundles with these too.
 *
 * @example
 * new NodejsFunction(this, 'Fn', { entry, bundling: { ...CONVERGE_BUNDLING, externalModules: [...CONVERGE_BUNDLING.externalModules] } });
 */
export const CONVERGE_BUNDLING = {
  minify: true,
  sourceMap: true,
  sourcesContent: false,
  format: OutputFormat.CJS,
  target: 'node24',
  externalModules: ['pg-native'],
} as const;

/**
 * A Node.js Lambda function, its code bundled locally by esbuild with {@link CONVERGE_BUNDLING} or
 * taken prebuilt from {@link ConvergeFunctionProps.prebuilt}, ARM64,
 * the current Node runtime, X-Ray tracing, a log group with retention and a least-privilege
 * execution role that is created here (no AWS managed policies).
 *
 * Children: `ServiceRole`, `LogGroup` and the function itself, `Resource`.
 *
 * @example
 * const fn = new ConvergeFunction(this, 'Rotation', {
 *   entry: join(PROJECT_ROOT, 'lambda', 'rotation', 'index.ts'),
 *   vpc,
 * });
 */
export class ConvergeFunction extends Construct {
  /** The Lambda function. */
  public readonly function: lambda.Function;
  /** The execution role. */
  public readonly role: iam.Role;
  /** The log group the function writes to. */
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ConvergeFunctionProps) {
    super(scope, id);

    this.role = new iam.Role(this, 'ServiceRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${this.node.path}`,
    });
    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    // The log group exists before the function, so Lambda only needs to write to it.
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'WriteOwnLogGroup',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    if (props.vpc) {
      this.role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'AttachToVpc',
          actions: [...VPC_ENI_ACTIONS],
          resources: ['*'],
        }),
      );
    }

    const settings = {
      description: props.description,
      functionName: props.functionName,
      runtime: CONVERGE_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout ?? Duration.minutes(1),
      tracing: props.tracing ?? lambda.Tracing.ACTIVE,
      role: this.role,
      logGroup: this.logGroup,
      vpc: props.vpc,
      vpcSubnets: props.vpc ? props.vpcSubnets : undefined,
      securityGroups: props.vpc ? props.securityGroups : undefined,
      environment: { ...props.environment, NODE_OPTIONS: '--enable-source-maps' },
    };
    const handler = props.handler ?? 'handler';
    if (props.prebuilt !== undefined && existsSync(join(props.prebuilt, 'index.js'))) {
      this.function = new lambda.Function(this, 'Resource', {
        ...settings,
        code: lambda.Code.fromAsset(props.prebuilt),
        handler: `index.${handler}`,
      });
      return;
    }
    if (!existsSync(props.entry)) {
      throw new ConfigurationError(
        `${this.node.path}: the function's prebuilt bundle ` +
          (props.prebuilt === undefined
            ? 'is not configured'
            : `is missing (${join(props.prebuilt, 'index.js')})`) +
          ` and its source entry ${props.entry} does not exist; reinstall the package that provides this construct`,
      );
    }
    this.function = new NodejsFunction(this, 'Resource', {
      ...settings,
      entry: props.entry,
      handler,
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
      bundling: {
        ...CONVERGE_BUNDLING,
        externalModules: [...CONVERGE_BUNDLING.externalModules],
        logLevel: LogLevel.WARNING,
      },
    });
  }
}
