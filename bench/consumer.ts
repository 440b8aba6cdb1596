/**
 * Consumer library benchmark:
 * - what a cached `get()` costs (the per-request price of asking the cache);
 * - how many Secrets Manager calls one refresh makes when 1,000 callers ask at TTL expiry
 *   (through the real SDK client, answered by the in-memory Secrets Manager model);
 * - query throughput of RotatingPgPool against a plain pg.Pool on the same PostgreSQL (TLS,
 *   verify-full), same pool size, same concurrency, as a ratio from one run.
 *
 * Run: npx tsx bench/consumer.ts
 */
import { DescribeSecretCommand, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { Pool } from 'pg';
import { installSecretsManagerModel } from '../cli/local/install';
import { provisionDatabase, startLocalPostgres, type LocalPostgres } from '../cli/local/postgres';
import { SecretsManagerModel } from '../cli/local/secrets-manager-model';
import { RefreshingSecret, refreshingSnapshot } from '../consumer/refreshing-secret';
import { RotatingPgPool } from '../consumer/rotating-pg-pool';
import type { SecretSnapshot, SecretSource } from '../consumer/secret-source';
import { SecretsManagerSource } from '../consumer/secrets-manager-source';
import { pgConfig } from '../lambda/shared/pg-connection';
import { parseSecret } from '../lambda/shared/secret';
import { printRows, type BenchRow } from './report';

const GET_ITERATIONS = 2_000_000;
const CONCURRENT_CALLERS = 1_000;
const POOL_SIZE = 8;
const QUERY_LOOPS = 8;
const QUERIES_PER_ROUND = 4_000;
const ROUNDS = 8;

/** Every figure of the consumer benchmark. */
export async function runConsumerBench(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  rows.push(...(await cachedGetCost()));
  rows.push(...(await callsPerRefresh()));
  rows.push(...(await poolThroughput()));
  return rows;
}

async function cachedGetCost(): Promise<BenchRow[]> {
  const secret = new RefreshingSecret({ fetch: async () => 'value', ttlMs: 3_600_000, refreshInBackground: false });
  await secret.get();
  for (let i = 0; i < 100_000; i++) await secret.get(); // warm up
  let start = process.hrtime.bigint();
  for (let i = 0; i < GET_ITERATIONS; i++) await secret.get();
  const awaited = Number(process.hrtime.bigint() - start) / GET_ITERATIONS;
  let sink = 0;
  start = process.hrtime.bigint();
  for (let i = 0; i < GET_ITERATIONS; i++) sink += secret.peek()!.length;
  const peeked = Number(process.hrtime.bigint() - start) / GET_ITERATIONS;
  if (sink === 0) throw new Error('unreachable');
  return [
    { name: 'cached get() (awaited)', value: awaited, unit: 'ns/op' },
    { name: 'cached peek() (synchronous)', value: peeked, unit: 'ns/op' },
  ];
}

async function callsPerRefresh(): Promise<BenchRow[]> {
  const model = new SecretsManagerModel();
  const stub = installSecretsManagerModel(model);
  try {
    const json = (generation: number) =>
      JSON.stringify({
        engine: 'postgres',
        host: 'db.example.internal',
        port: 5432,
        username: generation % 2 ? 'app_clone' : 'app',
        password: `bench-password-${generation}`,
        dbname: 'app',
        masterarn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf',
        generation,
      });
    const { ARN } = model.createSecret({ Name: 'bench-db', SecretString: json(1) });
    let now = 0;
    const secret = refreshingSnapshot(new SecretsManagerSource({ secretId: ARN! }), {
      ttlMs: 60_000,
      clock: () => now,
      refreshInBackground: false,
    });
    await secret.get();
    const refreshes = 5;
    let describe = 0;
    let getValue = 0;
    let unchangedCalls = 0;
    for (let r = 0; r < refreshes; r++) {
      model.putSecretValue({ SecretId: ARN, SecretString: json(r + 2) });
      now += 60_000;
      stub.resetHistory();
      await Promise.all(Array.from({ length: CONCURRENT_CALLERS }, () => secret.get()));
      describe += stub.commandCalls(DescribeSecretCommand).length;
      getValue += stub.commandCalls(GetSecretValueCommand).length;
      // The same, with nothing rotated: only DescribeSecret.
      now += 60_000;
      stub.resetHistory();
      await Promise.all(Array.from({ length: CONCURRENT_CALLERS }, () => secret.get()));
      unchangedCalls += stub.calls().length;
    }
    return [
      { name: `SDK calls per refresh, ${CONCURRENT_CALLERS} concurrent get(), new version`, value: (describe + getValue) / refreshes, unit: 'calls' },
      { name: '  of which GetSecretValue', value: getValue / refreshes, unit: 'calls' },
      { name: `SDK calls per refresh, ${CONCURRENT_CALLERS} concurrent get(), unchanged`, value: unchangedCalls / refreshes, unit: 'calls' },
    ];
  } finally {
    stub.restore();
  }
}

async function poolThroughput(): Promise<BenchRow[]> {
  const server: LocalPostgres = await startLocalPostgres({ tls: true });
  try {
    const db = await provisionDatabase(server, { dbname: 'bench', master: 'bench_master', app: 'bench_app' });
    const target = { host: 'localhost', port: server.port, dbname: db.dbname, ssl: 'verify-full' as const };
    const options = { caBundlePath: server.caBundlePath };
    const secret = {
      ...parseSecret(
        JSON.stringify({
          engine: 'postgres',
          ...target,
          username: db.app.username,
          password: db.app.password,
          masterarn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-master-AbCdEf',
          ssl: 'verify-full',
          generation: 1,
        }),
      ),
      versionId: 'v1',
    };
    const source: SecretSource = { secretName: 'bench-db', fetch: async (): Promise<SecretSnapshot> => ({ current: secret }) };
    const plain = new Pool({ ...pgConfig(target, db.app, options), max: POOL_SIZE });
    const rotating = new RotatingPgPool({ source, ...options, max: POOL_SIZE, refresh: { ttlMs: 3_600_000 } });
    type Queryable = { query(text: string): Promise<unknown> };
    const round = async (pool: Queryable): Promise<number> => {
      let remaining = QUERIES_PER_ROUND;
      const start = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: QUERY_LOOPS }, async () => {
          while (remaining-- > 0) await pool.query('SELECT 1');
        }),
      );
      return Number(process.hrtime.bigint() - start) / 1e9;
    };
    try {
      // Warm both pools (connections open, TLS handshakes done), then alternate rounds so drift in
      // machine load hits both alike.
      await round(plain);
      await round(rotating);
      let plainSeconds = 0;
      let rotatingSeconds = 0;
      for (let r = 0; r < ROUNDS; r++) {
        plainSeconds += await round(plain);
        rotatingSeconds += await round(rotating);
      }
      const plainQps = (QUERIES_PER_ROUND * ROUNDS) / plainSeconds;
      const rotatingQps = (QUERIES_PER_ROUND * ROUNDS) / rotatingSeconds;
      return [
        { name: `pg.Pool throughput (${QUERY_LOOPS} loops, max ${POOL_SIZE}, TLS)`, value: plainQps, unit: 'queries/s' },
        { name: 'RotatingPgPool throughput (same)', value: rotatingQps, unit: 'queries/s' },
        { name: 'RotatingPgPool / pg.Pool', value: rotatingQps / plainQps, unit: 'ratio' },
      ];
    } finally {
      await Promise.all([plain.end(), rotating.end()]);
    }
  } finally {
    await server.stop();
  }
}

if (require.main === module) {
  runConsumerBench()
    .then((rows) => printRows('Consumer library', rows))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
