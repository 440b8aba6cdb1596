/**
 * The metric contract (DESIGN.md section 5), one definition for the consumer reporter, the gates,
 * the CDK alarm/dashboard and the CLI.
 */

/** Default CloudWatch namespace. */
export const DEFAULT_NAMESPACE = 'SecretRotation';

/** The credential generation a process uses for new connections. Unit None. Gate reads Minimum and SampleCount. */
export const LOADED_GENERATION = 'LoadedGeneration';
/** Failed reloads of the secret (fetch, parse or validation). Unit Count. */
export const RELOAD_FAILURES = 'ReloadFailures';
/** Age in seconds of the oldest open pooled connection. Unit Seconds. */
export const POOL_AGE_SECONDS_MAX = 'PoolAgeSecondsMax';

/** Dimension names of every converge metric. */
export const DIMENSION_SECRET = 'SecretName';
export const DIMENSION_CONSUMER = 'Consumer';

/**
 * Reporting period in seconds: every process of a consumer emits each metric at least this often.
 * 60 s is CloudWatch's standard resolution.
 */
export const REPORT_PERIOD_SECONDS = 60;

/**
 * The `SecretName` dimension for a secret: its name, never its ARN (the ARN's random suffix would
 * change if the secret were recreated, and names are what operators type).
 *
 * @example
 * secretNameDimension('arn:aws:secretsmanager:us-east-1:1:secret:app-db-AbCdEf'); // 'app-db'
 */
export function secretNameDimension(secretIdOrArn: string): string {
  const m = /^arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:(.+)-[A-Za-z0-9]{6}$/.exec(secretIdOrArn);
  return m ? m[1] : secretIdOrArn;
}

// Metrics the rotation function emits (EMF through its log group), dimension {SecretName}. The CDK
// alarms and dashboard are built on these names.

/** Generation of the AWSPENDING version while a rotation waits at the promotion gate. Unit None. */
export const PENDING_GENERATION = 'PendingGeneration';
/** A rotation completed (finishSecret moved AWSCURRENT). Unit Count. */
export const ROTATIONS_COMPLETED = 'RotationsCompleted';
/** A rotation step failed (any typed error, ConvergencePendingError included). Unit Count. */
export const ROTATION_STEP_FAILURES = 'RotationStepFailures';
/** finishSecret was held by the promotion gate at the end of an invocation. Unit Count. */
export const CONVERGENCE_PENDING = 'ConvergencePending';
/** Seconds finishSecret waited at the promotion gate before promoting. Unit Seconds. */
export const GATE_WAIT_SECONDS = 'GateWaitSeconds';
