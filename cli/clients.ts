/**
 * The AWS clients the CLI uses, created once. They follow the SDK's standard configuration chain:
 * AWS_REGION / AWS_PROFILE / credentials, and AWS_ENDPOINT_URL for a compatible endpoint.
 *
 * Every client marks the errors of its calls with where they went (service, region, endpoint host,
 * profile; see {@link AwsCallContext}), so the one-line error the operator reads says which account
 * setting to check (cli/errors.ts `describeCliError`).
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { RDSClient } from '@aws-sdk/client-rds';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { attachAwsContext, type AwsCallContext } from './errors';

export interface CliClients {
  readonly sm: SecretsManagerClient;
  readonly cw: CloudWatchClient;
  readonly lambda: LambdaClient;
  readonly rds: RDSClient;
}

/**
 * Default clients (one set per process), each marking its errors with {@link AwsCallContext}.
 *
 * @example
 * const { sm } = defaultClients('eu-west-1');
 * await sm.send(new DescribeSecretCommand({ SecretId: 'orders-app' }));
 */
export function defaultClients(region?: string): CliClients {
  const config = region ? { region } : {};
  return {
    sm: withCallContext(new SecretsManagerClient(config), 'Secrets Manager', 'SECRETS_MANAGER'),
    cw: withCallContext(new CloudWatchClient(config), 'CloudWatch', 'CLOUDWATCH'),
    lambda: withCallContext(new LambdaClient(config), 'Lambda', 'LAMBDA'),
    rds: withCallContext(new RDSClient(config), 'RDS', 'RDS'),
  };
}

/** The parts of an SDK v3 client this module uses (the same for every service). */
interface SdkClient {
  readonly config: {
    readonly region: () => Promise<string>;
    readonly endpointProvider: (params: { Region?: string }) => { url: URL };
  };
  readonly middlewareStack: {
    add: (
      middleware: (
        next: (args: unknown) => Promise<unknown>,
        context: { endpointV2?: { url: URL } },
      ) => (args: unknown) => Promise<unknown>,
      options: { step: 'initialize'; name: string },
    ) => void;
  };
}

/**
 * Adds a middleware to `client` that attaches an {@link AwsCallContext} to every error of its calls.
 * `envName` is the service's part of its own endpoint variable (AWS_ENDPOINT_URL_SECRETS_MANAGER).
 *
 * @example
 * const sm = withCallContext(new SecretsManagerClient({}), 'Secrets Manager', 'SECRETS_MANAGER');
 */
export function withCallContext<C>(client: C, service: string, envName: string): C {
  const sdk = client as unknown as SdkClient;
  sdk.middlewareStack.add(
    (next, context) => async (args) => {
      try {
        return await next(args);
      } catch (err) {
        attachAwsContext(err, await callContext(sdk, service, envName, context.endpointV2?.url));
        throw err;
      }
    },
    { step: 'initialize', name: 'convergeErrorContext' },
  );
  return client;
}

/** Where a call went: the endpoint it resolved, or (when it failed before) the one it would use. */
async function callContext(
  client: SdkClient,
  service: string,
  envName: string,
  resolved?: URL,
): Promise<AwsCallContext> {
  let region: string | undefined;
  try {
    region = await client.config.region();
  } catch {
    region = undefined;
  }
  let endpoint = resolved?.host;
  const configured = process.env[`AWS_ENDPOINT_URL_${envName}`] || process.env.AWS_ENDPOINT_URL;
  if (!endpoint && configured) endpoint = hostOf(configured);
  if (!endpoint && region) {
    try {
      endpoint = client.config.endpointProvider({ Region: region }).url.host;
    } catch {
      endpoint = undefined;
    }
  }
  return { service, region, endpoint, profile: process.env.AWS_PROFILE || undefined };
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
