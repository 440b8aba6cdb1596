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
