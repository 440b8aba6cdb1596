/**
 * The rotation function's configuration, read once per cold start from environment variables set
 * by the CDK construct. Invalid values fail the cold start with a {@link ConfigurationError}.
 */
import { ConfigurationError } from '../shared/errors';
import { DEFAULT_NAMESPACE } from '../shared/metric-contract';
import { parseRegistryJson, type ConsumerRegistration } from '../shared/registry';

/** Where Lambda's Node.js runtime ships the RDS certificate authorities. */
export const LAMBDA_CA_BUNDLE = '/var/runtime/ca-cert.pem';

/**
 * Characters left out of generated passwords by default: the ones that break libpq connection
 * URIs (`:/?#[]@%&+`), shell and JSON quoting (`"'\`` `$`), and space. What remains still gives
 * about 5.8 bits per character, so the default 32 characters carry about 186 bits.
 */
export const DEFAULT_EXCLUDE_CHARACTERS = ' "\'\\`$/@:?#[]%&+';

/** Environment variable names (the contract with the CDK construct). */
export const ENV = {
  passwordLength: 'CONVERGE_PASSWORD_LENGTH',
  excludeCharacters: 'CONVERGE_EXCLUDE_CHARACTERS',
  caBundle: 'CONVERGE_CA_BUNDLE',
  connectTimeoutMs: 'CONVERGE_CONNECT_TIMEOUT_MS',
  statementTimeoutMs: 'CONVERGE_STATEMENT_TIMEOUT_MS',
  consumers: 'CONVERGE_CONSUMERS',
  metricNamespace: 'CONVERGE_METRIC_NAMESPACE',
  gateMaxWaitSeconds: 'CONVERGE_GATE_MAX_WAIT_SECONDS',
  gatePollSeconds: 'CONVERGE_GATE_POLL_SECONDS',
  gateLookbackSeconds: 'CONVERGE_GATE_LOOKBACK_SECONDS',
} as const;

export interface GateConfig {
  /**
   * Longest time finishSecret polls CloudWatch within one invocation before it throws
   * ConvergencePendingError. Kept below the Lambda timeout by the handler.
   */
  readonly maxWaitSeconds: number;
  /** Pause between two evaluations while waiting. */
  readonly pollSeconds: number;
  /** How far back the gate reads data points (also bounded by each consumer's maxStalenessSeconds). */
  readonly lookbackSeconds: number;
}

export interface RotationConfig {
  readonly passwordLength: number;
  readonly excludeCharacters: string;
  /** CA bundle for `verify-full`/`verify-ca`; undefined uses Node's trust store. */
  readonly caBundlePath?: string;
  readonly connectTimeoutMs: number;
  readonly statementTimeoutMs: number;
  readonly consumers: readonly ConsumerRegistration[];
  readonly metricNamespace: string;
  readonly gate: GateConfig;
}

/**
 * Reads and validates the configuration.
 *
 * @example
 * const config = loadConfig(process.env);
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>, fileExists: (p: string) => boolean = defaultExists): RotationConfig {
  const passwordLength = int(env, ENV.passwordLength, 32, 16, 4096);
  const caFromEnv = env[ENV.caBundle];
  const rawConsumers = env[ENV.consumers];
  const consumers: ConsumerRegistration[] = rawConsumers ? parseRegistryJson(rawConsumers, ENV.consumers) : [];
  return {
    passwordLength,
    excludeCharacters: env[ENV.excludeCharacters] ?? DEFAULT_EXCLUDE_CHARACTERS,
    // An explicitly configured bundle must exist (it fails at connect with a clear error otherwise);
    // the Lambda default is used only where it is present.
    caBundlePath: caFromEnv || (fileExists(LAMBDA_CA_BUNDLE) ? LAMBDA_CA_BUNDLE : undefined),
    connectTimeoutMs: int(env, ENV.connectTimeoutMs, 5_000, 100, 60_000),
    statementTimeoutMs: int(env, ENV.statementTimeoutMs, 10_000, 100, 300_000),
    consumers,
    metricNamespace: env[ENV.metricNamespace] || DEFAULT_NAMESPACE,
    gate: {
      maxWaitSeconds: int(env, ENV.gateMaxWaitSeconds, 600, 0, 900),
      pollSeconds: int(env, ENV.gatePollSeconds, 20, 1, 300),
      lookbackSeconds: int(env, ENV.gateLookbackSeconds, 900, 60, 86_400 * 7),
    },
  };
}

function int(env: Readonly<Record<string, string | undefined>>, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigurationError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function defaultExists(path: string): boolean {
  try {
    require('node:fs').accessSync(path);
    return true;
  } catch {
    return false;
  }
}
