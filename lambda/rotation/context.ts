/**
 * What every rotation step receives: injected clients and configuration (so tests pass real SDK
 * clients under aws-sdk-client-mock and a real PostgreSQL), plus what the entry checks learned.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { RDSClient } from '@aws-sdk/client-rds';
import type { DescribeSecretCommandOutput, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { RotationConfig } from './config';
import type { Overrides } from './overrides';

/** The four steps of Secrets Manager's rotation protocol. */
export const STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;
export type Step = (typeof STEPS)[number];

/** The event Secrets Manager sends (RotationToken only on newer invocations). */
export interface RotationEvent {
  readonly Step: Step;
  readonly SecretId: string;
  readonly ClientRequestToken: string;
  readonly RotationToken?: string;
}

/** Time, injectable so the gate's waiting can be tested with a fake clock. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** Everything a step needs from outside, injected by the handler. */
export interface RotationDependencies {
  readonly secretsManager: SecretsManagerClient;
  readonly rds: RDSClient;
  readonly cloudWatch: CloudWatchClient;
  readonly logger: Logger;
  readonly config: RotationConfig;
  readonly clock: Clock;
  /** Milliseconds left in this invocation; bounds the promotion gate's wait. @default - unbounded */
  readonly remainingTimeMs?: () => number;
  /** Receives the function's EMF metric lines. @default - process.stdout (the Lambda log group) */
  readonly writeMetric?: (line: string) => void;
}

/** One step's invocation: dependencies plus the checked event. */
export interface StepContext extends RotationDependencies {
  readonly event: RotationEvent;
  /** Full ARN of the secret being rotated. */
  readonly secretArn: string;
  /** The secret's name (the `SecretName` metric dimension). */
  readonly secretName: string;
  readonly token: string;
  /** DescribeSecret output read by the entry checks. */
  readonly description: DescribeSecretCommandOutput;
  /** Operator intent for this rotation, from the secret's tags. */
  readonly overrides: Overrides;
}
