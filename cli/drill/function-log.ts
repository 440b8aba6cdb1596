/**
 * What the drill's rotation function logs at WARN and ERROR, kept in memory so a scenario can show
 * it (for example every session an emergency rotation terminated, as the function's log names it).
 * Nothing is printed: the drill's stdout carries its report only.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type {
  ConstructorOptions,
  LogItemExtraInput,
  LogItemMessage,
} from '@aws-lambda-powertools/logger/types';

/** One captured log line: its level, message and structured attributes. */
export interface FunctionLogLine {
  readonly level: 'WARN' | 'ERROR';
  readonly message: string;
  readonly attributes: Record<string, unknown>;
}

/**
 * A powertools Logger that prints nothing and records its WARN and ERROR lines, also those of
 * its children (the handler logs through `createChild`).
 *
 * @example
 * const lines: FunctionLogLine[] = [];
 * const handler = createRotationHandler({ logger: new CapturingLogger(lines), config });
 */
export class CapturingLogger extends Logger {
  public constructor(
    private readonly lines: FunctionLogLine[],
    options: ConstructorOptions = {},
  ) {
    super({ ...options, serviceName: options.serviceName ?? 'converge-drill', logLevel: 'SILENT' });
  }

  public override warn(input: LogItemMessage, ...extra: LogItemExtraInput): void {
    this.record('WARN', input, extra);
  }

  public override error(input: LogItemMessage, ...extra: LogItemExtraInput): void {
    this.record('ERROR', input, extra);
  }

  protected override createLogger(options?: ConstructorOptions): Logger {
    return new CapturingLogger(this.lines, options);
  }

  private record(
    level: FunctionLogLine['level'],
    input: LogItemMessage,
    extra: LogItemExtraInput,
  ): void {
    const message = typeof input === 'string' ? input : String(input.message);
    const attributes: Record<string, unknown> = typeof input === 'string' ? {} : { ...input };
    for (const e of extra) {
      if (e instanceof Error) attributes.error = { name: e.name, message: e.message };
      else if (e && typeof e === 'object') Object.assign(attributes, e);
    }
    this.lines.push({ level, message, attributes });
  }
}
