/**
 * An in-memory model of the two AWS Lambda calls the CLI makes: GetFunctionConfiguration (to read
 * the rotation function's consumer registry from its environment) and Invoke (to re-drive
 * finishSecret). Installed behind the real LambdaClient with aws-sdk-client-mock.
 *
 * Given a CloudWatch model, it also publishes what Lambda publishes for every function in
 * `AWS/Lambda` with the `FunctionName` dimension: `Invocations`, `Errors` (the handler threw, or
 * the function failed to initialize) and `Throttles` (an invocation refused, see
 * {@link LambdaModel.throttle}), so alarms on those metrics can be evaluated locally
 * (./alarm-evaluation.ts).
 */
import {
  GetFunctionConfigurationCommand,
  InvokeCommand,
  LambdaClient,
  ResourceNotFoundException,
  TooManyRequestsException,
  type GetFunctionConfigurationCommandInput,
  type GetFunctionConfigurationCommandOutput,
  type InvokeCommandInput,
  type InvokeCommandOutput,
} from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import type { CloudWatchModel } from './cloudwatch-model';

const meta = { $metadata: {} };

type Handler = (event: unknown) => Promise<unknown>;

interface LocalFunction {
  readonly arn: string;
  /** The handler, or what builds it at the first invocation (a cold start), which may throw. */
  handler?: Handler;
  readonly init?: () => Handler;
  readonly environment: Record<string, string>;
  throttled: boolean;
}

export interface LambdaModelOptions {
  /** Where the function metrics go. @default - not published */
  readonly cloudWatch?: CloudWatchModel;
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
  private readonly cloudWatch?: CloudWatchModel;

  public constructor(options: LambdaModelOptions = {}) {
    this.cloudWatch = options.cloudWatch;
  }

  public register(arn: string, handler: Handler, environment: Record<string, string> = {}): void {
    this.functions.set(arn, { arn, handler, environment, throttled: false });
  }

  /**
   * Registers a function whose handler is built at its first invocation, as a cold start runs the
   * module's top level: if `init` throws, the invocation fails with that error (counted in
   * `Errors`) and the next one tries again.
   *
   * @example
   * lambda.registerWithInit(arn, () => createRotationHandler({ config: loadConfig(env) }));
   */
  public registerWithInit(arn: string, init: () => Handler, environment: Record<string, string> = {}): void {
    this.functions.set(arn, { arn, init, environment, throttled: false });
  }

  /** While on, every invocation of the function is refused with TooManyRequestsException (a `Throttles` data point). */
  public throttle(name: string, on = true): void {
    this.find(name).throttled = on;
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
    if (fn.throttled) {
      this.publish(fn, 'Throttles');
      throw new TooManyRequestsException({
        message: 'Rate Exceeded.',
        Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded',
        ...meta,
      });
    }
    this.publish(fn, 'Invocations');
    const run = async (): Promise<unknown> => {
      try {
        fn.handler ??= fn.init!();
        return await fn.handler(payload);
      } catch (err) {
        this.publish(fn, 'Errors');
        throw err;
      }
    };
    if (input.InvocationType === 'Event') {
      void run().catch(() => undefined);
      return { StatusCode: 202, ...meta } as InvokeCommandOutput;
    }
    try {
      const result = await run();
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

  private publish(fn: LocalFunction, metricName: 'Invocations' | 'Errors' | 'Throttles'): void {
    this.cloudWatch?.recordServiceMetric('AWS/Lambda', {
      MetricName: metricName,
      Dimensions: [{ Name: 'FunctionName', Value: fn.arn.split(':').pop()! }],
      Value: 1,
      Unit: 'Count',
    });
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
