/**
 * Small helpers around Secrets Manager calls: typed errors for failures the step cannot recover
 * from, and `undefined` for the one "not found" the protocol expects (no AWSPENDING value yet).
 */
import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  type GetSecretValueCommandInput,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { AwsCallError, ConvergeError } from '../shared/errors';

/**
 * Runs an AWS call; any failure becomes an {@link AwsCallError} naming the operation and the
 * service's error name (throttling, access denied, 5xx), with the SDK error as cause.
 *
 * @example
 * const out = await awsCall('DescribeSecret', () => sm.send(new DescribeSecretCommand({ SecretId })));
 */
export async function awsCall<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ConvergeError) throw err;
    const e = err as Error & { $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode ? ` (HTTP ${e.$metadata.httpStatusCode})` : '';
    throw new AwsCallError(operation, `${operation} failed: ${e.name ?? 'Error'}${status}: ${e.message}`, { cause: err });
  }
}

/**
 * GetSecretValue that returns undefined when the version or stage has no value
 * (ResourceNotFoundException), and throws {@link AwsCallError} for anything else.
 *
 * @example
 * const pending = await getSecretString(sm, { SecretId, VersionId: token, VersionStage: 'AWSPENDING' });
 */
export async function getSecretString(
  client: SecretsManagerClient,
  input: GetSecretValueCommandInput,
): Promise<string | undefined> {
  try {
    const out = await client.send(new GetSecretValueCommand(input));
    return out.SecretString;
  } catch (err) {
    if (err instanceof ResourceNotFoundException) return undefined;
    return awsCall('GetSecretValue', () => Promise.reject(err));
  }
}
