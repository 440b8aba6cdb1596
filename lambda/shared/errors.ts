/**
 * Every typed error of converge, in one place.
 *
 * Rules every error here follows:
 * - the message names what is wrong (a field, a token, a consumer, a host) and never carries a
 *   secret value: passwords, full secret JSON and connection strings are not interpolated;
 * - `cause` is kept when there is one, but causes that may carry driver text are passed through
 *   {@link redactedCause} first;
 * - a subclass exists only where a caller needs to tell cases apart.
 */

/** Base class: `instanceof ConvergeError` catches everything this project throws on purpose. */
export class ConvergeError extends Error {
  public constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConvergeError';
  }
}

/** A secret's JSON is malformed, or a field is missing or has the wrong type. Names the field only. */
export class InvalidSecretError extends ConvergeError {
  public constructor(
    message: string,
    public readonly field?: string,
  ) {
    super(message);
    this.name = 'InvalidSecretError';
  }
}

/** The rotation event or the secret's state does not allow this step (wrong token, stage, disabled). */
export class RotationStateError extends ConvergeError {
  public constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RotationStateError';
  }
}

/**
 * The pending secret does not describe the alternate user of the current one on the same database:
 * refusing prevents a confused deputy from changing an unrelated role's password.
 */
export class ConfusedDeputyError extends ConvergeError {
  public constructor(message: string) {
    super(message);
    this.name = 'ConfusedDeputyError';
  }
}

/** The master secret named by `masterarn` is missing, unreadable or incomplete. */
export class MasterSecretError extends ConvergeError {
  public constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MasterSecretError';
  }
}

/** Connecting to PostgreSQL failed: unreachable, timed out, or refused. */
export class DatabaseConnectionError extends ConvergeError {
  public constructor(
    message: string,
    options?: { cause?: unknown; code?: string },
  ) {
    super(message, options);
    this.name = 'DatabaseConnectionError';
    this.code = options?.code;
  }
  /** SQLSTATE or Node error code of the underlying failure, when known. */
  public readonly code?: string;
}

/** The server rejected the credential (SQLSTATE 28P01 / 28000). */
export class AuthenticationFailedError extends DatabaseConnectionError {
  public constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, options);
    this.name = 'AuthenticationFailedError';
  }
}

/** TLS was required (the secret's `ssl` mode) and the server could not provide or prove it. */
export class TlsRequiredError extends DatabaseConnectionError {
  public constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, options);
    this.name = 'TlsRequiredError';
  }
}

/** A SQL statement run by the rotation failed (for example, missing privileges). */
export class DatabaseOperationError extends ConvergeError {
  public constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, options);
    this.name = 'DatabaseOperationError';
    this.code = options?.code;
  }
  public readonly code?: string;
}

/** The pending credential logs in but cannot do what the current one can. */
export class PrivilegeMismatchError extends ConvergeError {
  public constructor(message: string) {
    super(message);
    this.name = 'PrivilegeMismatchError';
  }
}

/** Function, construct or CLI configuration is invalid (environment, consumer registry, props). */
export class ConfigurationError extends ConvergeError {
  public constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigurationError';
  }
}

/**
 * A metric report (an EMF line, or the values a report is built from) does not follow the metric
 * contract (docs/metric-contract.md). Names the field, the rule and the value received (reports
 * carry no secret values).
 *
 * @example
 * throw new InvalidReportError('LoadedGeneration must be a non-negative integer, got -1', 'LoadedGeneration');
 */
export class InvalidReportError extends ConvergeError {
  public constructor(
    message: string,
    /** Where in the document, e.g. `_aws.CloudWatchMetrics[0].Dimensions` or `SecretName`. */
    public readonly field?: string,
  ) {
    super(message);
    this.name = 'InvalidReportError';
  }
}

/** An AWS API call failed in a way the step cannot recover from (throttling, 5xx, access denied). */
export class AwsCallError extends ConvergeError {
  public constructor(
    public readonly operation: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AwsCallError';
  }
}

/** What the promotion gate knows about one consumer that has not converged. */
export interface StaleConsumer {
  /** Registered consumer name. */
  readonly consumer: string;
  /**
   * `stale`: the lowest generation the consumer reported in its freshness window (the laggard);
   * `ahead`: the highest generation a process reported in its freshness window that is newer than
   * AWSCURRENT's and not this rotation's pending one (an aborted rotation's burnt credential);
   * `silent`: the generation of its newest data point before it went silent, or undefined when it
   * never reported within the read window; `unverified`: undefined.
   */
  readonly lastGeneration?: number;
  /**
   * Why it blocks: reporting an older generation, a process ahead of the current generation on a
   * credential no rotation stands behind (revocation guard only), silent (no fresh data points), or
   * unverified (CloudWatch could not be read, so nothing is known: the gates fail closed).
   */
  readonly reason: 'stale' | 'ahead' | 'silent' | 'unverified';
}

/**
 * finishSecret is held: registered `live` consumers have not reported the pending generation.
 * Thrown with no side effects; the alarm re-drive or the next retry completes the rotation.
 */
export class ConvergencePendingError extends ConvergeError {
  /** Replica regions whose replication status is not InSync (empty without replicas). */
  public readonly replicasNotInSync: readonly string[];

  public constructor(
    public readonly pendingGeneration: number,
    public readonly blocking: readonly StaleConsumer[],
    detail?: string,
    options?: { cause?: unknown; replicasNotInSync?: readonly string[] },
  ) {
    const replicas = options?.replicasNotInSync ?? [];
    const parts: string[] = [];
    if (blocking.length > 0 || replicas.length === 0) {
      parts.push(
        `${blocking.length} consumer(s) have not reported generation ${pendingGeneration}: ` + blocking.map(describeStale).join(', '),
      );
    }
    if (replicas.length > 0) parts.push(`replication not InSync in ${replicas.join(', ')}`);
    super(`Promotion held: ${parts.join('; ')}` + (detail ? `. ${detail}` : ''), { cause: options?.cause });
    this.name = 'ConvergencePendingError';
    this.replicasNotInSync = replicas;
  }
}

/**
 * setSecret refuses to overwrite the AWSPREVIOUS user's password: something still uses it.
 */
export class RevocationBlockedError extends ConvergeError {
  public constructor(
    public readonly username: string,
    public readonly blocking: readonly StaleConsumer[],
    public readonly sessions: number,
    options?: {
      cause?: unknown;
      sessionDetails?: readonly { pid: number; applicationName: string; member?: string }[];
      /** Who holds the sessions, by consumer and process (lambda/rotation/gates/session-groups.ts); replaces the pid list. */
      sessionSummary?: string;
    },
  ) {
    const parts: string[] = [];
    if (blocking.length > 0) {
      parts.push(`consumers not proven off that user (on another generation than the current one, silent, or unverified): ${blocking.map(describeStale).join(', ')}`);
    }
    if (sessions > 0 && options?.sessionSummary) {
      parts.push(`${sessions} open session(s) of "${username}": ${options.sessionSummary}`);
    } else if (sessions > 0) {
      const details = (options?.sessionDetails ?? [])
        .slice(0, 5)
        .map((d) => `pid ${d.pid} ${JSON.stringify(d.applicationName)}${d.member && d.member !== 'primary' ? ` on ${d.member}` : ''}`);
      const more = sessions > details.length && details.length > 0 ? ', ...' : '';
      parts.push(
        `${sessions} open session(s) of that user in pg_stat_activity` + (details.length > 0 ? ` (${details.join(', ')}${more})` : ''),
      );
    }
    super(`Revocation blocked for user "${username}": ${parts.join('; ')}`, { cause: options?.cause });
    this.name = 'RevocationBlockedError';
  }
}

/**
 * `converge rotate` did not start a rotation: the next rotation's revocation guard would hold on
 * these consumers, and they did not move within the wait. Nothing was changed.
 */
export class RotationWouldBlockError extends ConvergeError {
  public constructor(
    public readonly secret: string,
    public readonly blocking: readonly StaleConsumer[],
    message: string,
  ) {
    super(message);
    this.name = 'RotationWouldBlockError';
  }
}

/**
 * finishSecret will not promote: while it waited, the rotation was aborted (AWSPENDING left the
 * token) or superseded (AWSCURRENT moved to another version). Nothing was changed.
 */
export class RotationAbortedError extends ConvergeError {
  public constructor(message: string) {
    super(message);
    this.name = 'RotationAbortedError';
  }
}

/**
 * The secret's `ownerRole` cannot take over from the current user: the role is missing, unsafe
 * (the master, a login user of the pair, more role attributes), or cannot reach what the current
 * user can. The message names what is missing and the SQL an operator runs to fix it. Nothing was
 * changed.
 */
export class OwnerRoleError extends ConvergeError {
  public constructor(message: string) {
    super(message);
    this.name = 'OwnerRoleError';
  }
}

/**
 * The master role lacks a privilege the rotation needs (on PostgreSQL 16 and later, CREATEROLE
 * alone no longer lets it grant or alter roles it did not create: it needs ADMIN OPTION on them).
 * The message names the role and the GRANT to run. Nothing was changed.
 */
export class MasterPrivilegeError extends ConvergeError {
  public constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MasterPrivilegeError';
  }
}

/**
 * A member of the database (an Aurora reader, a read replica) could not be checked for sessions of
 * the user about to be revoked: the revocation guard fails closed and names the member.
 */
export class MemberCheckError extends ConvergeError {
  public constructor(
    public readonly member: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MemberCheckError';
  }
}

/** The consumer library could not obtain any credential (no last good value to fall back on). */
export class SecretUnavailableError extends ConvergeError {
  public constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SecretUnavailableError';
  }
}

/**
 * A secret fetch of the consumer library did not finish within its `fetchTimeoutMs`. The request
 * was cancelled and the fetch counts as a failed refresh: the last good credential stays in use.
 *
 * @example
 * pool.on('reloadFailure', (err) => {
 *   if (err instanceof SecretFetchTimeoutError) log.warn(`Secrets Manager did not answer within ${err.timeoutMs} ms`);
 * });
 */
export class SecretFetchTimeoutError extends ConvergeError {
  public constructor(
    public readonly timeoutMs: number,
    message: string,
  ) {
    super(message);
    this.name = 'SecretFetchTimeoutError';
  }
}

/**
 * PostgreSQL rejected the consumer pool's credential (SQLSTATE 28P01/28000) and refreshing the
 * secret brought no other one. `loginAttempted` is false when the pool failed fast without a login
 * attempt, because the same credential was rejected moments before (`authFailureBackoffMs`).
 * Names the secret, the user and the generation; never the password.
 *
 * @example
 * try {
 *   await pool.query('SELECT 1');
 * } catch (err) {
 *   if (err instanceof CredentialRejectedError) alert(`${err.secretName}: generation ${err.generation} no longer logs in`);
 *   throw err;
 * }
 */
export class CredentialRejectedError extends AuthenticationFailedError {
  public constructor(
    public readonly secretName: string,
    public readonly username: string,
    public readonly generation: number,
    public readonly loginAttempted: boolean,
    message: string,
    options?: { cause?: unknown; code?: string },
  ) {
    super(message, options);
    this.name = 'CredentialRejectedError';
  }
}

function describeStale(s: StaleConsumer): string {
  switch (s.reason) {
    case 'silent':
      return s.lastGeneration === undefined
        ? `${s.consumer} (silent: no fresh data points)`
        : `${s.consumer} (silent: no fresh data points; last seen on generation ${s.lastGeneration})`;
    case 'unverified':
      return `${s.consumer} (unverified: CloudWatch could not be read)`;
    case 'ahead':
      return (
        `${s.consumer} (a process still holds generation ${s.lastGeneration}, the credential of an aborted rotation; ` +
        'not broken: live consumers fall back to AWSCURRENT on their next refresh)'
      );
    default:
      return `${s.consumer} (last reported generation ${s.lastGeneration})`;
  }
}

/**
 * Keeps only the parts of a driver or SDK error that are safe to log: its name, code and a message
 * with anything that looks like a credential removed. Use it before passing an error as `cause`
 * when the error may have seen a password (a failed connection string parse, for example).
 *
 * @example
 * throw new DatabaseConnectionError('cannot reach db', { cause: redactedCause(err, [password]) });
 */
export function redactedCause(err: unknown, secrets: readonly string[] = []): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  let message = e.message;
  for (const s of secrets) {
    if (s) message = message.split(s).join('[redacted]');
  }
  const safe = new Error(message);
  safe.name = e.name;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') (safe as Error & { code?: string }).code = code;
  return safe;
}

/**
 * The consumer library's pool was used after `end()` (the `pg.Pool` equivalent is a plain Error;
 * a type lets shutdown code tell it apart from a database failure).
 */
export class PoolEndedError extends ConvergeError {
  public constructor(message = 'Cannot use a pool after calling end on the pool') {
    super(message);
    this.name = 'PoolEndedError';
  }
}
