/**
 * A real Secrets Manager endpoint on 127.0.0.1 for tests of what a consumer does when the service
 * hangs: real SDK clients (`endpoint: ep.url`, plain HTTP) send real requests to it.
 *
 * - `mode = 'hang'`: a new connection is accepted and never answered (what arrives is read and
 *   dropped), and a request arriving on a connection accepted earlier (keep-alive) is read and never
 *   answered. Nothing that
 *   hangs is ever answered later, as with a stuck load balancer.
 * - `mode = 'answer'`: requests are answered from a {@link SecretsManagerModel} with the service's
 *   JSON protocol (awsJson1_1: `POST /`, `X-Amz-Target: secretsmanager.<Operation>`, JSON bodies,
 *   timestamps as epoch seconds, errors as `{ "__type", "message" }` with HTTP 400).
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer, type Socket } from 'node:net';
import type { SecretsManagerModel } from '../../cli/local/secrets-manager-model';

export interface SecretsManagerEndpoint {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** What happens to new requests from now on. */
  mode: 'hang' | 'answer';
  /** Requests that were left hanging (connections and requests), in total. */
  readonly hung: number;
  /** Of those, how many the client has given up on (closed the connection). */
  readonly hungClosed: number;
  /** Operations answered (e.g. `DescribeSecret`), in order. */
  readonly answered: readonly string[];
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

/** Operations a consumer calls, routed to the model's methods. */
const OPERATIONS: Record<string, (model: SecretsManagerModel, input: never) => unknown> = {
  DescribeSecret: (m, i) => m.describeSecret(i),
  GetSecretValue: (m, i) => m.getSecretValue(i),
};

/**
 * Starts an endpoint answering from `model` (`mode` starts as `'answer'`).
 *
 * @example
 * const ep = await secretsManagerEndpoint(model);
 * const client = new SecretsManagerClient({ endpoint: ep.url, region: 'us-east-1', credentials });
 * ep.mode = 'hang'; // every request from now on is accepted and never answered
 */
export async function secretsManagerEndpoint(
  model: SecretsManagerModel,
): Promise<SecretsManagerEndpoint> {
  const sockets = new Set<Socket>();
  const answered: string[] = [];
  let hung = 0;
  let hungClosed = 0;
  const hang = (socket: Socket) => {
    hung++;
    socket.once('close', () => hungClosed++);
    // Read and drop what arrives (never answer), so that the client's close is noticed.
    socket.resume();
  };

  const http = createHttpServer((req, res) => {
    if (endpoint.mode === 'hang') {
      req.resume();
      hang(req.socket);
      return;
    }
    void answer(model, req, res).then((operation) => answered.push(operation));
  });
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (endpoint.mode === 'hang') {
      hang(socket);
      return;
    }
    http.emit('connection', socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };

  const endpoint: SecretsManagerEndpoint = {
    url: `http://127.0.0.1:${port}`,
    mode: 'answer',
    get hung() {
      return hung;
    },
    get hungClosed() {
      return hungClosed;
    },
    answered,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      http.close();
    },
  };
  return endpoint;
}

/** Answers one awsJson1_1 request from the model; returns the operation's name. */
async function answer(
  model: SecretsManagerModel,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const target = String(req.headers['x-amz-target'] ?? '');
  const operation = target.replace(/^secretsmanager\./, '');
  const send = (status: number, body: unknown, errorType?: string) => {
    const text = JSON.stringify(
      body,
      function (this: Record<string, unknown>, key: string, value: unknown) {
        const raw = this[key];
        return raw instanceof Date ? raw.getTime() / 1000 : value;
      },
    );
    res.writeHead(status, {
      'content-type': 'application/x-amz-json-1.1',
      'content-length': Buffer.byteLength(text),
      ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
    });
    res.end(text);
  };
  const route = OPERATIONS[operation];
  if (!route) {
    send(
      400,
      { __type: 'UnknownOperationException', message: `${operation} is not served here` },
      'UnknownOperationException',
    );
    return operation;
  }
  try {
    const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as never;
    const output = { ...(route(model, input) as Record<string, unknown>) };
    delete output.$metadata;
    send(200, output);
  } catch (err) {
    const name = err instanceof Error ? err.name : 'InternalServiceError';
    send(400, { __type: name, message: err instanceof Error ? err.message : String(err) }, name);
  }
  return operation;
}
