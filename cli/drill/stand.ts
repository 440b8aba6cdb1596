/**
 * The drill's stand: what every scenario (./scenarios/) runs on. An embedded (or given) PostgreSQL
 * with TLS, a database with its master and application secrets in the local Secrets Manager model,
 * the real rotation handler registered as the secret's rotation function (with the local Lambda
 * model too, so `converge status`, `abort` and `finish --force` find it as they find a deployed
 * one), the consumers of ./consumers.ts under load, and labelled progress lines.
 *
 * A scenario acts through the stand as the operator would: `converge rotate` and `converge abort`
 * (cli/commands/), `converge status --sessions` (in process, with the drill's clients and the
 * database's CA bundle), and restarts of consumers.
 */
import { randomBytes } from 'node:crypto';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import {
  GetSecretValueCommand,
  SecretsManagerClient,
  RotateSecretCommand,
} from '@aws-sdk/client-secrets-manager';
import { createRotationHandler, loadConfig } from '../../lambda/rotation';
import { ConvergeError } from '../../lambda/shared/errors';
import type { ConsumerRegistration } from '../../lambda/shared/registry';
import { AWSCURRENT, AWSPENDING, parseSecret } from '../../lambda/shared/secret';
import { defaultClients, type CliClients } from '../clients';
import { abort, type AbortResult } from '../commands/abort';
import { rotate } from '../commands/rotate';
import { status, type StatusReport } from '../commands/status';
import type { LambdaModel } from '../local/lambda-model';
import { startLocalPostgres, type LocalPostgres } from '../local/postgres';
import type {
  RotationFunction,
  RotationRecord,
  SecretsManagerModel,
} from '../local/secrets-manager-model';
import {
  labelConsumers,
  sleep,
  startConsumer,
  type ConsumerEnvironment,
  type ConsumerRunner,
  type DrillConsumer,
  type LoadCounters,
} from './consumers';
import { DRILL_REPORT_PERIOD_SECONDS, DRILL_STALENESS_SECONDS } from './drill';
import { CapturingLogger, type FunctionLogLine } from './function-log';
import { provisionDrillSecret } from './provision';
import { withServiceRetry, type GuardHold } from './service-retry';

export interface StandOptions {
  readonly consumers: readonly DrillConsumer[];
  /** Live consumers' refresh interval, seconds. @default 1 */
  readonly refreshSeconds?: number;
  /** An already running PostgreSQL (tests pass theirs). @default - an embedded one, stopped by close() */
  readonly database?: LocalPostgres;
  readonly secretsManagerModel: SecretsManagerModel;
  readonly lambdaModel: LambdaModel;
  /** Progress lines (already labelled, without a newline). */
  readonly onProgress?: (line: string) => void;
}

/** A rotation the stand started, and when it ended. */
export interface StandRotation {
  readonly versionId: string;
  readonly startedAt: number;
  /** When DescribeSecret first showed the version AWSCURRENT (undefined: it ended without). */
  readonly promoted: Promise<number | undefined>;
  /** The model's record once the four steps ended (either way). */
  readonly settled: Promise<RotationRecord | undefined>;
}

/** What the drill ends with. */
export interface FinalState {
  readonly awsCurrent: {
    readonly versionId?: string;
    readonly generation: number;
    readonly username: string;
  };
  /** The version still AWSPENDING without AWSCURRENT, if any. */
  readonly pendingVersionId?: string;
  readonly consumers: readonly {
    name: string;
    mode: string;
    generation?: number;
    failedQueries: number;
  }[];
  readonly queries: number;
  readonly failedQueries: number;
  readonly firstFailure?: string;
}

export interface Stand {
  readonly secretArn: string;
  readonly secretName: string;
  readonly caBundlePath?: string;
  readonly registry: readonly ConsumerRegistration[];
  readonly consumers: readonly ConsumerRunner[];
  readonly counters: LoadCounters;
  /** What the rotation function logged at WARN and ERROR. */
  readonly functionLog: readonly FunctionLogLine[];
  /** setSecret refusals by the revocation guard (./service-retry.ts). */
  readonly guardHolds: readonly GuardHold[];
  readonly clients: CliClients;
  consumer(name: string): ConsumerRunner;
  /** Sets the phase shown in progress lines and prints one now. */
  phase(text: string): void;
  /** Seconds since the stand opened. */
  elapsedSeconds(): number;
  /**
   * `converge rotate` (with `--emergency --yes` when asked; its guard check's progress lines become
   * phases), or with `schedule: true` a plain RotateSecret, as the secret's rotation schedule (or
   * `aws secretsmanager rotate-secret`) starts one: no check first, the function's guard decides.
   */
  rotate(options?: { emergency?: boolean; schedule?: boolean }): Promise<StandRotation>;
  /** `converge abort --yes`. */
  abort(): Promise<AbortResult>;
  /** `converge status --sessions --ca-bundle <the database's>`. */
  status(): Promise<StatusReport>;
  /** Polls `condition` every 500 ms; throws naming `what` after `timeoutMs`. */
  waitFor(
    what: string,
    condition: () => boolean | Promise<boolean>,
    timeoutMs?: number,
  ): Promise<void>;
  /** AWSCURRENT's generation. */
  currentGeneration(): Promise<number>;
  finalState(): Promise<FinalState>;
  /** Stops the consumers (their last reports are sent) and PostgreSQL if the stand started it. */
  close(): Promise<void>;
}

/**
 * Opens a stand: database, secrets, function, consumers running (resolves once every consumer has
 * loaded a credential).
 *
 * @example
 * const stand = await openStand({ consumers, secretsManagerModel, lambdaModel, onProgress: console.error });
 * const r = await stand.rotate();
 * await r.settled;
 * await stand.close();
 */
export async function openStand(options: StandOptions): Promise<Stand> {
  const started = Date.now();
  const refreshSeconds = Math.max(1, options.refreshSeconds ?? 1);
  const ownsDatabase = !options.database;
  const pg = options.database ?? (await startLocalPostgres());
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    closers.length = 0;
    if (ownsDatabase) await pg.stop();
  };
  try {
    const tag = randomBytes(3).toString('hex');
    const registry: ConsumerRegistration[] = options.consumers.map((c) => ({
      name: c.name,
      mode: c.mode,
      maxStalenessSeconds: DRILL_STALENESS_SECONDS,
    }));
    const sm = new SecretsManagerClient({});
    const { secretArn, secretName } = await provisionDrillSecret(pg, sm, tag);
    const functionArn = `arn:aws:lambda:us-east-1:123456789012:function:converge-drill-${tag}`;
    const functionLog: FunctionLogLine[] = [];
    const guardHolds: GuardHold[] = [];
    let running = true;
    const environment = {
      CONVERGE_CA_BUNDLE: pg.caBundlePath ?? '',
      CONVERGE_CONSUMERS: JSON.stringify(registry),
      // Short invocations, retried (./service-retry.ts): each hold is recorded on the secret
      // (converge:gate), which is what `converge status` reads to say since when the gate holds.
      CONVERGE_GATE_MAX_WAIT_SECONDS: '4',
      CONVERGE_GATE_POLL_SECONDS: '1',
      CONVERGE_GATE_LOOKBACK_SECONDS: '60',
    };
    const handler = createRotationHandler({
      config: loadConfig(environment),
      logger: new CapturingLogger(functionLog, { serviceName: 'converge-drill' }),
      writeMetric: () => undefined,
    });
    const rotationFunction: RotationFunction = withServiceRetry((e) => handler(e), {
      onHold: (h) => guardHolds.push(h),
      running: () => running,
    });
    options.secretsManagerModel.registerRotationFunction(functionArn, rotationFunction);
    options.secretsManagerModel.configureRotation(secretArn, functionArn);
    // What `converge status`, `abort` and `finish --force` read and invoke: the same function.
    options.lambdaModel.register(functionArn, (e) => handler(e as never), environment);

    const counters: LoadCounters = { queries: 0, failed: 0 };
    const env: ConsumerEnvironment = {
      sm,
      cw: new CloudWatchClient({}),
      secretArn,
      caBundlePath: pg.caBundlePath,
      refreshSeconds,
      reportPeriodSeconds: DRILL_REPORT_PERIOD_SECONDS,
      counters,
      running: () => running,
    };
    const consumers = options.consumers.map((c) => startConsumer(c, env));
    closers.push(async () => {
      running = false;
      await Promise.all(consumers.map((r) => r.stop()));
    });
    await Promise.all(consumers.map((r) => r.ready));

    const clients = defaultClients();
    let phase = 'consumers running';
    const elapsedSeconds = () => Math.round((Date.now() - started) / 100) / 10;
    const printProgress = () =>
      options.onProgress?.(
        `[${elapsedSeconds().toFixed(1)}s] ${phase} | ${labelConsumers(consumers)} | queries ${counters.queries}, failed ${counters.failed}`,
      );
    const ticker = setInterval(printProgress, 2000);
    ticker.unref();
    closers.push(async () => clearInterval(ticker));

    const describe = () => options.secretsManagerModel.describeSecret({ SecretId: secretArn });
    const stand: Stand = {
      secretArn,
      secretName,
      caBundlePath: pg.caBundlePath,
      registry,
      consumers,
      counters,
      functionLog,
      guardHolds,
      clients,
      consumer(name) {
        const r = consumers.find((c) => c.consumer.name === name);
        if (!r) throw new ConvergeError(`the drill has no consumer ${name}`);
        return r;
      },
      phase(text) {
        phase = text;
        printProgress();
      },
      elapsedSeconds,
      async rotate(o = {}) {
        const startedAt = Date.now();
        const versionId = o.schedule
          ? (await sm.send(new RotateSecretCommand({ SecretId: secretArn }))).VersionId!
          : (
              await rotate(clients, secretArn, {
                emergency: o.emergency,
                progress: (line) => {
                  phase = line;
                  printProgress();
                },
              })
            ).versionId!;
        const settled = options.secretsManagerModel.rotationSettled(secretArn);
        // Promotion is seen in DescribeSecret, as an operator sees it.
        const isCurrent = () =>
          describe().VersionIdsToStages?.[versionId]?.includes(AWSCURRENT) ?? false;
        const promoted = (async () => {
          let done = false;
          void settled.then(() => (done = true));
          while (running) {
            if (isCurrent()) return Date.now();
            if (done) return isCurrent() ? Date.now() : undefined;
            await sleep(100);
          }
          return undefined;
        })();
        const rotation: StandRotation = { versionId, startedAt, settled, promoted };
        return rotation;
      },
      abort: () => abort(clients, secretArn),
      status: () => status(clients, secretArn, { sessions: true, caBundlePath: pg.caBundlePath }),
      async waitFor(what, condition, timeoutMs = 90_000) {
        const end = Date.now() + timeoutMs;
        while (!(await condition())) {
          if (Date.now() > end)
            throw new ConvergeError(
              `the drill waited ${Math.round(timeoutMs / 1000)} s for: ${what}`,
            );
          await sleep(500);
        }
      },
      async currentGeneration() {
        const v = await sm.send(
          new GetSecretValueCommand({ SecretId: secretArn, VersionStage: AWSCURRENT }),
        );
        return parseSecret(v.SecretString).generation ?? 0;
      },
      async finalState() {
        const v = await sm.send(
          new GetSecretValueCommand({ SecretId: secretArn, VersionStage: AWSCURRENT }),
        );
        const current = parseSecret(v.SecretString);
        const stages = describe().VersionIdsToStages ?? {};
        const pendingVersionId = Object.entries(stages).find(
          ([, s]) => s.includes(AWSPENDING) && !s.includes(AWSCURRENT),
        )?.[0];
        return {
          awsCurrent: {
            versionId: v.VersionId,
            generation: current.generation ?? 0,
            username: current.username,
          },
          pendingVersionId,
          consumers: consumers.map((r) => ({
            name: r.consumer.name,
            mode: r.consumer.mode,
            generation: r.generation(),
            failedQueries: r.failed(),
          })),
          queries: counters.queries,
          failedQueries: counters.failed,
          firstFailure: counters.firstFailure,
        };
      },
      close,
    };
    return stand;
  } catch (err) {
    await close();
    throw err;
  }
}
