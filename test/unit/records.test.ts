import {
  decodeFailureRecord,
  decodeGateRecord,
  decodeVersionRecord,
  encodeFailureRecord,
  encodeGateRecord,
  encodeVersionRecord,
  isTagValue,
  nextGateRecord,
  readGateRecord,
  readLastFailure,
  readVersionRecords,
  sanitizeTagText,
  staleVersionRecordKeys,
  TAG_GATE,
  TAG_LAST_FAILURE,
  TAG_VALUE_MAX_LENGTH,
  versionRecordTag,
  versionTagKey,
} from '../../lambda/rotation/records';
import { AuthenticationFailedError, DatabaseOperationError } from '../../lambda/shared/errors';

const TOKEN = 'c0ffee00-0000-4000-8000-000000000001';

describe('Version records: converge:version:<id> = <generation>:<username>', () => {
  it('writes a plain username as it is', () => {
    expect(encodeVersionRecord({ generation: 7, username: 'app_b' })).toBe('7:app_b');
    expect(versionRecordTag(TOKEN, { generation: 7, username: 'app_b' })).toEqual({
      Key: `converge:version:${TOKEN}`,
      Value: '7:app_b',
    });
  });

  it.each([
    ['a space', 'app user'],
    ['a colon (the field separator)', 'app:b'],
    ['a name that looks like the b64 marker', 'b64:YXBw'],
    ['quotes and a semicolon', `app"; DROP ROLE x; --`],
    ['a newline', 'app\nb'],
    ['non-ASCII letters', 'ünïcødé_用户'],
    ['an emoji (surrogate pair)', 'app_🔑'],
    ['the aws: prefix', 'aws:app'],
  ])('round-trips a hostile username with %s through a valid tag value', (_what, username) => {
    // Act
    const value = encodeVersionRecord({ generation: 12, username });
    // Assess
    expect(isTagValue(value)).toBe(true);
    expect(value).toMatch(/^12:b64:[A-Za-z0-9_-]+$/);
    expect(decodeVersionRecord(value)).toEqual({ generation: 12, username });
  });

  it('round-trips the longest username PostgreSQL can hold (63 bytes), plain and encoded', () => {
    for (const username of ['a'.repeat(63), 'é'.repeat(31)]) {
      const value = encodeVersionRecord({ generation: 999_999, username });
      expect(isTagValue(value)).toBe(true);
      expect(decodeVersionRecord(value)?.username).toBe(username);
    }
  });

  it('refuses a username whose record would not fit 256 characters', () => {
    expect(() => encodeVersionRecord({ generation: 1, username: 'x'.repeat(300) })).toThrow(
      RangeError,
    );
    expect(versionRecordTag(TOKEN, { generation: 1, username: ' '.repeat(200) })).toBeUndefined();
  });

  it('refuses a negative or fractional generation', () => {
    expect(() => encodeVersionRecord({ generation: -1, username: 'a' })).toThrow(RangeError);
    expect(() => encodeVersionRecord({ generation: 1.5, username: 'a' })).toThrow(RangeError);
  });

  it('gives no key for a version id a tag key cannot hold', () => {
    expect(versionTagKey('has space')).toBeUndefined();
    expect(versionTagKey('x'.repeat(120))).toBeUndefined();
    expect(versionTagKey('')).toBeUndefined();
    expect(versionTagKey(TOKEN)).toBe(`converge:version:${TOKEN}`);
  });

  it.each(['', '7', 'x:app', '7:', '7:b64:', '7:b64:!!', '7:app b', '7:b64:_w'])(
    'ignores the unreadable value %j',
    (value) => {
      expect(decodeVersionRecord(value)).toBeUndefined();
    },
  );

  it('reads every record from DescribeSecret tags and skips foreign and broken ones', () => {
    // Prepare
    const describe = {
      Tags: [
        { Key: 'converge:version:v1', Value: '3:app_a' },
        {
          Key: 'converge:version:v2',
          Value: encodeVersionRecord({ generation: 4, username: 'app b' }),
        },
        { Key: 'converge:version:v3', Value: 'garbage' },
        { Key: 'converge:generation', Value: '4' },
        { Key: 'team', Value: 'payments' },
      ],
    };
    // Act
    const records = readVersionRecords(describe);
    // Assess
    expect([...records.entries()]).toEqual([
      ['v1', { generation: 3, username: 'app_a' }],
      ['v2', { generation: 4, username: 'app b' }],
    ]);
    expect(readVersionRecords({}).size).toBe(0);
  });

  it('names the records of versions that lost every stage, and only those', () => {
    const describe = {
      Tags: [
        { Key: 'converge:version:cur', Value: '4:a' },
        { Key: 'converge:version:prev', Value: '3:b' },
        { Key: 'converge:version:gone', Value: '2:a' },
        { Key: 'converge:version:empty', Value: '1:b' },
        { Key: 'converge:gate', Value: 'x' },
      ],
      VersionIdsToStages: { cur: ['AWSCURRENT'], prev: ['AWSPREVIOUS'], empty: [] },
    };
    expect(staleVersionRecordKeys(describe)).toEqual([
      'converge:version:gone',
      'converge:version:empty',
    ]);
  });
});

describe('Gate record: converge:gate = <versionId> <since> <evaluations> <lastEvaluation>', () => {
  const t0 = new Date('2024-05-01T10:00:00.000Z');
  const t1 = new Date('2024-05-01T10:05:00.000Z');

  it('round-trips through a valid tag value', () => {
    const record = {
      versionId: TOKEN,
      since: t0.toISOString(),
      evaluations: 3,
      lastEvaluation: t1.toISOString(),
    };
    const value = encodeGateRecord(record);
    expect(value).toBe(`${TOKEN} 2024-05-01T10:00:00.000Z 3 2024-05-01T10:05:00.000Z`);
    expect(isTagValue(value)).toBe(true);
    expect(readGateRecord({ Tags: [{ Key: TAG_GATE, Value: value }] })).toEqual(record);
  });

  it('keeps the first hold time and sums evaluations for the same version', () => {
    // Act
    const first = nextGateRecord(undefined, TOKEN, t0, 2);
    const second = nextGateRecord(first, TOKEN, t1, 1);
    // Assess
    expect(first).toEqual({
      versionId: TOKEN,
      since: t0.toISOString(),
      evaluations: 2,
      lastEvaluation: t0.toISOString(),
    });
    expect(second).toEqual({
      versionId: TOKEN,
      since: t0.toISOString(),
      evaluations: 3,
      lastEvaluation: t1.toISOString(),
    });
  });

  it('starts afresh when the record is about another version (a previous rotation)', () => {
    const old = nextGateRecord(undefined, 'old-token-0000000000000000000000000', t0, 40);
    expect(nextGateRecord(old, TOKEN, t1)).toEqual({
      versionId: TOKEN,
      since: t1.toISOString(),
      evaluations: 1,
      lastEvaluation: t1.toISOString(),
    });
  });

  it('refuses fields that would make an unreadable record', () => {
    const ok = {
      versionId: TOKEN,
      since: t0.toISOString(),
      evaluations: 1,
      lastEvaluation: t0.toISOString(),
    };
    expect(() => encodeGateRecord({ ...ok, versionId: 'a b' })).toThrow(RangeError);
    expect(() => encodeGateRecord({ ...ok, since: 'yesterday' })).toThrow(RangeError);
    expect(() => encodeGateRecord({ ...ok, evaluations: -1 })).toThrow(RangeError);
  });

  it.each(['', 'tok', 'tok 2024-05-01T10:00:00.000Z x 2024-05-01T10:00:00.000Z', 'tok now 1 now'])(
    'ignores the unreadable value %j',
    (value) => {
      expect(decodeGateRecord(value)).toBeUndefined();
    },
  );

  it('reads nothing when the tag is absent', () => {
    expect(readGateRecord({ Tags: [{ Key: 'converge:generation', Value: '3' }] })).toBeUndefined();
  });
});

describe('Last failure: converge:last-failure = <versionId> <step> <at> <ErrorName> <message>', () => {
  const at = new Date('2024-05-01T10:00:00.000Z');

  it('records the step, time, typed error name and message, and reads them back', () => {
    // Act
    const value = encodeFailureRecord({
      versionId: TOKEN,
      step: 'setSecret',
      at,
      error: new AuthenticationFailedError(
        'the master user was refused by db.example.internal:5432',
      ),
    });
    // Assess
    expect(isTagValue(value)).toBe(true);
    expect(readLastFailure({ Tags: [{ Key: TAG_LAST_FAILURE, Value: value }] })).toEqual({
      versionId: TOKEN,
      step: 'setSecret',
      at: '2024-05-01T10:00:00.000Z',
      errorName: 'AuthenticationFailedError',
      message: 'the master user was refused by db.example.internal:5432',
    });
  });

  it('sanitizes quotes, newlines, commas and other characters a tag cannot hold', () => {
    const value = encodeFailureRecord({
      versionId: TOKEN,
      step: 'setSecret',
      at,
      error: new DatabaseOperationError(
        'ALTER ROLE "app_b" failed;\n permission denied (42501), {x}',
      ),
    });
    expect(isTagValue(value)).toBe(true);
    expect(decodeFailureRecord(value)?.message).toBe(
      'ALTER ROLE app_b failed permission denied 42501 x',
    );
  });

  it('truncates a long message so the whole value fits 256 characters, and says so', () => {
    // Prepare
    const long = `${'word '.repeat(100)}END`;
    // Act
    const value = encodeFailureRecord({
      versionId: TOKEN,
      step: 'testSecret',
      at,
      error: new Error(long),
    });
    // Assess
    expect(value.length).toBeLessThanOrEqual(TAG_VALUE_MAX_LENGTH);
    expect(isTagValue(value)).toBe(true);
    const decoded = decodeFailureRecord(value);
    expect(decoded?.message.endsWith('...')).toBe(true);
    expect(decoded?.message).not.toContain('END');
    expect(decoded?.errorName).toBe('Error');
  });

  it('never splits a surrogate pair when truncating', () => {
    const value = encodeFailureRecord({
      versionId: TOKEN,
      step: 's',
      at,
      error: new Error('𝒜'.repeat(200)),
    });
    expect(value.length).toBeLessThanOrEqual(TAG_VALUE_MAX_LENGTH);
    expect(isTagValue(value)).toBe(true);
    expect(decodeFailureRecord(value)?.message).toMatch(/^(𝒜)+\.\.\.$/u);
    expect(value).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });

  it('keeps the record parseable when the token, step or name hold spaces or hostile characters', () => {
    class Weird extends Error {
      public constructor() {
        super('boom');
        this.name = 'Weird Name"';
      }
    }
    const value = encodeFailureRecord({
      versionId: 'tok en"',
      step: 'set Secret',
      at,
      error: new Weird(),
    });
    expect(isTagValue(value)).toBe(true);
    expect(decodeFailureRecord(value)).toEqual({
      versionId: 'tok_en_',
      step: 'set_Secret',
      at: '2024-05-01T10:00:00.000Z',
      errorName: 'Weird_Name_',
      message: 'boom',
    });
  });

  it('records a thrown non-Error by its text', () => {
    const value = encodeFailureRecord({
      versionId: TOKEN,
      step: 'createSecret',
      at,
      error: 'plain string',
    });
    expect(decodeFailureRecord(value)).toMatchObject({
      errorName: 'Error',
      message: 'plain string',
    });
  });

  it('ignores an unreadable value', () => {
    expect(decodeFailureRecord('only three words')).toBeUndefined();
    expect(readLastFailure({})).toBeUndefined();
  });

  it('sanitizeTagText collapses runs and trims', () => {
    expect(sanitizeTagText('  a\t\t"b"\n\nc  ')).toBe('a b c');
    expect(sanitizeTagText('\u00a0x\u2003y')).toBe('x y');
  });
});
