/**
 * `converge drill` as scripts and CI run it: the real binary (cli/bin.js) in a child process, so the
 * exit code is the one the shell sees, after the embedded PostgreSQL's exit hook has run.
 *
 * Each child gets its own TMPDIR: the drill's PostgreSQL data directory (converge-pg-*) is created
 * there, which tells its server apart from the ones jest's global setup runs.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runChild } from '../support/child-process';

const repoRoot = resolve(__dirname, '../..');
let tempRoot: string;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** converge-pg-* directories the child left in its TMPDIR. */
  readonly dataDirsLeft: string[];
  /** Command lines of processes still running with a path inside the child's TMPDIR. */
  readonly processesLeft: string[];
}

beforeAll(() => {
  tempRoot = mkdtempSync(join(tmpdir(), 'converge-drill-exit-'));
  // The `postgres` OS user the drill runs the server as (when root) must reach the data directory.
  chmodSync(tempRoot, 0o755);
});

afterAll(() => rmSync(tempRoot, { recursive: true, force: true }));

/** Runs `node cli/bin.js ...args` to its end, with the local AWS models (no AWS_ENDPOINT_URL). */
async function converge(...args: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tempRoot };
  // jest's setup points every SDK client at a closed port; the drill would take it for an endpoint.
  delete env.AWS_ENDPOINT_URL;
  delete env.CONVERGE_DRILL_ROTATION_FUNCTION;
  // The drill as a user runs it: the default PostgreSQL major, not the one this jest project pins.
  delete env.CONVERGE_PG_MAJOR;
  const r = await runChild(process.execPath, [join(repoRoot, 'cli/bin.js'), ...args], { cwd: repoRoot, env });
  const processesLeft = execFileSync('ps', ['-eo', 'args'])
    .toString()
    .split('\n')
    .filter((line) => line.includes(tempRoot));
  const dataDirsLeft = readdirSync(tempRoot).filter((name) => name.startsWith('converge-pg-'));
  return { ...r, dataDirsLeft, processesLeft };
}

/** What the drill's own passwords look like (cli/local/postgres.ts), and any `password` field. */
const PASSWORD_SHAPES = [/"password"\s*:/i, /password=/i, /\bpw-[0-9a-f]{24}\b/, /\blocal-[0-9a-z]{6,}\b/];

function expectNoPasswordShapes(text: string): void {
  for (const shape of PASSWORD_SHAPES) expect(text).not.toMatch(shape);
}

describe('converge drill: the exit code scripts and CI see', () => {
  it('exits 1 when a rotation fails (--fail setSecret), reports it in the JSON summary, and leaves no PostgreSQL behind', async () => {
    // Act
    const run = await converge('drill', '--consumers', '1', '--rotations', '1', '--refresh', '1', '--fail', 'setSecret', '--json');
    // Assess
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as { summary: Record<string, unknown>; rotations: { ok: boolean; error?: string; abortedVersionId?: string }[] };
    expect(report.summary).toMatchObject({ rotationsOk: 0, rotationsFailed: 1, allConverged: false, finalGeneration: 0 });
    expect(report.rotations[0].ok).toBe(false);
    expect(report.rotations[0].error).toMatch(/^DrillInjectedFault: setSecret of rotation version \S+ failed on purpose/);
    expect(report.rotations[0].abortedVersionId).toEqual(expect.any(String));
    expectNoPasswordShapes(run.stdout + run.stderr);
    expect(run.dataDirsLeft).toEqual([]);
    expect(run.processesLeft).toEqual([]);
  }, 120_000);

  it('shows the failed rotation as FAILED in the table and the summary (text output, --fail createSecret)', async () => {
    // Act
    const run = await converge('drill', '--consumers', '1', '--rotations', '1', '--refresh', '1', '--fail', 'createSecret');
    // Assess
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^ {4}FAILED: DrillInjectedFault: createSecret of rotation version \S+ failed on purpose/m);
    expect(run.stdout).toMatch(/^ {4}aborted: version \S+ is no longer AWSPENDING/m);
    expect(run.stdout).toMatch(/^Summary: 0\/1 rotations completed \(1 FAILED\), NOT ALL CONVERGED/m);
    expectNoPasswordShapes(run.stdout + run.stderr);
    expect(run.dataDirsLeft).toEqual([]);
    expect(run.processesLeft).toEqual([]);
  }, 120_000);

  it('exits 0 after a completed, converged rotation without --fail, and leaves no PostgreSQL behind', async () => {
    // Act
    const run = await converge('drill', '--consumers', '1', '--rotations', '1', '--refresh', '1', '--json');
    // Assess
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as { summary: Record<string, unknown>; rotations: { ok: boolean; stepsMs: Record<string, number> }[] };
    expect(report.summary).toMatchObject({ rotationsOk: 1, rotationsFailed: 0, allConverged: true, failedQueries: 0, finalGeneration: 1 });
    expect(Object.keys(report.rotations[0].stepsMs).sort()).toEqual(['createSecret', 'finishSecret', 'setSecret', 'testSecret']);
    expectNoPasswordShapes(run.stdout + run.stderr);
    expect(run.dataDirsLeft).toEqual([]);
    expect(run.processesLeft).toEqual([]);
  }, 120_000);

  it('rejects an unknown --fail step with exit code 2 and names the valid steps, before starting anything', async () => {
    // Act
    const run = await converge('drill', '--fail', 'foo');
    // Assess
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("argument 'foo' is invalid. Allowed choices are createSecret, setSecret, testSecret, finishSecret.");
    expect(run.stdout).toBe('');
    expect(run.dataDirsLeft).toEqual([]);
  });
});
