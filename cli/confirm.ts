/**
 * Confirmation of the destructive commands (`abort`, `rotate --emergency`). On a terminal the CLI
 * prints what the command will change and asks the operator to type the secret's name (its Name, as
 * DescribeSecret shows it, also when the command was given the ARN); anything else stops it with
 * nothing changed. `--yes` skips the question. Without a terminal on stdin and without `--yes`, the
 * command refuses before it makes any AWS call: a script or CI job must say `--yes`.
 */
import { createInterface } from 'node:readline';
import { ConfirmationRequiredError } from './errors';

/**
 * Asked after the command has read the secret and before it changes anything, with the secret's
 * name and the changes it is about to make; resolves true to go ahead.
 */
export type Confirm = (secretName: string, plan: readonly string[]) => Promise<boolean>;

/** Where the CLI can ask a question: the operator's terminal, or nothing. */
export interface Terminal {
  /** Whether stdin is a terminal someone can answer on. */
  readonly interactive: boolean;
  /** Prints `question` and resolves with the line typed (undefined at end of input). */
  ask(question: string): Promise<string | undefined>;
}

/** No terminal: what runCli assumes unless it is given one (tests, the drill, the model). */
export const NO_TERMINAL: Terminal = { interactive: false, ask: async () => undefined };

/**
 * The process's own terminal: stdin when it is a TTY, the question written to stderr (stdout stays
 * clean for `--json`).
 *
 * @example
 * runCli(argv, { out, err, terminal: processTerminal() });
 */
export function processTerminal(): Terminal {
  return {
    interactive: process.stdin.isTTY === true,
    ask: (question) =>
      new Promise((resolve) => {
        const rl = createInterface({
          input: process.stdin,
          output: process.stderr,
          terminal: true,
        });
        let answered = false;
        rl.on('close', () => {
          if (!answered) resolve(undefined);
        });
        rl.question(question, (line) => {
          answered = true;
          rl.close();
          resolve(line);
        });
      }),
  };
}

/**
 * The confirmation a destructive command uses: none with `--yes`; a typed secret name on a
 * terminal; otherwise it throws at once.
 *
 * @throws {@link ConfirmationRequiredError} when `yes` is false and the terminal is not interactive
 *
 * @example
 * const confirm = confirmation({ command: 'abort', what: 'drops the waiting version', yes: o.yes, terminal, err: io.err });
 * await abort(clients, secret, { confirm });
 */
export function confirmation(options: {
  readonly command: string;
  /** What the command does, for the refusal (`drops the waiting version of the secret`). */
  readonly what: string;
  readonly yes?: boolean;
  readonly terminal: Terminal;
  readonly err: (text: string) => void;
}): Confirm | undefined {
  if (options.yes) return undefined;
  if (!options.terminal.interactive)
    throw new ConfirmationRequiredError(options.command, options.what);
  return async (secretName, plan) => {
    options.err(`${options.command} of ${secretName} will:`);
    for (const line of plan) options.err(`  - ${line}`);
    const answer = await options.terminal.ask(
      `Type the secret's name (${secretName}) to go ahead, anything else to stop: `,
    );
    return answer?.trim() === secretName;
  };
}
