/**
 * The local AWS models served over HTTP on 127.0.0.1, so that another process (`converge status`,
 * `converge blast-radius`, the AWS CLI) reaches them with `AWS_ENDPOINT_URL=http://127.0.0.1:<port>`.
 * One port answers the three services, told apart by their wire protocols as the SDK v3 clients of
 * this repository speak them:
 *
 * - Secrets Manager, awsJson1_1: `POST /`, `X-Amz-Target: secretsmanager.<Operation>`;
 * - CloudWatch, awsJson1_0: `POST /`, `X-Amz-Target: GraniteServiceVersion20100801.<Operation>`;
 * - Lambda, restJson1: `GET /2015-03-31/functions/<name>/configuration` (GetFunctionConfiguration)
 *   and `POST /2015-03-31/functions/<name>/invocations` (Invoke, payload as the body, the function's
 *   error in `X-Amz-Function-Error`).
 *
 * JSON bodies carry timestamps as epoch seconds (both ways); errors are `{ "__type", "message" }`
 * with `x-amzn-errortype` (HTTP 400 for the JSON protocols, 404 for a missing Lambda function).
 * Plain HTTP and no signature check: it is for this machine only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { CloudWatchModel } from './cloudwatch-model';
import type { LambdaModel } from './lambda-model';
import type { SecretsManagerModel } from './secrets-manager-model';

/** The models an endpoint answers from; a service without a model answers UnknownOperationException. */
export interface EndpointModels {
  readonly secretsManager?: SecretsManagerModel;
  readonly cloudWatch?: CloudWatchModel;
  readonly lambda?: LambdaModel;
}

export interface LocalEndpoint {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Operations answered (e.g. `DescribeSecret`), in order. */
  readonly answered: readonly string[];
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

const SECRETS_MANAGER_TARGET = 'secretsmanager.';
const CLOUDWATCH_TARGET = 'GraniteServiceVersion20100801.';
/** Request members the JSON protocols send as epoch seconds and the models take as Dates. */
const TIMESTAMP_MEMBERS = new Set(['Timestamp', 'StartTime', 'EndTime']);

type Operation = (input: never) => unknown;

function secretsManagerOperations(m: SecretsManagerModel): Record<string, Operation> {
  return {
    CreateSecret: (i) => m.createSecret(i),
    DescribeSecret: (i) => m.describeSecret(i),
    GetSecretValue: (i) => m.getSecretValue(i),
    PutSecretValue: (i) => m.putSecretValue(i),
    UpdateSecretVersionStage: (i) => m.updateSecretVersionStage(i),
    GetRandomPassword: (i) => m.getRandomPassword(i),
    RotateSecret: (i) => m.rotateSecret(i),
    CancelRotateSecret: (i) => m.cancelRotateSecret(i),
    ListSecretVersionIds: (i) => m.listSecretVersionIds(i),
    TagResource: (i) => m.tagResource(i),
    UntagResource: (i) => m.untagResource(i),
    UpdateSecret: (i) => m.updateSecret(i),
  };
}

function cloudWatchOperations(m: CloudWatchModel): Record<string, Operation> {
  return {
    PutMetricData: (i) => m.putMetricData(i),
    GetMetricData: (i) => m.getMetricData(i),
    ListMetrics: (i) => m.listMetrics(i),
  };
}

/**
 * Starts an endpoint on 127.0.0.1 (`port` 0 = any free port).
 *
 * @example
 * const ep = await startLocalEndpoint({ secretsManager: sm, cloudWatch: cw, lambda });
 * process.env.AWS_ENDPOINT_URL = ep.url; // in another process
 */
export async function startLocalEndpoint(
  models: EndpointModels,
  options: { port?: number } = {},
): Promise<LocalEndpoint> {
  const answered: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    void answerRequest(models, req, res).then((operation) => answered.push(operation));
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    answered,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Answers one request from the models; returns the operation's name. Exported for endpoints that
 * decide themselves which requests to answer (test/support/secrets-manager-endpoint.ts).
 *
 * @example
 * http.createServer((req, res) => void answerRequest({ secretsManager: model }, req, res));
 */
export async function answerRequest(
  models: EndpointModels,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  const target = String(req.headers['x-amz-target'] ?? '');
  const lambdaPath = /^\/2015-03-31\/functions\/([^/]+)\/(configuration|invocations)/.exec(
    req.url ?? '',
  );
  if (lambdaPath)
    return answerLambda(
      models.lambda,
      decodeURIComponent(lambdaPath[1]),
      lambdaPath[2],
      req,
      body,
      res,
    );
  const [service, operations, contentType] = target.startsWith(SECRETS_MANAGER_TARGET)
    ? [
        SECRETS_MANAGER_TARGET,
        models.secretsManager && secretsManagerOperations(models.secretsManager),
        'application/x-amz-json-1.1',
      ]
    : [
        CLOUDWATCH_TARGET,
        models.cloudWatch && cloudWatchOperations(models.cloudWatch),
        'application/x-amz-json-1.0',
      ];
  const operation = target.startsWith(service)
    ? target.slice(service.length)
    : target || `${req.method} ${req.url}`;
  const route = operations?.[operation];
  if (!route) {
    sendJson(
      res,
      400,
      contentType,
      { __type: 'UnknownOperationException', message: `${operation} is not served here` },
      'UnknownOperationException',
    );
    return operation;
  }
  try {
    const input = JSON.parse(body.toString('utf8') || '{}', (key, value: unknown) =>
      TIMESTAMP_MEMBERS.has(key) && typeof value === 'number' ? new Date(value * 1000) : value,
    ) as never;
    const output = { ...((await route(input)) as Record<string, unknown>) };
    delete output.$metadata;
    sendJson(res, 200, contentType, output);
  } catch (err) {
    const name = err instanceof Error ? err.name : 'InternalServiceError';
    sendJson(
      res,
      400,
      contentType,
      { __type: name, message: err instanceof Error ? err.message : String(err) },
      name,
    );
  }
  return operation;
}

async function answerLambda(
  lambda: LambdaModel | undefined,
  functionName: string,
  resource: string,
  req: IncomingMessage,
  body: Buffer,
  res: ServerResponse,
): Promise<string> {
  const operation = resource === 'configuration' ? 'GetFunctionConfiguration' : 'Invoke';
  const json = 'application/json';
  if (!lambda) {
    sendJson(
      res,
      400,
      json,
      { __type: 'UnknownOperationException', message: `${operation} is not served here` },
      'UnknownOperationException',
    );
    return operation;
  }
  try {
    if (operation === 'GetFunctionConfiguration') {
      const output = {
        ...(lambda.getFunctionConfiguration({ FunctionName: functionName }) as unknown as Record<
          string,
          unknown
        >),
      };
      delete output.$metadata;
      sendJson(res, 200, json, output);
      return operation;
    }
    const invocationType = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse') as
      'RequestResponse' | 'Event';
    const out = await lambda.invoke({
      FunctionName: functionName,
      InvocationType: invocationType,
      Payload: body.length > 0 ? new Uint8Array(body) : undefined,
    });
    const payload = out.Payload ? Buffer.from(out.Payload) : Buffer.alloc(0);
    res.writeHead(out.StatusCode ?? 200, {
      'content-type': json,
      'content-length': payload.length,
      ...(out.FunctionError ? { 'x-amz-function-error': out.FunctionError } : {}),
    });
    res.end(payload);
  } catch (err) {
    const name = err instanceof Error ? err.name : 'ServiceException';
    const status =
      name === 'ResourceNotFoundException' ? 404 : name === 'TooManyRequestsException' ? 429 : 400;
    sendJson(
      res,
      status,
      json,
      { __type: name, message: err instanceof Error ? err.message : String(err) },
      name,
    );
  }
  return operation;
}

function sendJson(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: unknown,
  errorType?: string,
): void {
  const text = JSON.stringify(
    body,
    function (this: Record<string, unknown>, key: string, value: unknown) {
      const raw = this[key];
      return raw instanceof Date ? raw.getTime() / 1000 : value;
    },
  );
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
    ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
  });
  res.end(text);
}
