/**
 * The local rotation drill (README.md, "The drill"): a real PostgreSQL, N consumers (real RotatingPgPools,
 * mixed refresh modes) issuing queries continuously and reporting their generation, and K
 * rotations through the real rotation handler with both gates on. It measures what a platform
 * team must know: how long each step takes, how long until promotion, how long until every
 * consumer reported the new generation, and how many queries failed (the answer must be 0).
 */
import { randomBytes } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  RotateSecretCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { createRotationHandler, loadConfig } from '../../lambda/rotation';
import { decideRevocation } from '../../lambda/rotation/gates/decision';
import { readGenerations } from '../../lambda/rotation/gates/read-generations';
import { ConfigurationError, ConvergeError } from '../../lambda/shared/errors';
import {
  DEFAULT_NAMESPACE,
  REVOCATION_STATISTICS,
  secretNameDimension,
} from '../../lambda/shared/metric-contract';
import type { ConsumerMode, ConsumerRegistration } from '../../lambda/shared/registry';
import { AWSCURRENT, parseSecret } from '../../lambda/shared/secret';
import { defaultClients } from '../clients';
import { abort } from '../commands/abort';
import type { LambdaModel } from '../local/lambda-model';
import { startLocalPostgres, type LocalPostgres } from '../local/postgres';
import type { RotationFunction, SecretsManagerModel } from '../local/secrets-manager-model';
import {
  labelConsumers,
  startConsumer,
  type ConsumerEnvironment,
  type DrillConsumer,
  type LoadCounters,
} from './consumers';
import { DrillInjectedFault, withInjectedFault, type RotationStep } from './fault';
import { provisionDrillSecret } from './provision';

export interface DrillOptions {
  /** Consumer processes (each one pool, two query loops). @default 4 */
  readonly consumers?: number;
  /** Rotations to run, one after another. @default 3 */
  readonly rotations?: number;
  /** Keep the load running at least this many seconds in total. @default - until the rotations end */
  readonly durationSeconds?: number;
  /** Consumers' secret refresh interval and report period, seconds. @default 2 */
  readonly refreshSeconds?: number;
  /** An already running PostgreSQL (tests pass theirs). @default - an embedded one is started and stopped */
  readonly database?: LocalPostgres;
  /**
   * The local Secrets Manager model the rotation function is registered with. Required unless
   * AWS_ENDPOINT_URL names a real endpoint (then the service runs the rotation).
   */
  readonly secretsManagerModel?: SecretsManagerModel;
  /** Progress lines while it runs. @default - none */
  readonly onProgress?: (p: DrillProgress) => void;
  /**
   * Rehearse a failed rotation: this step of the first rotation throws {@link DrillInjectedFault}
   * every time it runs (see ./fault.ts). The drill then aborts the waiting version the way
   * `converge abort` does and runs the remaining rotations. Needs the local Secrets Manager model.
   *
   * @default - no fault
   */
  readonly failStep?: RotationStep;
  /**
   * Where `converge status`, `abort` and `finish --force` find the rotation function (with the
   * consumer registry in its environment), as they find a deployed one.
   *
   * @default - not registered
   */
  readonly lambdaModel?: LambdaModel;
  /**
   * Runs after the rotations, before anything stops (`--keep`): the consumers still run.
   *
   * @default - everything stops at once
   */
  readonly keep?: (
    target: { secretArn: string; secretName: string; caBundlePath?: string },
    report: DrillReport,
  ) => Promise<void>;
}

export interface DrillProgress {
  readonly elapsedSeconds: number;
  readonly rotation: number;
  readonly phase: string;
  readonly queries: number;
  readonly failed: number;
  readonly generations: readonly (number | undefined)[];
  /** `drill-live-1 g3, drill-scheduled-3 g2, ...`: the consumers by name with their generations. */
  readonly labels?: string;
}

export type { DrillConsumer } from './consumers';

export interface RotationResult {
  readonly rotation: number;
  readonly generation: number;
  readonly username: string;
  readonly ok: boolean;
  readonly error?: string;
  /** Step durations as the service saw them (the last attempt of each step), ms. */
  readonly stepsMs: Readonly<Record<string, number>>;
  /** RotateSecret call to AWSCURRENT moved, ms. */
  readonly timeToPromotionMs?: number;
  /** RotateSecret call to every consumer using the new generation, ms. */
  readonly timeToConvergenceMs?: number;
  readonly queries: number;
  readonly failedQueries: number;
  /**
   * After an injected fault: the version the drill took AWSPENDING from (what `converge abort`
   * does), so the next rotation could start.
   */
  readonly abortedVersionId?: string;
}

export interface DrillReport {
  readonly consumers: readonly DrillConsumer[];
  readonly rotations: readonly RotationResult[];
  readonly summary: {
    readonly rotationsOk: number;
    readonly rotationsFailed: number;
    readonly allConverged: boolean;
    readonly queries: number;
    readonly failedQueries: number;
    readonly throughputQps: number;
    readonly elapsedSeconds: number;
    readonly finalGeneration: number;
    readonly firstFailure?: string;
  };
}

const MODES: readonly ConsumerMode[] = ['live', 'live', 'scheduled', 'restart-only'];

/**
 * A drill compresses time: consumers report high-resolution metrics every second and are
 * registered with a 10-second staleness (production registries use minutes), so a rotation's
 * gates settle in seconds. The rules are the same ones production runs.
 */
export const DRILL_STALENESS_SECONDS = 10;
export const DRILL_REPORT_PERIOD_SECONDS = 1;

/**
 * Runs the drill and returns its report (it never throws for a failed query or rotation: those
 * are results).
 *
 * @example
 * const report = await runDrill({ consumers: 4, rotations: 3, secretsManagerModel: model });
 * console.log(report.summary.failedQueries); // 0
 */
export async function runDrill(options: DrillOptions = {}): Promise<DrillReport> {
  const consumerCount = Math.max(1, options.consumers ?? 4);
  const rotationCount = Math.max(1, options.rotations ?? 3);
  const refreshSeconds = Math.max(1, options.refreshSeconds ?? 2);
  const started = Date.now();
  const model = options.secretsManagerModel;
  // Against a real or emulated endpoint the service invokes a deployed rotation function.
  const externalFunction = model ? undefined : process.env.CONVERGE_DRILL_ROTATION_FUNCTION;
  if (!model && !externalFunction) {
    throw new ConfigurationError(
      'without the local Secrets Manager model (AWS_ENDPOINT_URL is set), set CONVERGE_DRILL_ROTATION_FUNCTION to the ARN of a converge rotation function the endpoint can invoke',
    );
  }
  if (options.failStep && !model) {
    throw new ConfigurationError(
      '--fail injects its fault into the rotation function the local Secrets Manager model runs; unset AWS_ENDPOINT_URL to use it',
    );
  }
  const ownsDatabase = !options.database;
  const pg = options.database ?? (await startLocalPostgres());
  const tag = randomBytes(3).toString('hex');
  const consumers: DrillConsumer[] = Array.from({ length: consumerCount }, (_, i) => ({
    name: `drill-${MODES[i % MODES.length]}-${i + 1}`,
    mode: MODES[i % MODES.length],
  }));
  const registry: ConsumerRegistration[] = consumers.map((c) => ({
    name: c.name,
    mode: c.mode,
    maxStalenessSeconds: DRILL_STALENESS_SECONDS,
  }));
  const stopFns: (() => Promise<void>)[] = [];
  try {
    const sm = new SecretsManagerClient({});
    const { secretArn, secretName } = await provisionDrillSecret(pg, sm, tag);
    const lambdaArn = `arn:aws:lambda:us-east-1:123456789012:function:converge-drill-${tag}`;
    const handler = createRotationHandler({
      config: loadConfig({
        CONVERGE_CA_BUNDLE: pg.caBundlePath ?? '',
        CONVERGE_CONSUMERS: JSON.stringify(registry),
        CONVERGE_GATE_MAX_WAIT_SECONDS: '120',
        CONVERGE_GATE_POLL_SECONDS: '1',
        CONVERGE_GATE_LOOKBACK_SECONDS: '60',
      }),
      logger: new Logger({ serviceName: 'converge-drill', logLevel: 'SILENT' }),
      writeMetric: () => undefined,
    });
    if (model) {
      const rotationFunction: RotationFunction = (e) => handler(e);
      model.registerRotationFunction(
        lambdaArn,
        options.failStep ? withInjectedFault(rotationFunction, options.failStep) : rotationFunction,
      );
      model.configureRotation(secretArn, lambdaArn);
    }
    options.lambdaModel?.register(lambdaArn, (e) => handler(e as never), {
      CONVERGE_CA_BUNDLE: pg.caBundlePath ?? '',
      CONVERGE_CONSUMERS: JSON.stringify(registry),
    });

    // Consumers: one pool each, two query loops each, a reporter each (./consumers.ts).
    const cw = new CloudWatchClient({});
    const counters: LoadCounters = { queries: 0, failed: 0 };
    let loadRunning = true;
    const env: ConsumerEnvironment = {
      sm,
      cw,
      secretArn,
      caBundlePath: pg.caBundlePath,
      refreshSeconds,
      reportPeriodSeconds: DRILL_REPORT_PERIOD_SECONDS,
      counters,
      running: () => loadRunning,
    };
    const runners = consumers.map((c) => startConsumer(c, env));
    stopFns.push(async () => {
      loadRunning = false;
      await Promise.all(runners.map((r) => r.stop()));
    });
    await Promise.all(runners.map((r) => r.ready));

    const progress = (rotation: number, phase: string) => {
      currentPhase = phase;
      options.onProgress?.({
        elapsedSeconds: Math.round((Date.now() - started) / 100) / 10,
        rotation,
        phase,
        queries: counters.queries,
        failed: counters.failed,
        generations: runners.map((r) => r.generation()),
        labels: labelConsumers(runners),
      });
    };

    const results: RotationResult[] = [];
    let currentRotation = 1;
    let currentPhase = 'starting';
    const ticker = setInterval(() => progress(currentRotation, currentPhase), 2000);
    ticker.unref();
    stopFns.push(async () => clearInterval(ticker));
    for (let k = 1; k <= rotationCount; k++) {
      currentRotation = k;
      const q0 = counters.queries;
      const f0 = counters.failed;
      const t0 = Date.now();
      progress(k, 'rotating');
      let error: string | undefined;
      let injected = false;
      let abortedVersionId: string | undefined;
      let stepsMs: Record<string, number> = {};
      let promotedAt: number | undefined;
      // Non-live consumers move when they next start: a scheduled job's next run, a restart.
      const movers = runners.filter((r) => r.consumer.mode !== 'live');
      try {
        const rotation = await sm.send(
          new RotateSecretCommand({
            SecretId: secretArn,
            RotationLambdaARN: model ? undefined : externalFunction,
          }),
        );
        const record = model
          ? await model.rotationSettled(secretArn)
          : await waitForExternalRotation(sm, secretArn, rotation.VersionId);
        // The steps that completed are shown even when a later one failed.
        for (const s of record?.steps ?? []) stepsMs[s.step] = s.ms;
        if (record?.error) throw record.error;
        promotedAt = Date.now();
        progress(k, 'promoted; restarting non-live consumers');
        await Promise.all(movers.map((r) => r.restart()));
      } catch (err) {
        error = `${(err as Error).name}: ${(err as Error).message}`;
        injected = err instanceof DrillInjectedFault;
      }
      if (injected) {
        // The runbook after a failed rotation: take AWSPENDING off the stuck version (AWSCURRENT is
        // untouched), so the secret can rotate again.
        progress(k, `FAILED: ${error}; aborting the waiting version`);
        abortedVersionId = (await abort({ ...defaultClients(), sm, cw }, secretArn))
          .abortedVersionId;
      }
      const current = parseSecret(
        (
          await sm.send(
            new GetSecretValueCommand({ SecretId: secretArn, VersionStage: AWSCURRENT }),
          )
        ).SecretString,
      );
      // Converged = what the revocation guard will demand of the next rotation: every registered
      // consumer's metrics show the new generation and nothing older inside its freshness window.
      const convergedAt = error
        ? undefined
        : await waitForAsync(async () => {
            if (!runners.every((r) => r.generation() === current.generation)) return false;
            const readout = await readGenerations(cw, {
              namespace: DEFAULT_NAMESPACE,
              secretName: secretNameDimension(secretArn),
              consumers: registry,
              now: Date.now(),
              lookbackSeconds: 60,
              statistics: REVOCATION_STATISTICS,
            });
            return decideRevocation(registry, readout, { current: current.generation }).admit;
          }, 60_000);
      results.push({
        rotation: k,
        generation: current.generation,
        username: current.username,
        ok: !error,
        error,
        stepsMs,
        timeToPromotionMs: promotedAt ? promotedAt - t0 : undefined,
        timeToConvergenceMs: convergedAt ? convergedAt - t0 : undefined,
        queries: counters.queries - q0,
        failedQueries: counters.failed - f0,
        abortedVersionId,
      });
      progress(k, error ? `FAILED: ${error}` : 'converged');
      // A rehearsed failure was aborted above and the drill goes on; a real one ends it here.
      if (error && !injected) break;
      stepsMs = {};
    }
    const minEnd = started + (options.durationSeconds ?? 0) * 1000;
    while (Date.now() < minEnd) {
      progress(rotationCount, 'holding load');
      await sleep(Math.min(1000, minEnd - Date.now()));
    }
    const elapsedSeconds = (Date.now() - started) / 1000;
    const ok = results.filter((r) => r.ok);
    const report: DrillReport = {
      consumers,
      rotations: results,
      summary: {
        rotationsOk: ok.length,
        rotationsFailed: rotationCount - ok.length,
        allConverged:
          ok.length === rotationCount && results.every((r) => r.timeToConvergenceMs !== undefined),
        queries: counters.queries,
        failedQueries: counters.failed,
        throughputQps: Math.round(counters.queries / elapsedSeconds),
        elapsedSeconds: Math.round(elapsedSeconds * 10) / 10,
        finalGeneration: results[results.length - 1]?.generation ?? 0,
        firstFailure: counters.firstFailure,
      },
    };
    if (options.keep)
      await options.keep({ secretArn, secretName, caBundlePath: pg.caBundlePath }, report);
    return report;
  } finally {
    for (const stop of stopFns.reverse()) await stop().catch(() => undefined);
    if (ownsDatabase) await pg.stop();
  }
}

/** Waits until the endpoint made `versionId` AWSCURRENT (or gave up on it). */
async function waitForExternalRotation(
  sm: SecretsManagerClient,
  secretArn: string,
  versionId: string | undefined,
): Promise<undefined> {
  const end = Date.now() + 10 * 60_000;
  while (Date.now() < end) {
    const d = await sm.send(new DescribeSecretCommand({ SecretId: secretArn }));
    const stages = versionId ? d.VersionIdsToStages?.[versionId] : undefined;
    if (stages?.includes(AWSCURRENT)) return undefined;
    if (!stages?.includes('AWSPENDING'))
      throw new ConvergeError(`the endpoint abandoned rotation version ${versionId}`);
    await sleep(1000);
  }
  throw new ConvergeError(`rotation version ${versionId} did not complete within 10 minutes`);
}

async function waitForAsync(
  condition: () => Promise<boolean>,
  timeoutMs: number,
): Promise<number | undefined> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await condition()) return Date.now();
    await sleep(250);
  }
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
