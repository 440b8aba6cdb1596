/**
 * The CLI's call of the rotation function's re-drive (`{ "converge": "redrive", "SecretId": arn }`),
 * shared by `finish --force` and `abort`: a synchronous Lambda Invoke and its decoded answer.
 */
import { InvokeCommand } from '@aws-sdk/client-lambda';
import type { CliClients } from '../clients';

export interface RedriveAnswer {
  /** The function's result (`promoted`, `nothing-pending`, `held`, `aborted`) or its error payload. */
  readonly payload: unknown;
  /** Lambda's `FunctionError` when the function threw. */
  readonly functionError?: string;
}

/**
 * @example
 * const { payload, functionError } = await invokeRedrive(clients, state.rotationLambdaArn, state.arn);
 */
export async function invokeRedrive(
  clients: CliClients,
  functionArn: string,
  secretArn: string,
): Promise<RedriveAnswer> {
  const out = await clients.lambda.send(
    new InvokeCommand({
      FunctionName: functionArn,
      InvocationType: 'RequestResponse',
      Payload: new TextEncoder().encode(
        JSON.stringify({ converge: 'redrive', SecretId: secretArn }),
      ),
    }),
  );
  const payload = out.Payload
    ? (JSON.parse(Buffer.from(out.Payload).toString('utf8')) as unknown)
    : undefined;
  return { payload, functionError: out.FunctionError };
}
