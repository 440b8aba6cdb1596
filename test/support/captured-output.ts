/**
 * Output capture shared by all tests. Everything written to the console or to stdout during
 * a test file lands in {@link capturedOutput} instead of the terminal (set CONVERGE_TEST_VERBOSE=1
 * to also print it).
 */
const lines: string[] = [];

/**
 * Every captured line of this test file so far.
 *
 * @example
 * expect(capturedOutput().some((l) => l.includes('rotation finished'))).toBe(true);
 */
export function capturedOutput(): readonly string[] {
  return lines;
}

/**
 * Forgets captured lines (e.g. in beforeEach when a test checks only its own output).
 *
 * @example
 * beforeEach(() => clearCapturedOutput());
 */
export function clearCapturedOutput(): void {
  lines.length = 0;
}

/**
 * Routes console methods and stdout writes into {@link capturedOutput} (see ./setup-after-env.ts).
 *
 * @example
 * installOutputCapture();
 */
export function installOutputCapture(): void {
  const verbose = process.env.CONVERGE_TEST_VERBOSE === '1';
  for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
    const original = console[method].bind(console);
    console[method] = (...args: unknown[]) => {
      lines.push(args.map((a) => (typeof a === 'string' ? a : safeStringify(a))).join(' '));
      if (verbose) original(...args);
    };
  }
  // stdout only: EMF records and raw writes land there. stderr stays untouched because jest's own
  // reporter writes to it when a file runs in band.
  const stream = process.stdout;
  const original = stream.write.bind(stream) as (...a: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    lines.push(String(chunk));
    return verbose ? original(chunk, ...rest) : true;
  }) as typeof stream.write;
}

/**
 * Asserts that no captured line and no given error message contains any of `secrets`.
 *
 * @example
 * expectNoSecretsInOutput(allPasswords(model), errorsSeen);
 */
export function expectNoSecretsInOutput(secrets: readonly string[], errors: readonly unknown[] = []): void {
  const texts = [
    ...lines,
    ...errors.map((e) => (e instanceof Error ? `${e.name}: ${e.message} ${e.stack ?? ''} ${causeChain(e)}` : String(e))),
  ];
  for (const secret of secrets.filter((s) => s.length >= 8)) {
    const leak = texts.find((t) => t.includes(secret));
    if (leak !== undefined) {
      throw new Error(`a password appeared in output or an error message: ${leak.slice(0, 120).replace(secret, '<PASSWORD>')}`);
    }
  }
}

function causeChain(e: Error): string {
  let out = '';
  let c: unknown = e.cause;
  while (c instanceof Error) {
    out += ` ${c.message}`;
    c = c.cause;
  }
  return out;
}

function safeStringify(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
