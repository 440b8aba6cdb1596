/**
 * Rotation benchmark: median duration of each step and of a whole rotation through the real
 * handler against an embedded PostgreSQL (TLS, verify-full), the minified esbuild bundle size of
 * the handler, and its cold load time in a fresh Node process.
 *
 * Run: npx tsx bench/rotation.ts [rotations]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { RotateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { build } from 'esbuild';
import { installSecretsManagerModel } from '../cli/local/install';
import { provisionDatabase, secretFields, startLocalPostgres } from '../cli/local/postgres';
import { SecretsManagerModel } from '../cli/local/secrets-manager-model';
import { createRotationHandler, loadConfig, STEPS } from '../lambda/rotation';
import { median, printRows, type BenchRow } from './report';

const ROOT = join(__dirname, '..');

export async function runRotationBench(rotations = 10): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  rows.push(...(await timeRotations(rotations)));
  rows.push(...(await bundleFigures()));
  return rows;
}

async function timeRotations(n: number): Promise<BenchRow[]> {
  const pg = await startLocalPostgres();
  const model = new SecretsManagerModel();
  const stub = installSecretsManagerModel(model);
  try {
    const db = await provisionDatabase(pg, { dbname: 'bench', master: 'bench_master', app: 'bench_app' });
    const master = model.createSecret({
      Name: 'bench-master',
      SecretString: JSON.stringify(secretFields(pg, db).master),
    });
    const app = model.createSecret({ Name: 'bench-app', SecretString: JSON.stringify(secretFields(pg, db).app(master.ARN)) });
    const handler = createRotationHandler({
      config: loadConfig({ CONVERGE_CA_BUNDLE: pg.caBundlePath ?? '' }),
      logger: new Logger({ logLevel: 'SILENT' }),
      writeMetric: () => undefined,
    });
    model.registerRotationFunction('arn:bench', (e) => handler(e));
    const client = new SecretsManagerClient({});
    for (let i = 0; i < n; i++) {
      await client.send(new RotateSecretCommand({ SecretId: app.ARN, RotationLambdaARN: 'arn:bench' }));
      const record = await model.rotationSettled(app.ARN!);
      if (record?.error) throw record.error;
    }
    const perStep = STEPS.map((step) => ({
      name: `rotation: ${step} (median of ${n})`,
      value: median(model.rotations.map((r) => r.steps.find((s) => s.step === step)!.ms)),
      unit: 'ms',
    }));
    const whole = median(model.rotations.map((r) => r.steps.reduce((sum, s) => sum + s.ms, 0)));
    return [...perStep, { name: `rotation: whole (median of ${n})`, value: whole, unit: 'ms' }];
  } finally {
    stub.restore();
    await pg.stop();
  }
}

async function bundleFigures(): Promise<BenchRow[]> {
  const out = join(ROOT, '.bench');
  mkdirSync(out, { recursive: true });
  const rows: BenchRow[] = [];
  try {
    for (const [label, external] of [
      ['SDK external (Lambda runtime provides it)', ['@aws-sdk/*']],
      ['everything bundled', []],
    ] as const) {
      const result = await build({
        entryPoints: [join(ROOT, 'lambda/rotation/index.ts')],
        bundle: true,
        minify: true,
        platform: 'node',
        target: 'node20',
        format: 'cjs',
        external: [...external],
        write: false,
        logLevel: 'silent',
      });
      const code = result.outputFiles[0].contents;
      const file = join(out, `handler-${external.length ? 'ext' : 'all'}.js`);
      writeFileSync(file, code);
      rows.push({ name: `bundle size, ${label}`, value: Math.round(code.length / 1024), unit: 'KiB' });
      const loads: number[] = [];
      for (let i = 0; i < 5; i++) {
        const ms = execFileSync(process.execPath, [
          '-e',
          `const t=process.hrtime.bigint();const m=require(${JSON.stringify(file)});if(typeof m.handler!=='function')process.exit(1);console.log(Number(process.hrtime.bigint()-t)/1e6)`,
        ], { env: { ...process.env, AWS_REGION: 'us-east-1', NODE_NO_WARNINGS: '1' } }).toString();
        loads.push(Number(ms));
      }
      rows.push({ name: `cold load (require), ${label}`, value: median(loads), unit: 'ms' });
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  return rows;
}

if (require.main === module) {
  runRotationBench(Number(process.argv[2] ?? 10))
    .then((rows) => printRows('Rotation', rows))
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
