/**
 * One run's world for the model-based test: a fresh database on a real PostgreSQL (with a hostile
 * tenant's traps planted), the in-memory Secrets Manager, CloudWatch and Lambda models behind the
 * real SDK clients, the real rotation handler, the real CLI, and a fleet built from the real
 * consumer library, all on one virtual clock.
 *
 * Secrets Manager is played by the test: RotateSecret only stages AWSPENDING
 * (`invokeRotation: false`), and each step invocation is a command, so the generator decides when
 * the service delivers a step, retries one, or delivers an old one late.
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import {
  GetFunctionConfigurationCommand,
  InvokeCommand,
  LambdaClient,
  type LambdaClientResolvedConfig,
  type ServiceInputTypes as LambdaInput,
  type ServiceOutputTypes as LambdaOutput,
} from '@aws-sdk/client-lambda';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient, type AwsStub } from 'aws-sdk-client-mock';
import { CloudWatchModel } from '../../cli/local/cloudwatch-model';
import {
  answerCloudWatch,
  answerSecretsManager,
  type CloudWatchStub,
  type SecretsManagerStub,
} from '../../cli/local/install';
import { LambdaModel } from '../../cli/local/lambda-model';
import { secretFields, type ProvisionedDatabase } from '../../cli/local/postgres';
import { SecretsManagerModel } from '../../cli/local/secrets-manager-model';
import { runCli } from '../../cli/main';
import { createRotationHandler, loadConfig, type RotationConfig } from '../../lambda/rotation';
import { ENV } from '../../lambda/rotation/config';
import type { Clock } from '../../lambda/rotation/context';
import type { ConsumerRegistration } from '../../lambda/shared/registry';
import {
  AWSCURRENT,
  AWSPENDING,
  AWSPREVIOUS,
  parseSecret,
  type DbSecret,
} from '../../lambda/shared/secret';
import {
  LiveProcess,
  RestartOnlyProcess,
  ScheduledJob,
  type AnyProcess,
  type FleetContext,
} from './consumers';
import type { ModelDatabase } from './database';
import {
  beforeSdkCall,
  currentScope,
  isInvocation,
  installPgFaults,
  invocationScope,
  runScoped,
  runUnscoped,
  type FaultPlan,
} from './faults';

/** Virtual seconds between two ticks of the world (the gate's poll interval). */
export const TICK_SECONDS = 20;

/** A clock that moves only when the gate sleeps or the world ticks; the gate's sleeps run the world. */
export class VirtualClock implements Clock {
  public onSleep?: () => Promise<void>;
  private t = Math.floor(Date.now() / 60_000) * 60_000;

  public now(): number {
    return this.t;
  }

  public async sleep(ms: number): Promise<void> {
    const scope = currentScope();
    if (isInvocation(scope) && scope.crashed) return new Promise<void>(() => undefined);
    this.t += ms;
    const hook = this.onSleep;
    if (hook) await runUnscoped(hook);
  }

  public advance(ms: number): void {
    this.t += ms;
  }
}

/** How one invocation of the rotation function ended. */
export interface InvocationRecord {
  readonly label: string;
  readonly token?: string;
  readonly outcome: 'ok' | 'error' | 'crashed';
  readonly result?: unknown;
  readonly error?: Error;
  /** The command during which it ended. */
  readonly command: number;
}

/** One LoadedGeneration data point as a process published it. */
export interface ReportRecord {
  readonly consumer: string;
  readonly generation: number;
  readonly t: number;
}

/** One version of the secret as the model holds it. */
export interface VersionView {
  readonly id: string;
  readonly stages: readonly string[];
  readonly secret?: DbSecret;
}

export interface WorldOptions {
  /** The database, reset for this run. */
  readonly database: ModelDatabase;
  readonly registry: readonly ConsumerRegistration[];
  /** Processes per live consumer. */
  readonly liveProcesses: number;
  /** The promotion gate's wait bound per invocation, in virtual seconds. */
  readonly gateMaxWaitSeconds: number;
  /** Unique per run: names of the secrets and the function. */
  readonly tag: string;
}

let stubs:
  | {
      sm: SecretsManagerStub;
      cw: CloudWatchStub;
      lambda: AwsStub<LambdaInput, LambdaOutput, LambdaClientResolvedConfig>;
    }
  | undefined;

/** Installs the SDK stubs once per process; every run re-wires them to its own models. */
function sdkStubs() {
  installPgFaults();
  stubs ??= {
    sm: mockClient(SecretsManagerClient),
    cw: mockClient(CloudWatchClient),
    lambda: mockClient(LambdaClient),
  };
  return stubs;
}

/** Restores the real SDK clients (end of the test file or the runner). */
export function restoreSdkStubs(): void {
  stubs?.sm.restore();
  stubs?.cw.restore();
  stubs?.lambda.restore();
  stubs = undefined;
}

/**
 * @example
 * const world = await World.create({ database, registry, liveProcesses: 2, gateMaxWaitSeconds: 120, tag });
 * await world.rotateSecret();
 * await world.invoke({ Step: 'createSecret', SecretId: world.secretArn, ClientRequestToken: token });
 */
export class World {
  public readonly clock = new VirtualClock();
  public readonly sm = new SecretsManagerModel({ invokeRotation: false });
  public readonly cw: CloudWatchModel;
  public readonly lambda = new LambdaModel();
  public readonly processes: AnyProcess[] = [];
  public readonly reports: ReportRecord[] = [];
  public readonly invocations: InvocationRecord[] = [];
  /** Errors and CLI output seen by the run: scanned for passwords with the log lines. */
  public readonly texts: string[] = [];
  /** The number of the command being run (from 1). */
  public command = 0;
  /** Runs at the gate's n-th sleep of the current command (an operator acting while finishSecret waits). */
  public onGateSleep?: (n: number) => Promise<void>;
  private gateSleeps = 0;
  public secretArn = '';
  public masterArn = '';
  public readonly lambdaArn: string;
  public readonly config: RotationConfig;
  public readonly handler: ReturnType<typeof createRotationHandler>;
  public db!: ProvisionedDatabase;
  /** Every username the run's secret can name (the application user and its alternate). */
  public users: string[] = [];

  private constructor(public readonly options: WorldOptions) {
    this.cw = new CloudWatchModel({ now: () => this.clock.now() });
    const env = {
      [ENV.caBundle]: options.database.server.caBundlePath ?? '',
      [ENV.connectTimeoutMs]: '3000',
      [ENV.statementTimeoutMs]: '5000',
      [ENV.consumers]: JSON.stringify(options.registry),
      [ENV.gatePollSeconds]: String(TICK_SECONDS),
      [ENV.gateMaxWaitSeconds]: String(options.gateMaxWaitSeconds),
      [ENV.gateLookbackSeconds]: '900',
    };
    this.config = loadConfig(env);
    this.handler = createRotationHandler({ config: this.config, clock: this.clock });
    this.lambdaArn = `arn:aws:lambda:us-east-1:123456789012:function:model-rotation-${options.tag}`;
    this.lambda.register(this.lambdaArn, (event) => this.invokeDirect(event, 'cli-redrive'), env);
    this.clock.onSleep = async () => {
      this.gateSleeps++;
      await this.tick(false);
      await this.onGateSleep?.(this.gateSleeps);
    };
  }

  public static async create(options: WorldOptions): Promise<World> {
    const world = new World(options);
    await world.setUp();
    return world;
  }

  private async setUp(): Promise<void> {
    const s = sdkStubs();
    for (const stub of [s.sm, s.cw, s.lambda]) stub.reset();
    answerSecretsManager(s.sm, this.sm, beforeSdkCall);
    answerCloudWatch(s.cw, this.cw, beforeSdkCall);
    s.lambda.on(GetFunctionConfigurationCommand).callsFake(async (i) => {
      await beforeSdkCall('GetFunctionConfiguration');
      return this.lambda.getFunctionConfiguration(i);
    });
    s.lambda.on(InvokeCommand).callsFake(async (i) => {
      await beforeSdkCall('Invoke');
      return this.lambda.invoke(i);
    });

    const { database, tag } = this.options;
    const server = database.server;
    this.db = await database.reset();
    const fields = secretFields(server, this.db);
    this.masterArn = this.sm.createSecret({
      Name: `model-master-${tag}`,
      SecretString: JSON.stringify(fields.master),
    }).ARN!;
    this.secretArn = this.sm.createSecret({
      Name: `model-app-${tag}`,
      SecretString: JSON.stringify(fields.app(this.masterArn)),
    }).ARN!;
    // RotateSecret only stages AWSPENDING here (invokeRotation: false); the commands deliver the steps.
    this.sm.registerRotationFunction(this.lambdaArn, (event) =>
      this.invokeDirect({ ...event }, event.Step),
    );
    this.sm.configureRotation(this.secretArn, this.lambdaArn);
    this.users = database.users;

    const ctx: FleetContext = {
      secretArn: this.secretArn,
      caBundlePath: server.caBundlePath,
      now: () => this.clock.now(),
      recordReport: (consumer, generation, t) => this.reports.push({ consumer, generation, t }),
    };
    for (const reg of this.options.registry) {
      if (reg.mode === 'live') {
        for (let i = 0; i < this.options.liveProcesses; i++)
          this.processes.push(await LiveProcess.start(ctx, reg, `${reg.name}#${i}`));
      } else if (reg.mode === 'restart-only') {
        const p = new RestartOnlyProcess(ctx, reg, `${reg.name}#0`);
        await p.restart();
        this.processes.push(p);
      } else {
        const job = new ScheduledJob(ctx, reg, `${reg.name}#job`);
        await job.run();
        this.processes.push(job);
      }
    }
  }

  /** Starts a command: numbers it and resets the gate-sleep hook. */
  public beginCommand(): void {
    this.command++;
    this.gateSleeps = 0;
    this.onGateSleep = undefined;
  }

  /**
   * Invokes the rotation function with `event` as one Lambda invocation, with an optional fault.
   * A crash ends the invocation where it stood: its connections are cut and it never returns.
   */
  public async invoke(
    event: Record<string, unknown>,
    plan?: FaultPlan,
    label = String(event.Step ?? event.converge),
  ): Promise<InvocationRecord> {
    const scope = invocationScope(plan);
    const token =
      typeof event.ClientRequestToken === 'string' ? event.ClientRequestToken : undefined;
    const run = runScoped(scope, () => this.handler(event as never)).then(
      (result): InvocationRecord => ({
        label,
        token,
        outcome: 'ok',
        result,
        command: this.command,
      }),
      (error: Error): InvocationRecord => ({
        label,
        token,
        outcome: 'error',
        error,
        command: this.command,
      }),
    );
    const crashed = scope.crash.then((): InvocationRecord => ({
      label,
      token,
      outcome: 'crashed',
      command: this.command,
    }));
    const record = await Promise.race([run, crashed]);
    this.invocations.push(record);
    if (record.error)
      this.texts.push(
        `${record.error.name}: ${record.error.message} ${String((record.error.cause as Error | undefined)?.message ?? '')}`,
      );
    return record;
  }

  /** What Lambda runs when the CLI invokes the function (no fault plan). */
  private async invokeDirect(event: unknown, label: string): Promise<unknown> {
    const record = await this.invoke(event as Record<string, unknown>, undefined, label);
    if (record.outcome === 'error') throw record.error;
    return record.result;
  }

  /** The world moves on by one tick: the clock advances (unless a gate sleep did) and processes act. */
  public async tick(advanceSeconds: number | false = TICK_SECONDS): Promise<void> {
    if (advanceSeconds) this.clock.advance(advanceSeconds * 1000);
    for (const p of this.processes) await p.tick();
  }

  /** Every process issues its queries (what applications do all the time). */
  public async queryRound(): Promise<void> {
    for (const p of this.processes) await p.query();
  }

  /**
   * Runs the CLI in process, as the operator, with an optional fault on its own AWS calls. A crash
   * is the operator's process dying (a closed laptop, a lost session): the command never returns,
   * and its `finally` blocks never run.
   */
  public async cli(
    argv: string[],
    plan?: FaultPlan,
  ): Promise<{ code: number | 'crashed'; out: string }> {
    const out: string[] = [];
    const scope = invocationScope(plan, 'operator');
    const run = runScoped(scope, () =>
      runCli(argv, { out: (t) => out.push(t), err: (t) => out.push(t), clock: this.operatorClock }),
    );
    const code = await Promise.race([run, scope.crash.then(() => 'crashed' as const)]);
    const text = out.join('\n');
    this.texts.push(text);
    return { code, out: text };
  }

  /**
   * The operator's clock: the virtual time (the abort record's time), and waits (`rotate` waiting
   * for the revocation guard) that advance it, the processes acting once per tick of it. A crashed
   * operator's wait never ends.
   */
  private readonly operatorClock: Clock = (() => {
    let sinceTick = 0;
    return {
      now: () => this.clock.now(),
      sleep: async (ms: number) => {
        const scope = currentScope();
        if (isInvocation(scope) && scope.crashed) return new Promise<void>(() => undefined);
        this.clock.advance(ms);
        sinceTick += ms;
        if (sinceTick < TICK_SECONDS * 1000) return;
        sinceTick = 0;
        await runUnscoped(() => this.tick(false));
      },
    };
  })();

  /** Every version with its stages and parsed value (undefined while it has none). */
  public versions(): VersionView[] {
    return Object.entries(this.sm.snapshot(this.secretArn)).map(([id, v]) => {
      let secret: DbSecret | undefined;
      try {
        secret = v.value === undefined ? undefined : parseSecret(v.value);
      } catch {
        secret = undefined;
      }
      return { id, stages: v.stages, secret };
    });
  }

  public versionAt(
    stage: typeof AWSCURRENT | typeof AWSPENDING | typeof AWSPREVIOUS,
  ): VersionView | undefined {
    return this.versions().find((v) => v.stages.includes(stage));
  }

  /** The token of a rotation that is waiting (AWSPENDING on a version that is not AWSCURRENT). */
  public waitingToken(): string | undefined {
    return this.versions().find(
      (v) => v.stages.includes(AWSPENDING) && !v.stages.includes(AWSCURRENT),
    )?.id;
  }

  /** Every password the run knows: none may ever be printed. */
  public passwords(): string[] {
    const out = [this.db.master.password, this.db.app.password];
    for (const v of this.versions()) if (v.secret) out.push(v.secret.password);
    return out;
  }

  public async dispose(): Promise<void> {
    this.clock.onSleep = undefined;
    for (const p of this.processes) await p.stop().catch(() => undefined);
  }
}
