/**
 * Fixtures for the gate unit tests: a fake clock (no real sleeping), a StepContext with injected
 * SDK clients, and helpers that put LoadedGeneration points into the CloudWatch model.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { RDSClient } from '@aws-sdk/client-rds';
import { SecretsManagerClient, type DescribeSecretCommandOutput } from '@aws-sdk/client-secrets-manager';
import type { CloudWatchModel } from '../../../cli/local/cloudwatch-model';
import { loadConfig, type RotationConfig } from '../../../lambda/rotation/config';
import type { Clock, StepContext } from '../../../lambda/rotation/context';
import type { Overrides } from '../../../lambda/rotation/overrides';
import { DEFAULT_NAMESPACE, LOADED_GENERATION, loadedGenerationDimensions } from '../../../lambda/shared/metric-contract';
import type { ConsumerRegistration } from '../../../lambda/shared/registry';

/** A fixed, minute-aligned start time far from any real clock. */
export const T0 = Date.parse('2031-03-04T05:06:00.000Z');

/** A clock that only moves when told to; `sleep` advances it and records the pause. */
export class FakeClock implements Clock {
  public readonly slept: number[] = [];
  /** Called after each sleep with the new time (to let "the world" move on). */
  public onSleep?: (now: number) => void;

  public constructor(private t: number = T0) {}

  public now(): number {
    return this.t;
  }

  public async sleep(ms: number): Promise<void> {
    this.slept.push(ms);
    this.t += ms;
    this.onSleep?.(this.t);
  }

  public advance(ms: number): void {
    this.t += ms;
  }

  public totalSlept(): number {
    return this.slept.reduce((a, b) => a + b, 0);
  }
}

export const SECRET_NAME = 'orders-db';
export const SECRET_ARN = `arn:aws:secretsmanager:us-east-1:123456789012:secret:${SECRET_NAME}-AbCdEf`;

export function registry(entries: [string, ConsumerRegistration['mode'], number?][]): ConsumerRegistration[] {
  return entries.map(([name, mode, maxStalenessSeconds]) => ({ name, mode, maxStalenessSeconds: maxStalenessSeconds ?? 300 }));
}

export function gateConfig(consumers: ConsumerRegistration[], gate: Partial<RotationConfig['gate']> = {}): RotationConfig {
  const base = loadConfig({}, () => false);
  return { ...base, consumers, gate: { ...base.gate, ...gate } };
}

export interface ContextOptions {
  readonly config: RotationConfig;
  readonly clock: Clock;
  readonly overrides?: Partial<Overrides>;
  readonly remainingTimeMs?: () => number;
  readonly description?: Partial<DescribeSecretCommandOutput>;
  readonly metrics?: string[];
}

/** A StepContext for the finishSecret/setSecret of rotation token `tok-2`. */
export function stepContext(options: ContextOptions): StepContext {
  const description: DescribeSecretCommandOutput = {
    ARN: SECRET_ARN,
    Name: SECRET_NAME,
    RotationEnabled: true,
    VersionIdsToStages: { 'tok-1': ['AWSCURRENT'], 'tok-2': ['AWSPENDING'] },
    $metadata: {},
    ...options.description,
  };
  return {
    secretsManager: new SecretsManagerClient({}),
    rds: new RDSClient({}),
    cloudWatch: new CloudWatchClient({}),
    logger: new Logger({ serviceName: 'converge-gate-test' }),
    config: options.config,
    clock: options.clock,
    remainingTimeMs: options.remainingTimeMs,
    writeMetric: options.metrics ? (line) => options.metrics!.push(line) : undefined,
    event: { Step: 'finishSecret', SecretId: SECRET_ARN, ClientRequestToken: 'tok-2' },
    secretArn: SECRET_ARN,
    secretName: SECRET_NAME,
    token: 'tok-2',
    description,
    overrides: { emergency: false, forceFinish: false, ...options.overrides },
  };
}

/** Puts one LoadedGeneration sample for a consumer at time `at` (default: the model's now). */
export function report(model: CloudWatchModel, consumer: string, generation: number, at?: number, secretName = SECRET_NAME): void {
  model.putMetricData({
    Namespace: DEFAULT_NAMESPACE,
    MetricData: [
      {
        MetricName: LOADED_GENERATION,
        Dimensions: loadedGenerationDimensions(secretName, consumer),
        Value: generation,
        Unit: 'None',
        Timestamp: at === undefined ? undefined : new Date(at),
      },
    ],
  });
}

/** The EMF records among written lines, parsed. */
export function emfRecords(lines: readonly string[]): Record<string, unknown>[] {
  return lines
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return undefined;
      }
    })
    .filter((r): r is Record<string, unknown> => r !== undefined && typeof r === 'object' && '_aws' in r);
}
