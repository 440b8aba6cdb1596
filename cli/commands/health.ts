/**
 * `converge status` health verdicts and their exit codes, in a module of their own so that the
 * CLI's help can name them without loading the status command (cli/main.ts loads it lazily).
 */

/** What `converge status` concludes, for scripts. */
export type Health = 'healthy' | 'holding' | 'unknown';

/**
 * The exit code of each verdict. 1 stays "error" (e.g. the secret does not exist, an invalid
 * `--consumers`) and 2 "usage", as for every command.
 *
 * @example
 * process.exitCode = HEALTH_EXIT_CODES[report.health.state];
 */
export const HEALTH_EXIT_CODES: Record<Health, number> = { healthy: 0, holding: 3, unknown: 4 };
