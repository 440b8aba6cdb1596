/**
 * A consumer whose Secrets Manager endpoint accepts connections and never answers: a real
 * SecretsManagerClient (no SDK mock in this file) talks HTTP to a local endpoint that hangs, then
 * answers again from the Secrets Manager model; the database is the embedded PostgreSQL.
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { RotatingPgPool } from '../../../consumer/rotating-pg-pool';
import { SecretsManagerSource } from '../../../consumer/secrets-manager-source';
import { CredentialRejectedError, SecretFetchTimeoutError } from '../../../lambda/shared/errors';
import { expectNoSecretsInOutput } from '../../support/captured-output';
import { asSuperuser } from '../../support/database';
import {
  secretsManagerEndpoint,
  type SecretsManagerEndpoint,
} from '../../support/secrets-manager-endpoint';
import { consumerWorld, tlsOptions, until, type ConsumerWorld } from './fixtures';

const FETCH_TIMEOUT_MS = 500;

/** Fails naming `what` when `promise` has not settled after `ms`: a hang detector, not a speed check. */
function settlesWithin<T>(what: string, promise: Promise<T>, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still hanging after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, watchdog]).finally(() => clearTimeout(timer));
}

describe('Class: RotatingPgPool with a Secrets Manager endpoint that accepts connections and never answers', () => {
  let w: ConsumerWorld;
  let ep: SecretsManagerEndpoint;
  let client: SecretsManagerClient;
  let pool: RotatingPgPool | undefined;

  beforeEach(async () => {
    w = await consumerWorld('chung');
    // The fixture answers SecretsManagerClient from the model in-process; here the real client goes over HTTP.
    w.sm.restore();
    ep = await secretsManagerEndpoint(w.model);
    // The application's own client, with no HTTP timeout at all: only fetchTimeoutMs can end a hung call.
    client = new SecretsManagerClient({
      endpoint: ep.url,
      region: 'us-east-1',
      credentials: {
        accessKeyId: 'AKIDEXAMPLETESTONLY',
        secretAccessKey: 'test-only-not-a-secret',
      },
      requestHandler: {},
    });
  });

  afterEach(async () => {
    await pool?.end().catch(() => undefined);
    pool = undefined;
    client.destroy();
    await ep.close();
  });

  it('keeps refreshing, fails queries on the revoked credential with a clear error instead of hanging, and recovers once the endpoint answers', async () => {
    // Prepare: a pool in use on generation 1, refreshing every 300 ms
    pool = new RotatingPgPool({
      source: new SecretsManagerSource({ awsSdkV3Client: client, secretId: w.secretArn }),
      refresh: {
        ttlMs: 300,
        jitter: 0,
        backoffBaseMs: 100,
        backoffMaxMs: 200,
        fetchTimeoutMs: FETCH_TIMEOUT_MS,
      },
      ...tlsOptions(w),
    });
    const failures: Error[] = [];
    pool.on('reloadFailure', (err) => failures.push(err));
    pool.on('error', () => undefined); // idle clients whose sessions are terminated below
    const user = w.first.username;
    expect((await pool.query<{ u: string }>('SELECT current_user AS u')).rows[0].u).toBe(user);

    // Act 1: the endpoint stops answering
    ep.mode = 'hang';
    await until(
      'two fetches in a row to time out',
      () => failures.filter((e) => e instanceof SecretFetchTimeoutError).length >= 2,
    );
    await until('the client to cancel the hung requests', () => ep.hungClosed >= 2);
    const duringHang = await settlesWithin('a query during the hang', pool.query('SELECT 1'));

    // Act 2: the credential is revoked in PostgreSQL (new password, sessions terminated) and the
    // secret gets the new one, which the consumer cannot read while the endpoint hangs
    const valid = await w.changePassword(user, 2);
    w.putCurrent(valid);
    await asSuperuser('postgres', (c) =>
      c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [user]),
    );
    await until('the pool to drop its terminated connections', () => pool!.totalCount === 0);
    const errors = await settlesWithin(
      'queries on the revoked credential',
      Promise.all(
        [1, 2, 3].map(() =>
          pool!.query('SELECT 1').then(
            () => undefined,
            (e: unknown) => e,
          ),
        ),
      ),
    );

    // Act 3: the endpoint answers again
    const failuresBeforeAnswering = failures.length;
    ep.mode = 'answer';
    await until(
      'the consumer to adopt generation 2',
      () => pool!.credential?.generation === 2,
      20_000,
    );
    const after = (await pool.query<{ u: string }>('SELECT current_user AS u')).rows[0].u;

    // Assess
    expect(duringHang.rowCount).toBe(1);
    expect(failures[0].message).toMatch(
      /the fetch did not finish within 500 ms \(fetchTimeoutMs\)/,
    );
    for (const err of errors) {
      expect(err).toBeInstanceOf(CredentialRejectedError);
      expect((err as Error).message).toMatch(
        new RegExp(
          `^secret "${pool.secretName}": .*rejected.* user "${user}" \\(generation 1\\)|^secret "${pool.secretName}": the credential of user "${user}" \\(generation 1\\) was rejected`,
        ),
      );
    }
    // Recovered within one fetch timeout: only the fetch already hanging when the endpoint came back failed.
    expect(failures.length - failuresBeforeAnswering).toBeLessThanOrEqual(1);
    expect(after).toBe(user);
    expectNoSecretsInOutput(w.passwords, [...failures, ...errors]);
  });
});
