/**
 * A {@link SecretSource} backed by AWS Secrets Manager.
 *
 * Each fetch costs one DescribeSecret (which version carries which label) and one GetSecretValue
 * per version not seen before, read by VersionId: a version's value never changes, so a refresh
 * when nothing rotated reads no secret value at all. IAM: `secretsmanager:DescribeSecret` and
 * `secretsmanager:GetSecretValue` on the secret (plus `kms:Decrypt` for a customer managed key).
 *
 * No call can hang: every request carries the caller's `AbortSignal` (the refreshing cache aborts a
 * fetch after its `fetchTimeoutMs`), and a client this source creates has connection and request
 * timeouts ({@link DEFAULT_HTTP_TIMEOUTS}); the SDK's own default has neither.
 */
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
  type SecretsManagerClientConfig,
} from '@aws-sdk/client-secrets-manager';
import { AwsCallError, ConvergeError, SecretUnavailableError } from '../lambda/shared/errors';
import { secretNameDimension } from '../lambda/shared/metric-contract';
import { AWSCURRENT, AWSPENDING, parseSecret } from '../lambda/shared/secret';
import type { SecretFetchOptions, SecretSnapshot, SecretSource, SecretVersion } from './secret-source';

/**
 * HTTP timeouts of a Secrets Manager client this library creates (the shared default client, or one
 * built from `clientConfig` without a `requestHandler`): `connectionTimeout` bounds the TCP connect,
 * `requestTimeout` one attempt until the response arrives, and `throwOnRequestTimeout` makes that
 * an error (a `TimeoutError`, which the SDK retries) rather than a logged warning. The refreshing
 * cache's `fetchTimeoutMs` bounds the whole fetch, retries included.
 *
 * @example
 * // Your own client, with the same timeouts:
 * const client = new SecretsManagerClient({ region: 'eu-west-1', requestHandler: { ...DEFAULT_HTTP_TIMEOUTS } });
 * const source = new SecretsManagerSource({ awsSdkV3Client: client, secretId: 'prod/orders-db' });
 */
export const DEFAULT_HTTP_TIMEOUTS = {
  connectionTimeout: 2_000,
  requestTimeout: 3_000,
  throwOnRequestTimeout: true,
} as const;

interface SecretsManagerSourceBaseOptions {
  /** Name or ARN of the database secret. */
  readonly secretId: string;
  /**
   * Also read AWSPENDING while a rotation is in progress, so the credential can be adopted before
   * finishSecret (consumers registered with mode `live`).
   *
   * @default false
   */
  readonly includePending?: boolean;
  /**
   * The `SecretName` metric dimension.
   *
   * @default - the secret's name, derived from `secretId` (an ARN's random suffix removed)
   */
  readonly secretName?: string;
}

interface WithClient extends SecretsManagerSourceBaseOptions {
  /**
   * A client you configured (region, credentials, retries, endpoint). Give it connection and
   * request timeouts (see {@link DEFAULT_HTTP_TIMEOUTS}); the fetch is bounded by the refreshing
   * cache's `fetchTimeoutMs` either way, and its requests are cancelled then.
   */
  readonly awsSdkV3Client: SecretsManagerClient;
  readonly clientConfig?: never;
}

interface WithClientConfig extends SecretsManagerSourceBaseOptions {
  /**
   * Configuration for a client this source creates. Without a `requestHandler` of yours, the client
   * gets {@link DEFAULT_HTTP_TIMEOUTS}.
   *
   * @default - a client with the SDK's default configuration plus {@link DEFAULT_HTTP_TIMEOUTS},
   * shared by every source in the process
   */
  readonly clientConfig?: SecretsManagerClientConfig;
  readonly awsSdkV3Client?: never;
}

/** Options of {@link SecretsManagerSource}: pass `awsSdkV3Client` or `clientConfig`, not both. */
export type SecretsManagerSourceOptions = WithClient | WithClientConfig;

let defaultClient: SecretsManagerClient | undefined;

/** The process-wide default client, created on first use. */
function sharedClient(): SecretsManagerClient {
  defaultClient ??= createClient({});
  return defaultClient;
}

/** A client with {@link DEFAULT_HTTP_TIMEOUTS} unless the configuration brings its own request handler. */
function createClient(config: SecretsManagerClientConfig): SecretsManagerClient {
  return new SecretsManagerClient({ ...config, requestHandler: config.requestHandler ?? { ...DEFAULT_HTTP_TIMEOUTS } });
}

/**
 * Reads a database secret from Secrets Manager: AWSCURRENT always, AWSPENDING while a rotation is
 * in progress when `includePending` is set.
 *
 * @example
 * const source = new SecretsManagerSource({ secretId: 'prod/orders-db', includePending: true });
 * const { current, pending } = await source.fetch();
 * console.log(current.username, current.generation, pending?.generation);
 */
export class SecretsManagerSource implements SecretSource {
  public readonly secretName: string;
  private readonly secretId: string;
  private readonly includePending: boolean;
  private readonly client: SecretsManagerClient;
  /** Parsed versions by VersionId; pruned to the versions of the latest snapshot. */
  private readonly versions = new Map<string, SecretVersion>();

  public constructor(options: SecretsManagerSourceOptions) {
    if (!options.secretId) {
      throw new ConvergeError(`SecretsManagerSource needs a secretId, got ${JSON.stringify(options.secretId)}`);
    }
    if (options.awsSdkV3Client !== undefined && options.clientConfig !== undefined) {
      throw new ConvergeError('SecretsManagerSource takes awsSdkV3Client or clientConfig, not both');
    }
    this.secretId = options.secretId;
    this.includePending = options.includePending ?? false;
    this.secretName = options.secretName ?? secretNameDimension(options.secretId);
    this.client =
      options.awsSdkV3Client ?? (options.clientConfig ? createClient(options.clientConfig) : sharedClient());
  }

  /**
   * DescribeSecret, then GetSecretValue by VersionId for versions not read before. `options.signal`
   * is passed to every request (`abortSignal`): aborting it cancels the request in flight.
   *
   * @throws {@link AwsCallError} when Secrets Manager fails (throttling, 5xx, network, access denied,
   * a timeout) or the request was aborted
   * @throws {@link InvalidSecretError} when a version's JSON is not a valid database secret
   * @throws {@link SecretUnavailableError} when no version carries AWSCURRENT
   */
  public async fetch(_previous?: SecretSnapshot, options: SecretFetchOptions = {}): Promise<SecretSnapshot> {
    const http = { abortSignal: options.signal };
    const described = await this.call('DescribeSecret', () =>
      this.client.send(new DescribeSecretCommand({ SecretId: this.secretId }), http),
    );
    const stages = Object.entries(described.VersionIdsToStages ?? {});
    const currentId = stages.find(([, labels]) => labels.includes(AWSCURRENT))?.[0];
    if (currentId === undefined) {
      throw new SecretUnavailableError(`secret "${this.secretName}" has no version labelled ${AWSCURRENT}`);
    }
    // AWSPENDING left on the AWSCURRENT version after finishSecret means no rotation is in progress.
    const pendingId = this.includePending
      ? stages.find(([, labels]) => labels.includes(AWSPENDING) && !labels.includes(AWSCURRENT))?.[0]
      : undefined;
    const current = await this.version(currentId, AWSCURRENT, http);
    const pending = pendingId === undefined ? undefined : await this.version(pendingId, AWSPENDING, http);
    for (const id of this.versions.keys()) {
      if (id !== currentId && id !== pending?.versionId) this.versions.delete(id);
    }
    return pending ? { current, pending } : { current };
  }

  /**
   * One version, from the cache or by VersionId. A pending version without a value yet (RotateSecret
   * has created it, createSecret has not written it) is returned as undefined: not a failure.
   */
  private async version(versionId: string, label: typeof AWSCURRENT, http: HttpOptions): Promise<SecretVersion>;
  private async version(versionId: string, label: typeof AWSPENDING, http: HttpOptions): Promise<SecretVersion | undefined>;
  private async version(versionId: string, label: string, http: HttpOptions): Promise<SecretVersion | undefined> {
    const cached = this.versions.get(versionId);
    if (cached) return cached;
    let text: string | undefined;
    try {
      const out = await this.client.send(new GetSecretValueCommand({ SecretId: this.secretId, VersionId: versionId }), http);
      text = out.SecretString;
    } catch (err) {
      if (label === AWSPENDING && errorName(err) === 'ResourceNotFoundException') return undefined;
      throw awsError('GetSecretValue', this.secretName, err);
    }
    const parsed: SecretVersion = {
      ...parseSecret(text, `${label} version of secret "${this.secretName}"`),
      versionId,
    };
    this.versions.set(versionId, parsed);
    return parsed;
  }

  private async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw awsError(operation, this.secretName, err);
    }
  }
}

/** Per-request options of `client.send`. */
interface HttpOptions {
  readonly abortSignal?: AbortSignal;
}

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

/** SDK errors carry no secret values (requests and responses are not echoed), so the cause is kept. */
function awsError(operation: string, secretName: string, err: unknown): AwsCallError {
  const name = errorName(err) ?? 'Error';
  const status = (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  return new AwsCallError(
    operation,
    `${operation} for secret "${secretName}" failed: ${name}${status ? ` (HTTP ${status})` : ''}`,
    { cause: err },
  );
}
