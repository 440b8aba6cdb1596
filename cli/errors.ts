/**
 * One-line error messages for the operator: what is wrong and what to do, no stack trace.
 */
import { ConvergeError } from '../lambda/shared/errors';

/**
 * Where an AWS call of the CLI went: attached to its errors by the clients of cli/clients.ts, so
 * the operator's one-line error names the service, region, endpoint host and profile involved.
 */
export interface AwsCallContext {
  /** e.g. `Secrets Manager`. */
  readonly service: string;
  /** undefined: no region was configured. */
  readonly region?: string;
  /** Host (and port) the call went to, or would have gone to: AWS_ENDPOINT_URL or the SDK's default. */
  readonly endpoint?: string;
  /** AWS_PROFILE; undefined: the SDK's default credential chain. */
  readonly profile?: string;
}

const AWS_CONTEXT = Symbol.for('converge.awsCallContext');

/**
 * Attaches `context` to an AWS error (non-enumerable, so logs and JSON of the error are unchanged).
 * The first context attached wins.
 *
 * @example
 * catch (err) { attachAwsContext(err, { service: 'Secrets Manager', region: 'us-east-1' }); throw err; }
 */
export function attachAwsContext(err: unknown, context: AwsCallContext): void {
  if (err === null || (typeof err !== 'object' && typeof err !== 'function')) return;
  if (Object.prototype.hasOwnProperty.call(err, AWS_CONTEXT) || !Object.isExtensible(err)) return;
  Object.defineProperty(err, AWS_CONTEXT, { value: context, enumerable: false });
}

/**
 * The {@link AwsCallContext} attached to `err`, if any.
 *
 * @example
 * const where = awsContextOf(err)?.region;
 */
export function awsContextOf(err: unknown): AwsCallContext | undefined {
  if (err === null || (typeof err !== 'object' && typeof err !== 'function')) return undefined;
  return (err as { [AWS_CONTEXT]?: AwsCallContext })[AWS_CONTEXT];
}

/** `Secrets Manager (region us-east-1, endpoint secretsmanager.us-east-1.amazonaws.com, profile default chain)`. */
function describeContext(c: AwsCallContext): string {
  return `${c.service} (region ${c.region ?? 'not set'}, endpoint ${c.endpoint ?? 'unresolved'}, profile ${c.profile ?? 'default chain'})`;
}

/** Error codes of a call that never reached the service (Node's socket and DNS errors). */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * The operator's one line for an error: what is wrong and what to check. AWS errors of the CLI's
 * clients (cli/clients.ts) name the service, region, endpoint host and profile involved.
 *
 * @example
 * catch (err) { process.stderr.write(`converge: ${describeCliError(err)}\n`); }
 * // converge: cannot reach Secrets Manager (region us-east-1, endpoint secretsmanager.us-east-1.amazonaws.com, profile default chain): connect ETIMEDOUT ...
 */
export function describeCliError(err: unknown): string {
  const e = err as Error & { $metadata?: { httpStatusCode?: number }; code?: string };
  const name = e?.name ?? 'Error';
  const message = (e?.message ?? String(err)).split('\n')[0];
  if (err instanceof ConvergeError) return message;
  const context = awsContextOf(err);
  const on = context ? ` on ${describeContext(context)}` : '';
  const unreachable =
    (e?.code !== undefined && UNREACHABLE_CODES.has(e.code)) || name === 'TimeoutError';
  if (name === 'ResourceNotFoundException')
    return context ? `not found${on}: ${message}` : `not found: ${message}`;
  if (/AccessDenied|UnauthorizedOperation|NotAuthorized/i.test(name)) {
    return `missing permission (${name})${on}: ${message}`;
  }
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    return `no AWS credentials found${context ? ` for ${describeContext(context)}` : ''}: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with a role`;
  }
  if (/Region is missing/i.test(message)) {
    return `no AWS region${context ? ` for ${describeContext(context)}` : ''}: set AWS_REGION or pass --region`;
  }
  if (unreachable) {
    return context
      ? `cannot reach ${describeContext(context)}: ${message}; check the network, the region and AWS_ENDPOINT_URL`
      : `cannot reach the AWS endpoint (${e.code ?? name}): check AWS_ENDPOINT_URL / network`;
  }
  return context ? `${name} from ${describeContext(context)}: ${message}` : `${name}: ${message}`;
}

/**
 * A destructive command (`abort`, `rotate --emergency`) was run without `--yes` where it cannot
 * ask: stdin is not a terminal (a script, CI). Nothing was changed; the CLI exits 2.
 *
 * @example
 * throw new ConfirmationRequiredError('abort', 'drops the waiting version of the secret');
 */
export class ConfirmationRequiredError extends ConvergeError {
  public constructor(command: string, what: string) {
    super(
      `${command} ${what} and asks for confirmation first, but stdin is not a terminal: pass --yes to confirm ` +
        '(scripts and CI must say --yes). Nothing was changed.',
    );
    this.name = 'ConfirmationRequiredError';
  }
}

/**
 * The operator did not confirm a destructive command at the prompt. Nothing was changed.
 *
 * @example
 * if (!(await confirm(name, plan))) throw new NotConfirmedError('abort', name);
 */
export class NotConfirmedError extends ConvergeError {
  public constructor(command: string, secretName: string) {
    super(
      `${command} of ${secretName} not confirmed (the answer was not the secret's name). Nothing was changed.`,
    );
    this.name = 'NotConfirmedError';
  }
}

/**
 * `rotate` on a secret whose automatic rotation is paused (RotationEnabled false, e.g. after
 * CancelRotateSecret during an incident): RotateSecret would turn it back on, so the CLI refuses
 * unless `--enable-rotation` is given. Nothing was changed.
 *
 * @example
 * if (!state.rotationEnabled && !options.enableRotation) throw new RotationPausedError(state.name);
 */
export class RotationPausedError extends ConvergeError {
  public constructor(secretName: string) {
    super(
      `automatic rotation of ${secretName} is paused (RotationEnabled is false, e.g. after CancelRotateSecret during an incident), ` +
        'and RotateSecret would turn it back on. Nothing was changed. If the reason for the pause is over, pass ' +
        '--enable-rotation to rotate now and resume the schedule; otherwise leave it paused.',
    );
    this.name = 'RotationPausedError';
  }
}
