/**
 * Non-secret records the rotation function keeps on the secret as tags, so that `converge status`
 * and `converge abort` work from DescribeSecret alone and never need the live password:
 *
 * - `converge:version:<versionId>` = `<generation>:<username>`: which user and generation a version
 *   holds. A username outside `[A-Za-z0-9_.\-@+=/]` is written `<generation>:b64:<base64url>`.
 *   createSecret writes it for the pending version (and for AWSCURRENT when it has none);
 *   finishSecret prunes the records of versions that no longer have a stage.
 * - `converge:gate` = `<versionId> <sinceISO> <evaluations> <lastEvaluationISO>`: the promotion
 *   gate holds `versionId` since the first hold, after `evaluations` evaluations in all
 *   invocations. finishSecret removes it on promotion.
 * - `converge:last-failure` = `<versionIdOrToken> <step> <atISO> <ErrorName> <message>`: the last
 *   step that failed (gate holds excepted), with its typed error; the message is sanitized to the
 *   characters a tag value may hold and truncated to fit.
 *
 * Tag values may only hold letters, spaces, numbers and `_ . : / = + - @`, at most 256 characters;
 * keys at most 128 (see the Secrets Manager TagResource restrictions, enforced by
 * cli/local/secrets-manager-model.ts). Every encoder here produces values inside those limits, and
 * every decoder ignores a value it cannot read (a record is information, never a reason to fail).
 */
import type { DescribeSecretCommandOutput, Tag } from '@aws-sdk/client-secrets-manager';

/** Prefix of the per-version record keys; the version id follows. */
export const TAG_VERSION_PREFIX = 'converge:version:';
/** The promotion gate's hold of the waiting version. */
export const TAG_GATE = 'converge:gate';
/** The last step failure. */
export const TAG_LAST_FAILURE = 'converge:last-failure';

/** Longest tag key Secrets Manager accepts. */
export const TAG_KEY_MAX_LENGTH = 128;
/** Longest tag value Secrets Manager accepts. */
export const TAG_VALUE_MAX_LENGTH = 256;
/** Characters a Secrets Manager tag key or value may hold (the whole string must match). */
export const TAG_ALLOWED = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

/** Usernames written as they are; any other character makes the record base64url-encoded. */
const PLAIN_USERNAME = /^[A-Za-z0-9_.\-@+=/]+$/;
const BASE64_MARKER = 'b64:';
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;
/** A token as it may appear inside a space-separated record: allowed characters, no spaces. */
const WORD = /^[\p{L}\p{N}_.:/=+\-@]+$/u;

type Tags = Pick<DescribeSecretCommandOutput, 'Tags'>;

/** What a version holds, as recorded by createSecret. */
export interface VersionRecord {
  readonly generation: number;
  readonly username: string;
}

/** The promotion gate's hold of one waiting version. */
export interface GateRecord {
  /** The version the gate holds (the rotation's token). */
  readonly versionId: string;
  /** First hold of that version, ISO 8601. */
  readonly since: string;
  /** Gate evaluations that held it, summed over every invocation. */
  readonly evaluations: number;
  /** The latest evaluation, ISO 8601. */
  readonly lastEvaluation: string;
}

/** The last step failure, as recorded by the handler. */
export interface FailureRecord {
  /** The version (rotation token) the failing step ran for. */
  readonly versionId: string;
  /** `createSecret`, `setSecret`, `testSecret`, `finishSecret` or another step name. */
  readonly step: string;
  /** When it failed, ISO 8601. */
  readonly at: string;
  /** The typed error's name, for example `AuthenticationFailedError`. */
  readonly errorName: string;
  /** The error message, sanitized to tag characters and possibly truncated (ending in `...`). */
  readonly message: string;
}

/** True when `s` can be written as a Secrets Manager tag value. */
export function isTagValue(s: string): boolean {
  return s.length <= TAG_VALUE_MAX_LENGTH && TAG_ALLOWED.test(s);
}

/**
 * The record key for `versionId`, or undefined when the id cannot be part of a tag key (a version
 * id the CLI or Secrets Manager chose is always a UUID or similar, so this is a guard only).
 *
 * @example
 * versionTagKey('c0ffee00-0000-4000-8000-000000000001'); // 'converge:version:c0ffee00-...'
 */
export function versionTagKey(versionId: string): string | undefined {
  const key = TAG_VERSION_PREFIX + versionId;
  return versionId.length > 0 && key.length <= TAG_KEY_MAX_LENGTH && WORD.test(versionId)
    ? key
    : undefined;
}

/**
 * Encodes a version record as a tag value.
 *
 * @throws RangeError when the generation is not a non-negative integer or the encoded value does
 * not fit 256 characters (a username longer than about 180 bytes, which PostgreSQL cannot hold).
 * @example
 * encodeVersionRecord({ generation: 7, username: 'app_b' });   // '7:app_b'
 * encodeVersionRecord({ generation: 7, username: 'app user' }); // '7:b64:YXBwIHVzZXI'
 */
export function encodeVersionRecord(record: VersionRecord): string {
  if (!Number.isSafeInteger(record.generation) || record.generation < 0) {
    throw new RangeError('a version record needs a non-negative integer generation');
  }
  const user = PLAIN_USERNAME.test(record.username)
    ? record.username
    : BASE64_MARKER + Buffer.from(record.username, 'utf8').toString('base64url');
  const value = `${record.generation}:${user}`;
  if (value.length > TAG_VALUE_MAX_LENGTH) {
    throw new RangeError(
      `the username is too long to record (${record.username.length} characters)`,
    );
  }
  return value;
}

/**
 * Decodes a version record tag value; undefined when it is not one.
 *
 * @example
 * decodeVersionRecord('7:b64:YXBwIHVzZXI'); // { generation: 7, username: 'app user' }
 */
export function decodeVersionRecord(value: string): VersionRecord | undefined {
  const m = /^(\d{1,15}):(.+)$/s.exec(value);
  if (!m) return undefined;
  const generation = Number(m[1]);
  const rest = m[2];
  if (rest.startsWith(BASE64_MARKER)) {
    const encoded = rest.slice(BASE64_MARKER.length);
    if (!/^[A-Za-z0-9_-]+$/.test(encoded)) return undefined;
    const username = Buffer.from(encoded, 'base64url').toString('utf8');
    // Reject anything that does not round-trip (truncated or not UTF-8).
    if (Buffer.from(username, 'utf8').toString('base64url') !== encoded) return undefined;
    return { generation, username };
  }
  return PLAIN_USERNAME.test(rest) ? { generation, username: rest } : undefined;
}

/**
 * The tag recording what `versionId` holds, or undefined when the version id or username cannot be
 * recorded (the caller logs it; status then shows the version as not recorded).
 *
 * @example
 * const tag = versionRecordTag(token, { generation: 8, username: 'app_b' });
 * if (tag) tags.push(tag);
 */
export function versionRecordTag(versionId: string, record: VersionRecord): Tag | undefined {
  const key = versionTagKey(versionId);
  if (key === undefined) return undefined;
  try {
    return { Key: key, Value: encodeVersionRecord(record) };
  } catch {
    return undefined;
  }
}

/**
 * Every readable version record in DescribeSecret's tags, by version id.
 *
 * @example
 * const records = readVersionRecords(await sm.send(new DescribeSecretCommand({ SecretId })));
 * records.get(currentVersionId); // { generation: 7, username: 'app_a' }
 */
export function readVersionRecords(describe: Tags): Map<string, VersionRecord> {
  const records = new Map<string, VersionRecord>();
  for (const tag of describe.Tags ?? []) {
    if (!tag.Key?.startsWith(TAG_VERSION_PREFIX) || tag.Value === undefined) continue;
    const versionId = tag.Key.slice(TAG_VERSION_PREFIX.length);
    const record = decodeVersionRecord(tag.Value);
    if (versionId.length > 0 && record) records.set(versionId, record);
  }
  return records;
}

/**
 * Version record keys whose version no longer has a staging label (DescribeSecret's
 * `VersionIdsToStages` lists only versions that have one): finishSecret removes them.
 *
 * @example
 * const keys = staleVersionRecordKeys(description); // ['converge:version:<old id>']
 */
export function staleVersionRecordKeys(
  describe: Pick<DescribeSecretCommandOutput, 'Tags' | 'VersionIdsToStages'>,
): string[] {
  const staged = describe.VersionIdsToStages ?? {};
  return (describe.Tags ?? [])
    .map((t) => t.Key ?? '')
    .filter((key) => key.startsWith(TAG_VERSION_PREFIX))
    .filter((key) => (staged[key.slice(TAG_VERSION_PREFIX.length)] ?? []).length === 0);
}

/**
 * Encodes a gate record.
 *
 * @throws RangeError when a field cannot be written (a version id with spaces or other characters
 * a tag cannot hold, a time that is not ISO 8601 UTC, or a negative count).
 * @example
 * encodeGateRecord({ versionId: token, since: '2024-05-01T10:00:00.000Z', evaluations: 3, lastEvaluation: '2024-05-01T10:05:00.000Z' });
 */
export function encodeGateRecord(record: GateRecord): string {
  if (!WORD.test(record.versionId))
    throw new RangeError('the version id cannot be written in a tag');
  if (!ISO.test(record.since) || !ISO.test(record.lastEvaluation)) {
    throw new RangeError('gate times must be ISO 8601 UTC');
  }
  if (!Number.isSafeInteger(record.evaluations) || record.evaluations < 0) {
    throw new RangeError('the evaluation count must be a non-negative integer');
  }
  const value = `${record.versionId} ${record.since} ${record.evaluations} ${record.lastEvaluation}`;
  if (value.length > TAG_VALUE_MAX_LENGTH)
    throw new RangeError('the gate record does not fit a tag');
  return value;
}

/**
 * Decodes a gate record tag value; undefined when it is not one.
 *
 * @example
 * decodeGateRecord('tok 2024-05-01T10:00:00.000Z 3 2024-05-01T10:05:00.000Z')?.evaluations; // 3
 */
export function decodeGateRecord(value: string): GateRecord | undefined {
  const parts = value.split(' ');
  if (parts.length !== 4) return undefined;
  const [versionId, since, count, lastEvaluation] = parts;
  if (!WORD.test(versionId) || !ISO.test(since) || !ISO.test(lastEvaluation)) return undefined;
  if (!/^\d{1,15}$/.test(count)) return undefined;
  return { versionId, since, evaluations: Number(count), lastEvaluation };
}

/**
 * The gate record after `evaluations` more holds of `versionId` at `now`: the since time and count
 * carry on when `previous` is about the same version, and start afresh otherwise.
 *
 * @example
 * const next = nextGateRecord(readGateRecord(description), token, new Date(), 1);
 */
export function nextGateRecord(
  previous: GateRecord | undefined,
  versionId: string,
  now: Date,
  evaluations = 1,
): GateRecord {
  const at = now.toISOString();
  if (previous && previous.versionId === versionId) {
    return {
      versionId,
      since: previous.since,
      evaluations: previous.evaluations + evaluations,
      lastEvaluation: at,
    };
  }
  return { versionId, since: at, evaluations, lastEvaluation: at };
}

/**
 * The promotion gate's record in DescribeSecret's tags, or undefined (none, or unreadable).
 *
 * @example
 * const gate = readGateRecord(description);
 * if (gate) console.log(`waiting since ${gate.since} (${gate.evaluations} evaluations)`);
 */
export function readGateRecord(describe: Tags): GateRecord | undefined {
  const value = (describe.Tags ?? []).find((t) => t.Key === TAG_GATE)?.Value;
  return value === undefined ? undefined : decodeGateRecord(value);
}

/**
 * `text` with every run of characters a tag value cannot hold (quotes, newlines, commas, ...)
 * replaced by one space, spaces collapsed, trimmed, and cut to `max` characters (ending in `...`
 * when cut).
 *
 * @example
 * sanitizeTagText('role "app_b" does not exist\n'); // 'role app_b does not exist'
 */
export function sanitizeTagText(text: string, max = TAG_VALUE_MAX_LENGTH): string {
  const cleaned = Array.from(text)
    .map((ch) => (/^[\p{L}\p{N}_.:/=+\-@]$/u.test(ch) ? ch : ' '))
    .join('')
    .replace(/ +/g, ' ')
    .trim();
  if (cleaned.length <= max) return cleaned;
  // Cut on a code point boundary so no half surrogate pair is left.
  let out = '';
  for (const ch of cleaned) {
    if (out.length + ch.length > max - 3) break;
    out += ch;
  }
  return `${out.trimEnd()}...`;
}

/** One space-free word for a record field: disallowed characters and spaces become `_`. */
function word(text: string, fallback: string): string {
  const w = Array.from(text)
    .map((ch) => (/^[\p{L}\p{N}_.:/=+\-@]$/u.test(ch) ? ch : '_'))
    .join('')
    .slice(0, 64);
  return w.length > 0 ? w : fallback;
}

/**
 * Encodes the last failure of a step. Never throws: every field is sanitized, and the message is
 * truncated to fit 256 characters. Pass the typed error; its name and message are recorded (they
 * never carry a password, and sanitizing drops quotes and punctuation anyway).
 *
 * @example
 * encodeFailureRecord({ versionId: token, step: 'setSecret', at: new Date(), error: err });
 * // 'tok setSecret 2024-05-01T10:00:00.000Z AuthenticationFailedError the master secret ...'
 */
export function encodeFailureRecord(input: {
  versionId: string;
  step: string;
  at: Date;
  error: unknown;
}): string {
  const err = input.error instanceof Error ? input.error : undefined;
  const head = [
    word(input.versionId, 'unknown'),
    word(input.step, 'unknown'),
    input.at.toISOString(),
    word(err?.name ?? 'Error', 'Error'),
  ].join(' ');
  const message = sanitizeTagText(
    err?.message ?? String(input.error),
    TAG_VALUE_MAX_LENGTH - head.length - 1,
  );
  return message.length > 0 ? `${head} ${message}` : head;
}

/**
 * Decodes a last-failure tag value; undefined when it is not one.
 *
 * @example
 * decodeFailureRecord('tok setSecret 2024-05-01T10:00:00.000Z AwsCallError throttled')?.step; // 'setSecret'
 */
export function decodeFailureRecord(value: string): FailureRecord | undefined {
  const m = /^(\S+) (\S+) (\S+) (\S+)(?: (.*))?$/su.exec(value);
  if (!m || !ISO.test(m[3])) return undefined;
  return { versionId: m[1], step: m[2], at: m[3], errorName: m[4], message: m[5] ?? '' };
}

/**
 * The last step failure in DescribeSecret's tags, or undefined (none, or unreadable).
 *
 * @example
 * const failure = readLastFailure(description);
 * if (failure) console.log(`${failure.step} failed at ${failure.at}: ${failure.errorName}`);
 */
export function readLastFailure(describe: Tags): FailureRecord | undefined {
  const value = (describe.Tags ?? []).find((t) => t.Key === TAG_LAST_FAILURE)?.Value;
  return value === undefined ? undefined : decodeFailureRecord(value);
}
