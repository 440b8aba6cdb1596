/**
 * Runs a program as a child process with stdin closed and collects what it printed: how the e2e
 * tests run the real `converge` binary.
 */
import { spawn } from 'node:child_process';

/** How a child process ended and what it printed. */
export interface ChildOutput {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `command` with `args` and resolves when it has exited and closed its output.
 *
 * @example
 * const r = await runChild(process.execPath, ['cli/bin.js', '--version'], { cwd: repoRoot, env: process.env });
 */
export function runChild(
  command: string,
  args: readonly string[],
  options: { readonly cwd: string; readonly env: NodeJS.ProcessEnv },
): Promise<ChildOutput> {
  return new Promise((done, fail) => {
    const child = spawn(command, [...args], { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}
