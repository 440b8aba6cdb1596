/**
 * An in-memory model of the two AWS Lambda calls the CLI makes: GetFunctionConfiguration (to read
 * the rotation function's consumer registry from its environment) and Invoke (to re-drive
 * finishSecret). Installed behind the real LambdaClient with aws-sdk-client-mock.
 */
import {
  GetFunctionConfigurationCommand,
  InvokeCommand,
  LambdaClient,
  ResourceNotFoundException,
  type GetFunctionConfigurationCommandInput,
  type GetFunctionConfigurationCommandOutput,
  type InvokeCommandInput,
  type InvokeCommandOutput,
} from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';

const meta = { $metadata: {} };

interface LocalFunction {
  readonly arn: string;
  readonly handler: (event: unknown) => Promise<unknown>;
  readonly environment: Record<string, string>;
}

/**
 * Functions by ARN or name.
 *
 * @example
 * const lambda = new LambdaModel();
 * lambda.register(arn, handler, { CONVERGE_CONSUMERS: '[]' });
 * installLambdaModel(lambda);
 */
export class LambdaModel {
  private readonly functions = new Map<string, LocalFunction>();

  public register(arn: string, handler: (event: unknown) => Promise<unknown>, environment: Record<string, string> = {}): void {
    this.functions.set(arn, { arn, handler, environment });
  }

  public getFunctionConfiguration(input: GetFunctionConfigurationCommandInput): GetFunctionConfigurationCommandOutput {
    const fn = this.find(input.FunctionName);
    return {
      FunctionArn: fn.arn,
      FunctionName: fn.arn.split(':').pop(),
      Runtime: 'nodejs22.x',
      Environment: { Variables: { ...fn.environment } },
      ...meta,
    };
  }

  /** Synchronous invocations return the result or Lambda's error payload with FunctionError. */
  public async invoke(input: InvokeCommandInput): Promise<InvokeCommandOutput> {
    const fn = this.find(input.FunctionName);
    const payload = input.Payload ? JSON.parse(Buffer.from(input.Payload as Uint8Array).toString('utf8')) : {};
    const encode = (v: unknown) => new Uint8Array(Buffer.from(JSON.stringify(v ?? null)));
    if (input.InvocationType === 'Event') {
      void fn.handler(payload).catch(() => undefined);
      return { StatusCode: 202, ...meta } as InvokeCommandOutput;
    }
    try {
      const result = await fn.handler(payload);
      return { StatusCode: 200, Payload: encode(result), ...meta } as InvokeCommandOutput;
    } catch (err) {
      const e = err as Error;
      return {
        StatusCode: 200,
        FunctionError: 'Unhandled',
        Payload: encode({ errorType: e.name, errorMessage: e.message }),
        ...meta,
      } as InvokeCommandOutput;
    }
  }

  private find(name: string | undefined): LocalFunction {
    const fn = name ? (this.functions.get(name) ?? [...this.functions.values()].find((f) => f.arn.endsWith(`:${name}`))) : undefined;
    if (!fn) throw new ResourceNotFoundException({ message: `Function not found: ${name}`, ...meta, Type: 'User' });
    return fn;
  }
}

/**
 * Answers every LambdaClient from `model`.
 *
 * @example
 * const stub = installLambdaModel(model);
 */
export function installLambdaModel(model: LambdaModel) {
  const stub = mockClient(LambdaClient);
  stub.on(GetFunctionConfigurationCommand).callsFake(async (i) => model.getFunctionConfiguration(i));
  stub.on(InvokeCommand).callsFake(async (i) => model.invoke(i));
  return stub;
}
