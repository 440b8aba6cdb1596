/**
 * When Secrets Manager rotates: a rate or cron expression and a rotation window, checked against
 * the rules in the Secrets Manager user guide ("Rotation schedules") at synth time, so a bad
 * schedule fails `cdk synth` with the value received instead of failing a deployment.
 */
import { Duration, Token } from 'aws-cdk-lib';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { ConfigurationError } from '../../lambda/shared/errors';

/** Secrets Manager rotates at most every four hours. */
export const MIN_ROTATION_INTERVAL = Duration.hours(4);
/** ... and at least every 999 days. */
export const MAX_ROTATION_INTERVAL = Duration.days(999);
/** What Secrets Manager's own constructs default to. */
export const DEFAULT_ROTATION_INTERVAL = Duration.days(30);

/** Fields of a Secrets Manager cron expression that may vary (minutes must be 0, year must be `*`). */
export interface RotationCronOptions {
  /**
   * Hour (UTC) the rotation window opens, 0-23, or a cron hour field such as `4/12`.
   *
   * @default '0'
   */
  readonly hour?: string;
  /**
   * Day of the month, 1-31 or a cron field (`L`, `1/7`, ...).
   *
   * @default - every day, or `?` when `weekDay` is given
   */
  readonly day?: string;
  /**
   * Month, 1-12 or JAN-DEC.
   *
   * @default '*'
   */
  readonly month?: string;
  /**
   * Day of the week, 1-7 or SUN-SAT (`SUN#1` for the first Sunday).
   *
   * @default - `?` (the day-of-month field decides)
   */
  readonly weekDay?: string;
}

/**
 * A rotation schedule: `rate()` or `cron()` (UTC). Use the construct's `automaticallyAfter` for a
 * plain interval, or this class for anything else.
 *
 * @example
 * RotationScheduleExpression.cron({ hour: '3', weekDay: 'SUN' }); // cron(0 3 ? * SUN *)
 * RotationScheduleExpression.rate(Duration.hours(12));             // rate(12 hours)
 * RotationScheduleExpression.expression('cron(0 4 L * ? *)');      // last day of each month, 04:00
 */
export class RotationScheduleExpression {
  /** Every `interval` (whole hours, 4 hours to 999 days). The window starts at midnight UTC. */
  public static rate(interval: Duration): RotationScheduleExpression {
    return new RotationScheduleExpression(undefined, interval);
  }

  /** A cron schedule; the window opens on the hour given. */
  public static cron(options: RotationCronOptions = {}): RotationScheduleExpression {
    const weekDay = options.weekDay ?? '?';
    const day = options.day ?? (options.weekDay !== undefined ? '?' : '*');
    return new RotationScheduleExpression(
      `cron(0 ${options.hour ?? '0'} ${day} ${options.month ?? '*'} ${weekDay} *)`,
    );
  }

  /** A literal `cron(...)` or `rate(...)` expression, as Secrets Manager's ScheduleExpression takes it. */
  public static expression(expression: string): RotationScheduleExpression {
    return new RotationScheduleExpression(expression);
  }

  private constructor(
    private readonly text?: string,
    private readonly interval?: Duration,
  ) {}

  /** The expression as written, for error messages. */
  public toString(): string {
    return this.text ?? `rate(${this.interval!.toHumanString()})`;
  }

  /** @internal Checks the expression and returns what CloudFormation needs. */
  public _bind(label: string): ParsedSchedule {
    if (this.interval !== undefined) return parseInterval(this.interval, label);
    const text = this.text!;
    if (Token.isUnresolved(text)) return { expression: text };
    const rate = /^rate\((\d+) (hour|hours|day|days)\)$/.exec(text);
    if (rate) {
      const n = Number(rate[1]);
      return parseInterval(
        rate[2].startsWith('hour') ? Duration.hours(n) : Duration.days(n),
        label,
        text,
      );
    }
    const cron = /^cron\((.*)\)$/.exec(text);
    if (!cron) {
      throw new ConfigurationError(
        `${label} must be a cron() or rate() expression, got ${JSON.stringify(text)}`,
      );
    }
    return parseCron(cron[1], label, text);
  }
}

/** @internal */
export interface ParsedSchedule {
  readonly expression: string;
  /** Hours between two windows when known (rates, stepped or listed cron hours). */
  readonly intervalHours?: number;
  /** The hour the window opens when it is a single number. */
  readonly startHour?: number;
}

function parseInterval(interval: Duration, label: string, written?: string): ParsedSchedule {
  const shown = written ?? interval.toHumanString();
  const minutes = interval.toMinutes({ integral: false });
  if (minutes < MIN_ROTATION_INTERVAL.toMinutes()) {
    throw new ConfigurationError(
      `${label} must not be smaller than 4 hours (Secrets Manager's minimum), got ${shown}`,
    );
  }
  if (minutes > MAX_ROTATION_INTERVAL.toMinutes()) {
    throw new ConfigurationError(`${label} must not be greater than 999 days, got ${shown}`);
  }
  if (minutes % 60 !== 0) {
    throw new ConfigurationError(`${label} must be a whole number of hours, got ${shown}`);
  }
  const hours = minutes / 60;
  if (hours % 24 === 0) {
    const days = hours / 24;
    return {
      expression: `rate(${days} ${days === 1 ? 'day' : 'days'})`,
      intervalHours: hours,
      startHour: 0,
    };
  }
  return { expression: `rate(${hours} hours)`, intervalHours: hours, startHour: 0 };
}

function parseCron(body: string, label: string, written: string): ParsedSchedule {
  const fields = body.trim().split(/\s+/);
  const shown = JSON.stringify(written);
  if (fields.length !== 6) {
    throw new ConfigurationError(
      `${label} cron expression must have 6 fields (minutes hours day-of-month month day-of-week year), got ${fields.length} in ${shown}`,
    );
  }
  const [minute, hour, dayOfMonth, , dayOfWeek, year] = fields;
  if (minute !== '0') {
    throw new ConfigurationError(
      `${label} cron expression must have 0 in the minutes field (Secrets Manager rotation windows open on the hour), got ${JSON.stringify(minute)} in ${shown}`,
    );
  }
  if (year !== '*') {
    throw new ConfigurationError(
      `${label} cron expression must have * in the year field, got ${JSON.stringify(year)} in ${shown}`,
    );
  }
  if ((dayOfMonth === '?') === (dayOfWeek === '?')) {
    throw new ConfigurationError(
      `${label} cron expression must have ? in exactly one of day-of-month and day-of-week, got ${JSON.stringify(dayOfMonth)} and ${JSON.stringify(dayOfWeek)} in ${shown}`,
    );
  }
  return { expression: written, ...cronHours(hour, label, shown) };
}

/** Reads the hour field: when windows open and how far apart they are within a day. */
function cronHours(
  hour: string,
  label: string,
  shown: string,
): { intervalHours?: number; startHour?: number } {
  const tooOften = (every: string) =>
    new ConfigurationError(
      `${label} must not rotate more often than every 4 hours, got ${every} in ${shown}`,
    );
  const inRange = (h: number) => {
    if (!Number.isInteger(h) || h < 0 || h > 23) {
      throw new ConfigurationError(
        `${label} cron hours must be 0-23, got ${JSON.stringify(hour)} in ${shown}`,
      );
    }
    return h;
  };
  if (/^\d+$/.test(hour)) return { startHour: inRange(Number(hour)) };
  if (hour === '*' || /^\d+-\d+$/.test(hour))
    throw tooOften(`every hour (${JSON.stringify(hour)})`);
  const step = /^(\*|\d+)\/(\d+)$/.exec(hour);
  if (step) {
    const every = Number(step[2]);
    if (every < 4) throw tooOften(`every ${every} hours`);
    return { intervalHours: every, startHour: step[1] === '*' ? 0 : inRange(Number(step[1])) };
  }
  if (/^\d+(,\d+)+$/.test(hour)) {
    const hours = hour
      .split(',')
      .map((h) => inRange(Number(h)))
      .sort((a, b) => a - b);
    const gaps = hours.slice(1).map((h, i) => h - hours[i]);
    gaps.push(hours[0] + 24 - hours[hours.length - 1]);
    const smallest = Math.min(...gaps);
    if (smallest < 4) throw tooOften(`windows ${smallest} hours apart`);
    return { intervalHours: smallest };
  }
  return {};
}

/**
 * Builds the RotationRules for CloudFormation from the construct's schedule props, checking them
 * together (one schedule form, the window inside the interval and inside the UTC day).
 *
 * @internal
 */
export function rotationRules(props: {
  readonly automaticallyAfter?: Duration;
  readonly schedule?: RotationScheduleExpression;
  readonly rotationWindow?: Duration;
}): secretsmanager.CfnRotationSchedule.RotationRulesProperty {
  if (props.automaticallyAfter !== undefined && props.schedule !== undefined) {
    throw new ConfigurationError(
      `give either automaticallyAfter or schedule, not both; got automaticallyAfter ${props.automaticallyAfter.toHumanString()} and schedule ${props.schedule.toString()}`,
    );
  }
  const parsed = props.schedule
    ? props.schedule._bind('schedule')
    : RotationScheduleExpression.rate(props.automaticallyAfter ?? DEFAULT_ROTATION_INTERVAL)._bind(
        'automaticallyAfter',
      );
  const window = props.rotationWindow;
  if (window === undefined) return { scheduleExpression: parsed.expression };
  if (window.isUnresolved())
    return { scheduleExpression: parsed.expression, duration: `${window.toHours()}h` };

  const minutes = window.toMinutes({ integral: false });
  const shown = window.toHumanString();
  if (minutes < 60 || minutes % 60 !== 0) {
    throw new ConfigurationError(
      `rotationWindow must be a whole number of hours, at least 1, got ${shown}`,
    );
  }
  const hours = minutes / 60;
  if (
    parsed.intervalHours !== undefined &&
    parsed.intervalHours < 24 &&
    hours > parsed.intervalHours
  ) {
    throw new ConfigurationError(
      `rotationWindow must not extend into the next rotation window (${parsed.intervalHours} hours apart in ${parsed.expression}), got ${shown}`,
    );
  }
  const start = parsed.startHour ?? 0;
  if (start + hours > 24) {
    throw new ConfigurationError(
      `rotationWindow must not extend into the next UTC day (it opens at ${start}:00 in ${parsed.expression}), got ${shown}`,
    );
  }
  return { scheduleExpression: parsed.expression, duration: `${hours}h` };
}
