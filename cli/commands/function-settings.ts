/**
 * What the CLI needs from the rotation function's configuration: the consumer registry, the
 * metric namespace and the gate's settings, read from its environment with the function's own
 * parser (lambda/rotation/config.ts `loadConfig`), so the CLI and the function cannot read them
 * differently. Needs `lambda:GetFunctionConfiguration` (part of the operator grant).
 */
import { GetFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import { loadConfig, type GateConfig } from '../../lambda/rotation/config';
import type { ConsumerRegistration } from '../../lambda/shared/registry';
import type { CliClients } from '../clients';

export interface FunctionSettings {
  readonly registry: readonly ConsumerRegistration[];
  readonly namespace: string;
  readonly gate: GateConfig;
}

/**
 * The settings of `functionArn`, or the function's defaults (no consumers) when there is none.
 *
 * @throws {@link ConfigurationError} when the function's environment is invalid (as the function would)
 *
 * @example
 * const { registry, namespace, gate } = await readFunctionSettings(clients, state.rotationLambdaArn);
 */
export async function readFunctionSettings(clients: CliClients, functionArn: string | undefined): Promise<FunctionSettings> {
  const env = functionArn
    ? ((await clients.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: functionArn }))).Environment?.Variables ?? {})
    : {};
  // The CA bundle is the function's business, not the CLI's: no file is looked for.
  const config = loadConfig(env, () => false);
  return { registry: config.consumers, namespace: config.metricNamespace, gate: config.gate };
}
