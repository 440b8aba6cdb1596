/**
 * The `application_name` the consumer library gives every connection it opens, so that a session in
 * `pg_stat_activity` names the consumer, the credential generation and the process that opened it:
 *
 *     cv1:<consumer>:<generation>:<host>:<pid>
 *
 * - `cv1`: the version of this form.
 * - `<consumer>`: the consumer's registered name (lambda/shared/registry.ts; it may contain `:`).
 * - `<generation>`: the generation of the credential the connection logged in with.
 * - `<host>`: the host name of the process (`os.hostname()`), `:` and non-ASCII replaced by `?`.
 * - `<pid>`: the process id.
 *
 * PostgreSQL keeps at most 63 bytes of `application_name` (NAMEDATALEN - 1) and replaces non-ASCII
 * bytes, so the form is ASCII only and at most 63 bytes: when it would be longer, the host is
 * shortened first (down to {@link MIN_HOST_CHARS} characters), then the consumer; a shortened field
 * ends with `~`. The generation and the pid are never shortened.
 *
 * A session whose `application_name` does not parse was not opened through the library: it is
 * "unattributed" (an unregistered consumer, a human with psql, a script).
 */
import { ConfigurationError } from './errors';

/** The version prefix of the form. */
export const APPLICATION_NAME_VERSION = 'cv1';

/** PostgreSQL's limit on `application_name`, bytes (NAMEDATALEN - 1). */
export const MAX_APPLICATION_NAME_BYTES = 63;

/** A shortened host keeps at least this many characters (with its `~`) before the consumer is shortened. */
export const MIN_HOST_CHARS = 8;

/** Marks a field that was shortened to fit {@link MAX_APPLICATION_NAME_BYTES}. */
export const TRUNCATION_MARK = '~';

/** Who opened a session: what the `cv1` form carries. */
export interface SessionAttribution {
  /** Registered consumer name (ends with `~` when it was shortened to fit). */
  readonly consumer: string;
  /** Generation of the credential the connection logged in with. */
  readonly generation: number;
  /** Host name of the process (ASCII; ends with `~` when it was shortened). */
  readonly host: string;
  /** Process id. */
  readonly pid: number;
}

const CONSUMER_CHAR = /[A-Za-z0-9._:/@+=-]/;
const HOST_CHAR = /[A-Za-z0-9._-]/;
const FORM =
  /^cv1:([A-Za-z0-9?][A-Za-z0-9._:/@+=?-]*~?):(0|[1-9][0-9]{0,15}):([A-Za-z0-9._?-]+~?):([1-9][0-9]{0,9})$/;

/**
 * The `cv1` application_name of a connection, ASCII only and at most 63 bytes.
 *
 * @throws {@link ConfigurationError} when the consumer is empty, the generation is not a
 * non-negative safe integer or the pid not a positive integer
 *
 * @example
 * formatApplicationName({ consumer: 'orders-api', generation: 7, host: os.hostname(), pid: process.pid });
 * // 'cv1:orders-api:7:ip-10-0-1-23:4242'
 */
export function formatApplicationName(attribution: SessionAttribution): string {
  const { generation, pid } = attribution;
  if (!Number.isSafeInteger(generation) || generation < 0) {
    throw new ConfigurationError(
      `application_name: generation must be a non-negative integer, got ${String(generation)}`,
    );
  }
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid > 9_999_999_999) {
    throw new ConfigurationError(
      `application_name: pid must be a positive integer, got ${String(pid)}`,
    );
  }
  if (attribution.consumer.length === 0) {
    throw new ConfigurationError('application_name: the consumer name is empty');
  }
  let consumer = ascii(attribution.consumer, CONSUMER_CHAR);
  if (!/^[A-Za-z0-9?]/.test(consumer)) consumer = `?${consumer.slice(1)}`;
  let host = ascii(attribution.host, HOST_CHAR) || '?';
  const fixed = `${APPLICATION_NAME_VERSION}:`.length + `:${generation}:`.length + `:${pid}`.length;
  const room = MAX_APPLICATION_NAME_BYTES - fixed;
  if (consumer.length + host.length > room) {
    const hostRoom = Math.max(room - consumer.length, Math.min(host.length, MIN_HOST_CHARS));
    host = shorten(host, hostRoom);
    consumer = shorten(consumer, room - host.length);
  }
  return `${APPLICATION_NAME_VERSION}:${consumer}:${generation}:${host}:${pid}`;
}

/**
 * Reads a session's `application_name`: the attribution when it is exactly the `cv1` form,
 * undefined otherwise (the session was not opened through the consumer library: "unattributed").
 *
 * The consumer may contain `:`; the last three fields are the generation, the host and the pid.
 *
 * @example
 * parseApplicationName('cv1:billing:jobs:7:host-a:4242');
 * // { consumer: 'billing:jobs', generation: 7, host: 'host-a', pid: 4242 }
 * parseApplicationName('psql'); // undefined
 */
export function parseApplicationName(
  applicationName: string | null | undefined,
): SessionAttribution | undefined {
  if (!applicationName || Buffer.byteLength(applicationName) > MAX_APPLICATION_NAME_BYTES) {
    return undefined;
  }
  const m = FORM.exec(applicationName);
  if (!m) return undefined;
  const generation = Number(m[2]);
  const pid = Number(m[4]);
  if (!Number.isSafeInteger(generation)) return undefined;
  return { consumer: m[1]!, generation, host: m[3]!, pid };
}

/**
 * Whether an attributed session's consumer field stands for the registered consumer `name`: equal,
 * or a shortened prefix of it (ending with `~`).
 *
 * @example
 * attributedTo({ consumer: 'very-long-consumer-na~', generation: 1, host: 'h', pid: 1 }, 'very-long-consumer-name-of-orders');
 * // true
 */
export function attributedTo(attribution: SessionAttribution, name: string): boolean {
  const c = attribution.consumer;
  if (c === name) return true;
  if (!c.endsWith(TRUNCATION_MARK)) return false;
  return ascii(name, CONSUMER_CHAR).startsWith(c.slice(0, -TRUNCATION_MARK.length));
}

/** Each character that is not allowed (non-ASCII included: one `?` per code point) becomes `?`. */
function ascii(value: string, allowed: RegExp): string {
  let out = '';
  for (const ch of value) out += allowed.test(ch) ? ch : '?';
  return out;
}

function shorten(value: string, max: number): string {
  if (value.length <= max) return value;
  return value.slice(0, Math.max(max - TRUNCATION_MARK.length, 1)) + TRUNCATION_MARK;
}
