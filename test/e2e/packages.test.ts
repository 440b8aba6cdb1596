/**
 * The three packages, proven from outside the repository: built (scripts/build-packages.mjs),
 * packed with `npm pack`, installed from the tarballs into a project in the OS temp directory with
 * `npm ci --offline` (test/support/offline-project.ts), then used as a user would:
 * (a) `@converge/consumer` required from CommonJS and imported from an ES module, each running a
 *     RotatingPgPool query on the embedded PostgreSQL, and type-checked from TypeScript with
 *     node16 and bundler module resolution;
 * (b) a small CDK app synthesized with `@converge/cdk`, whose rotation function is the prebuilt
 *     bundle from the package (no esbuild installed, no repository sources reachable);
 * (c) the `converge` bin of `@converge/cli`.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { version as repositoryVersion } from '../../package.json';
import { freshDatabase } from '../support/database';
import { installOffline, packWorkspaces, run, type Tarball } from '../support/offline-project';

const REPO = join(__dirname, '..', '..');
const TSC = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
const WORKSPACES = ['consumer', 'packages/cdk', 'packages/cli'];

/** The resources of a synthesized template. */
type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

let work: string;
let app: string;
let tarballs: Tarball[];

/** Runs node in the app with the environment of a user's shell (no AWS endpoint or credentials needed). */
function node(args: readonly string[]): string {
  return run(process.execPath, args, app);
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function tarballFiles(t: Tarball): string[] {
  return run('tar', ['-tzf', t.path], work)
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''))
    .sort();
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'converge-packages-'));
  app = join(work, 'app');
  run('mkdir', ['-p', app], work);
  run(process.execPath, [join(REPO, 'scripts', 'build-packages.mjs'), '--quiet'], REPO);
  tarballs = packWorkspaces(WORKSPACES, join(work, 'tarballs'));
  installOffline(app, tarballs, [
    'pg',
    '@types/pg',
    '@types/node',
    '@aws-sdk/client-secrets-manager',
    'aws-cdk-lib',
    'constructs',
  ]);
}, 300_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('npm pack: what each tarball holds', () => {
  test('each package carries the repository version and only its build output, docs and manifest', () => {
    // THEN
    const byName = Object.fromEntries(tarballs.map((t) => [t.name, t]));
    expect(Object.keys(byName).sort()).toEqual([
      '@converge/cdk',
      '@converge/cli',
      '@converge/consumer',
    ]);
    for (const t of tarballs) expect(t.manifest.version).toBe(repositoryVersion);
    expect(tarballFiles(byName['@converge/consumer'])).toEqual([
      'CHANGELOG.md',
      'README.md',
      'dist/index.d.mts',
      'dist/index.d.ts',
      'dist/index.js',
      'dist/index.js.map',
      'dist/index.mjs',
      'dist/index.mjs.map',
      'package.json',
    ]);
    expect(tarballFiles(byName['@converge/cdk'])).toEqual([
      'README.md',
      'assets/rotation/index.js',
      'assets/rotation/index.js.map',
      'dist/index.d.ts',
      'dist/index.js',
      'dist/index.js.map',
      'package.json',
    ]);
    expect(tarballFiles(byName['@converge/cli'])).toEqual([
      'README.md',
      'converge.js',
      'dist/main.js',
      'package.json',
    ]);
  });

  test('the consumer build imports only Node built-ins and its peer dependencies, never a repository path', () => {
    // GIVEN
    const dist = join(app, 'node_modules', '@converge', 'consumer', 'dist');
    const cjs = readFileSync(join(dist, 'index.js'), 'utf8');
    const esm = readFileSync(join(dist, 'index.mjs'), 'utf8');

    // WHEN
    const required = [...cjs.matchAll(/require\(["']([^"']+)["']\)/g)].map((m) => m[1]);
    const imported = [...esm.matchAll(/(?:from|import\()\s*["']([^"']+)["']/g)].map((m) => m[1]);

    // THEN
    const allowed =
      /^(node:)?(crypto|events|fs|fs\/promises|os|path|perf_hooks|tls)$|^pg$|^@aws-sdk\/client-(secrets-manager|cloudwatch)$/;
    expect([...required, ...imported].filter((m) => !allowed.test(m))).toEqual([]);
    expect(required).toContain('pg');
    expect(imported).toContain('pg');
  });

  test('the construct build loads only aws-cdk-lib, constructs and Node built-ins: no pg, no AWS SDK client at synth', () => {
    // GIVEN
    const cjs = readFileSync(
      join(app, 'node_modules', '@converge', 'cdk', 'dist', 'index.js'),
      'utf8',
    );

    // WHEN
    const required = [...cjs.matchAll(/require\(["']([^"']+)["']\)/g)].map((m) => m[1]);

    // THEN
    expect(
      required.filter(
        (m) => !/^(node:)?(fs|path)$|^aws-cdk-lib(\/[a-z0-9-]+)?$|^constructs$/.test(m),
      ),
    ).toEqual([]);
    expect(required).toContain('aws-cdk-lib/aws-secretsmanager');
  });
});

describe('(a) @converge/consumer installed from its tarball', () => {
  let secretFile: string;
  let appUser: string;

  beforeAll(async () => {
    const db = await freshDatabase('pkg');
    appUser = db.app.username;
    secretFile = join(work, 'db-secret.json');
    writeFileSync(
      secretFile,
      JSON.stringify({
        engine: 'postgres',
        host: db.server.host,
        port: db.server.port,
        dbname: db.dbname,
        username: db.app.username,
        password: db.app.password,
        masterarn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders/master-GhIjKl',
        generation: 1,
      }),
      { mode: 0o600 },
    );
    const options = JSON.stringify({ caBundlePath: db.server.caBundlePath });
    // The same program twice: once as CommonJS, once as an ES module.
    const body = (load: string) => `${load}
const pool = new RotatingPgPool({
  source: new FileSource({ path: process.argv[2], secretName: 'orders-db' }),
  ...${options},
  consumer: 'package-test',
});
pool.query('SELECT current_user AS "user", 1 + 1 AS two').then(
  async ({ rows }) => {
    console.log(JSON.stringify({ ...rows[0], generation: pool.loadedGeneration, isPgPool: pool instanceof pg.Pool }));
    await pool.end();
  },
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
`;
    writeFileSync(
      join(app, 'query.cjs'),
      body(
        "const pg = require('pg');\nconst { FileSource, RotatingPgPool } = require('@converge/consumer');",
      ),
    );
    writeFileSync(
      join(app, 'query.mjs'),
      body(
        "import pg from 'pg';\nimport { FileSource, RotatingPgPool } from '@converge/consumer';",
      ),
    );
  }, 60_000);

  test.each(['query.cjs', 'query.mjs'])(
    "%s: a RotatingPgPool, a pg.Pool of the application's own pg, logs in with the secret and runs a query",
    (script) => {
      // WHEN
      const out = JSON.parse(node([script, secretFile]));

      // THEN
      expect(out).toEqual({ user: appUser, two: 2, generation: 1, isPgPool: true });
    },
  );

  test.each([
    ['node16', ['--module', 'node16', '--moduleResolution', 'node16']],
    ['bundler', ['--module', 'esnext', '--moduleResolution', 'bundler']],
  ])(
    'TypeScript with moduleResolution %s type-checks a program against the declarations',
    (_name, flags) => {
      // GIVEN: wrong types must be reported, so the declarations are really read
      const dir = mkdtempSync(join(app, 'ts-'));
      writeFileSync(
        join(dir, 'good.mts'),
        `import { FileSource, RotatingPgPool, type SecretVersion } from '@converge/consumer';
const pool = new RotatingPgPool({ source: new FileSource({ path: '/run/secrets/db.json', secretName: 'orders-db' }), max: 4 });
const generation: number | undefined = pool.loadedGeneration;
pool.on('credentialChange', (next: SecretVersion) => console.log(next.generation, generation));
export const rows: Promise<{ n: number }[]> = pool.query<{ n: number }>('SELECT 1 AS n').then((r) => r.rows);
`,
      );
      writeFileSync(
        join(dir, 'bad.mts'),
        `import { RotatingPgPool } from '@converge/consumer';
export const pool = new RotatingPgPool({ max: 'many' });
`,
      );
      const tsc = (file: string) => () =>
        run(
          process.execPath,
          [
            TSC,
            '--noEmit',
            '--strict',
            '--skipLibCheck',
            'false',
            '--types',
            'node',
            '--target',
            'es2022',
            ...flags,
            file,
          ],
          dir,
        );

      // THEN
      expect(tsc('good.mts')).not.toThrow();
      expect(tsc('bad.mts')).toThrow(/error TS2\d+/);
    },
  );
});

describe('(b) @converge/cdk installed from its tarball', () => {
  test('a CDK app synthesizes ConvergeRotation with the rotation function from the prebuilt bundle', () => {
    // GIVEN: nothing that could bundle TypeScript is installed, and the repository is not reachable
    expect(existsSync(join(app, 'node_modules', 'esbuild'))).toBe(false);
    expect(existsSync(join(app, 'node_modules', 'tsx'))).toBe(false);
    const outdir = join(work, 'cdk.out');
    writeFileSync(
      join(app, 'cdk-app.js'),
      `const { App, Stack, aws_ec2: ec2, aws_rds: rds, aws_secretsmanager: sm } = require('aws-cdk-lib');
const { ConvergeRotation } = require('@converge/cdk');
const app = new App({ outdir: ${JSON.stringify(outdir)} });
const stack = new Stack(app, 'Orders', { env: { account: '123456789012', region: 'eu-west-1' } });
const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });
const database = rds.DatabaseInstance.fromDatabaseInstanceAttributes(stack, 'Database', {
  instanceIdentifier: 'orders', instanceEndpointAddress: 'orders.abc.eu-west-1.rds.amazonaws.com', port: 5432,
  securityGroups: [new ec2.SecurityGroup(stack, 'DatabaseSecurityGroup', { vpc })],
});
const arn = (name) => 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:' + name;
new ConvergeRotation(stack, 'Rotation', {
  secret: sm.Secret.fromSecretCompleteArn(stack, 'Secret', arn('orders/app-AbCdEf')),
  masterSecret: sm.Secret.fromSecretCompleteArn(stack, 'Master', arn('orders/master-GhIjKl')),
  database, vpc,
});
app.synth();
`,
    );

    // WHEN
    node(['cdk-app.js']);

    // THEN
    const template = JSON.parse(readFileSync(join(outdir, 'Orders.template.json'), 'utf8'));
    const functions = Object.values(template.Resources as Resources).filter(
      (r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Handler === 'index.handler',
    );
    expect(functions).toHaveLength(1);
    const fn = functions[0].Properties;
    expect(fn).toMatchObject({ Runtime: 'nodejs24.x', Architectures: ['arm64'] });
    const schedules = Object.values(template.Resources as Resources).filter(
      (r) => r.Type === 'AWS::SecretsManager::RotationSchedule',
    );
    expect(schedules).toHaveLength(1);
    expect(schedules[0].Properties.SecretId).toContain('orders/app-AbCdEf');
    const assets = JSON.parse(readFileSync(join(outdir, 'Orders.assets.json'), 'utf8'));
    const asset = assets.files[String((fn.Code as { S3Key: string }).S3Key).replace(/\.zip$/, '')];
    const staged = join(outdir, asset.source.path);
    const prebuilt = join(app, 'node_modules', '@converge', 'cdk', 'assets', 'rotation');
    expect(readdirSync(staged).sort()).toEqual(['index.js', 'index.js.map']);
    expect(sha256(join(staged, 'index.js'))).toBe(sha256(join(prebuilt, 'index.js')));
  });

  test('TypeScript finds the construct types (a wrong prop is a compile error)', () => {
    // GIVEN
    const dir = mkdtempSync(join(app, 'ts-cdk-'));
    writeFileSync(
      join(dir, 'app.ts'),
      `import { Stack } from 'aws-cdk-lib';
import { ConvergeRotation, type ConvergeRotationProps } from '@converge/cdk';
export function add(stack: Stack, props: ConvergeRotationProps): ConvergeRotation {
  const rotation = new ConvergeRotation(stack, 'Rotation', props);
  const arn: string = rotation.rotationFunction.functionArn;
  return arn ? rotation : rotation;
}
export const wrong: ConvergeRotationProps = { secret: 'not a secret' };
`,
    );

    // WHEN
    let output = '';
    try {
      run(
        process.execPath,
        [
          TSC,
          '--noEmit',
          '--strict',
          '--types',
          'node',
          '--target',
          'es2022',
          '--module',
          'commonjs',
          'app.ts',
        ],
        dir,
      );
    } catch (err) {
      output = (err as Error).message;
    }

    // THEN: exactly the one wrong line fails, so the construct's own types resolved
    const errors = output.split('\n').filter((l) => /error TS\d+/.test(l));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^app\.ts\(8,/);
  });
});

describe('(c) @converge/cli installed from its tarball', () => {
  test('converge --version prints the version and --help lists the commands', () => {
    // GIVEN
    const bin = join(app, 'node_modules', '.bin', 'converge');

    // WHEN
    const version = run(bin, ['--version'], app).trim();
    const help = run(bin, ['--help'], app);

    // THEN
    expect(version).toBe(repositoryVersion);
    for (const command of ['status', 'rotate', 'abort', 'finish', 'blast-radius', 'drill']) {
      expect(help).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
    }
  });
});
