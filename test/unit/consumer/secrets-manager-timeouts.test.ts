/**
 * SecretsManagerSource against a real endpoint on 127.0.0.1 that accepts connections and never
 * answers (no SDK mock in this file: real clients send real HTTP requests).
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SecretsManagerModel } from '../../../cli/local/secrets-manager-model';
import {
  DEFAULT_HTTP_TIMEOUTS,
  SecretsManagerSource,
} from '../../../consumer/secrets-manager-source';
import { AwsCallError } from '../../../lambda/shared/errors';
import {
  secretsManagerEndpoint,
  type SecretsManagerEndpoint,
} from '../../support/secrets-manager-endpoint';
import { secretJson } from './secret-fixtures';

const G1 = { username: 'orders', password: 'pw-hang-generation-one', generation: 1 };
const credentials = {
  accessKeyId: 'AKIDEXAMPLETESTONLY',
  secretAccessKey: 'test-only-not-a-secret',
};

/** Fails naming `what` when `promise` has not settled after `ms`: a hang detector, not a speed check. */
function settlesWithin<T>(what: string, promise: Promise<T>, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still hanging after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, watchdog]).finally(() => clearTimeout(timer));
}

async function until(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('Class: SecretsManagerSource against an endpoint that never answers', () => {
  let model: SecretsManagerModel;
  let ep: SecretsManagerEndpoint;
  let arn: string;
  const endpointEnv = process.env.AWS_ENDPOINT_URL;

  beforeEach(async () => {
    model = new SecretsManagerModel();
    arn = model.createSecret({ Name: 'orders-db', SecretString: secretJson(G1) }).ARN!;
    ep = await secretsManagerEndpoint(model);
  });

  afterEach(async () => {
    process.env.AWS_ENDPOINT_URL = endpointEnv;
    await ep.close();
  });

  it('reads the secret through the endpoint while it answers (the endpoint speaks the JSON protocol)', async () => {
    // Prepare
    const client = new SecretsManagerClient({ endpoint: ep.url, region: 'us-east-1', credentials });
    const source = new SecretsManagerSource({ awsSdkV3Client: client, secretId: arn });
    // Act
    const snapshot = await source.fetch();
    // Assess
    expect(snapshot.current).toMatchObject({ username: 'orders', generation: 1 });
    expect(ep.answered).toEqual(['DescribeSecret', 'GetSecretValue']);
    client.destroy();
  });

  it("passes the caller's AbortSignal to the SDK: aborting cancels the request on the wire", async () => {
    // Prepare: a client of the application's own, without any timeout
    const client = new SecretsManagerClient({
      endpoint: ep.url,
      region: 'us-east-1',
      credentials,
      requestHandler: {},
    });
    const source = new SecretsManagerSource({ awsSdkV3Client: client, secretId: arn });
    ep.mode = 'hang';
    const abort = new AbortController();
    // Act
    const fetching = source.fetch(undefined, { signal: abort.signal }).catch((e: unknown) => e);
    await until('the request to reach the endpoint', () => ep.hung === 1);
    abort.abort();
    const err = await settlesWithin('the aborted fetch', fetching);
    await until('the endpoint to see the connection closed', () => ep.hungClosed === 1);
    // Assess
    expect(err).toBeInstanceOf(AwsCallError);
    expect((err as Error).message).toBe('DescribeSecret for secret "orders-db" failed: AbortError');
    client.destroy();
  });

  it('gives the default client it creates connection and request timeouts', async () => {
    // Prepare: the shared default client follows AWS_ENDPOINT_URL, as on a host configured that way
    process.env.AWS_ENDPOINT_URL = ep.url;
    const source = new SecretsManagerSource({ secretId: arn });
    ep.mode = 'hang';
    // Act: no signal, no fetchTimeoutMs around it: only the client's own timeouts can end the call
    const err = await settlesWithin(
      'a fetch on the default client',
      source.fetch().catch((e: unknown) => e),
    );
    await until('the endpoint to see the connection closed', () => ep.hungClosed === 1);
    // Assess
    expect(err).toBeInstanceOf(AwsCallError);
    expect((err as Error).message).toBe(
      'DescribeSecret for secret "orders-db" failed: TimeoutError',
    );
    expect(((err as Error).cause as Error).message).toContain(
      `${DEFAULT_HTTP_TIMEOUTS.requestTimeout} ms requestTimeout`,
    );
    expect(ep.hung).toBe(1);
  });

  it('gives a client built from clientConfig the same timeouts when it brings no requestHandler', async () => {
    // Prepare
    const source = new SecretsManagerSource({
      clientConfig: { endpoint: ep.url, region: 'us-east-1', credentials },
      secretId: arn,
    });
    ep.mode = 'hang';
    // Act
    const err = await settlesWithin(
      'a fetch on a client from clientConfig',
      source.fetch().catch((e: unknown) => e),
    );
    // Assess
    expect((err as Error).message).toBe(
      'DescribeSecret for secret "orders-db" failed: TimeoutError',
    );
  });
});
