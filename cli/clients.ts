/**
 * The AWS clients the CLI uses, created once. They follow the SDK's standard configuration chain:
 * AWS_REGION / AWS_PROFILE / credentials, and AWS_ENDPOINT_URL for a compatible endpoint.
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { RDSClient } from '@aws-sdk/client-rds';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

export interface CliClients {
  readonly sm: SecretsManagerClient;
  readonly cw: CloudWatchClient;
  readonly lambda: LambdaClient;
  readonly rds: RDSClient;
}

/** Default clients (one set per process). */
export function defaultClients(region?: string): CliClients {
  const config = region ? { region } : {};
  return { sm: new SecretsManagerClient(config), cw: new CloudWatchClient(config), lambda: new LambdaClient(config), rds: new RDSClient(config) };
}
