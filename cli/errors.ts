/**
 * One-line error messages for the operator: what is wrong and what to do, no stack trace.
 */
import { ConvergeError } from '../lambda/shared/errors';

/**
 * @example
 * catch (err) { process.stderr.write(`converge: ${describeCliError(err)}\n`); }
 */
export function describeCliError(err: unknown): string {
  const e = err as Error & { $metadata?: { httpStatusCode?: number }; code?: string };
  const name = e?.name ?? 'Error';
  const message = (e?.message ?? String(err)).split('\n')[0];
  if (err instanceof ConvergeError) return message;
  if (name === 'ResourceNotFoundException') return `not found: ${message}`;
  if (/AccessDenied|UnauthorizedOperation|NotAuthorized/i.test(name)) {
    return `missing permission (${name}): ${message}`;
  }
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    return 'no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with a role';
  }
  if (/Region is missing/i.test(message)) return 'no AWS region: set AWS_REGION or pass --region';
  if (e?.code === 'ECONNREFUSED' || e?.code === 'ENOTFOUND') return `cannot reach the AWS endpoint (${e.code}): check AWS_ENDPOINT_URL / network`;
  return `${name}: ${message}`;
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
    super(`${command} of ${secretName} not confirmed (the answer was not the secret's name). Nothing was changed.`);
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
