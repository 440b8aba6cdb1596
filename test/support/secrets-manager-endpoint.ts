/**
 * A real Secrets Manager endpoint on 127.0.0.1 for tests of what a consumer does when the service
 * hangs: real SDK clients (`endpoint: ep.url`, plain HTTP) send real requests to it.
 *
 * - `mode = 'hang'`: a new connection is accepted and never answered (what arrives is read and
 *   dropped), and a request arriving on a connection accepted earlier (keep-alive) is read and never
 *   answered. Nothing that
 *   hangs is ever answered later, as with a stuck load balancer.
 * - `mode = 'answer'`: requests are answered from a {@link SecretsManagerModel} by
 *   cli/local/endpoint.ts (the service's awsJson1_1 protocol, every operation the model answers).
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { answerRequest } from '../../cli/local/endpoint';
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
    void answerRequest({ secretsManager: model }, req, res).then((operation) =>
      answered.push(operation),
    );
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
