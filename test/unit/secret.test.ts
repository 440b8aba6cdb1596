import { InvalidSecretError } from '../../lambda/shared/errors';
import { alternateUsername, parseSecret, serializeSecret } from '../../lambda/shared/secret';

const base = {
  engine: 'postgres',
  host: 'db.example.internal',
  port: 5432,
  username: 'app',
  password: 'p4ss-word-value',
  dbname: 'orders',
  masterarn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:master-abc',
};

function parse(fields: Record<string, unknown>) {
  return parseSecret(JSON.stringify(fields), 'AWSCURRENT secret');
}

describe('Function: parseSecret', () => {
  it('parses a complete secret with defaults for ssl and generation', () => {
    // Act
    const s = parse(base);
    // Assess
    expect(s).toMatchObject({ username: 'app', port: 5432, ssl: 'verify-full', generation: 0 });
  });

  it('accepts a numeric string port as RDS-created secrets sometimes carry', () => {
    expect(parse({ ...base, port: '5433' }).port).toBe(5433);
  });

  it.each(['engine', 'host', 'port', 'username', 'password', 'dbname', 'masterarn'])(
    'names the missing required field "%s" and never prints the password',
    (field) => {
      // Prepare
      const fields: Record<string, unknown> = { ...base };
      delete fields[field];
      // Act
      const act = () => parse(fields);
      // Assess
      expect(act).toThrow(InvalidSecretError);
      expect(act).toThrow(new RegExp(`"${field}" is missing`));
      try {
        act();
      } catch (e) {
        expect((e as InvalidSecretError).field).toBe(field);
        expect((e as Error).message).not.toContain(base.password);
      }
    },
  );

  it('rejects malformed JSON without echoing its text', () => {
    const text = `{"password":"${base.password}",`;
    expect(() => parseSecret(text)).toThrow(/not valid JSON/);
    try {
      parseSecret(text);
    } catch (e) {
      expect((e as Error).message).not.toContain(base.password);
    }
  });

  it.each([[[]], ['"a string"'], [null]])('rejects JSON that is not an object (%p)', (value) => {
    expect(() => parseSecret(typeof value === 'string' ? value : JSON.stringify(value))).toThrow(/must be a JSON object/);
  });

  it('rejects an engine that is not PostgreSQL', () => {
    expect(() => parse({ ...base, engine: 'mysql' })).toThrow(/field "engine" must be one of postgres, aurora-postgresql/);
  });

  it('rejects an unknown ssl mode and a boolean false (plaintext must be explicit)', () => {
    expect(() => parse({ ...base, ssl: 'prefer' })).toThrow(/field "ssl"/);
    expect(() => parse({ ...base, ssl: false })).toThrow(/explicit "disable"/);
    expect(parse({ ...base, ssl: 'disable' }).ssl).toBe('disable');
  });

  it.each([[-1], [1.5], ['3']])('rejects a generation that is not a non-negative integer (%p)', (generation) => {
    expect(() => parse({ ...base, generation })).toThrow(/field "generation"/);
  });

  it('rejects a port outside 1-65535', () => {
    expect(() => parse({ ...base, port: 70000 })).toThrow(/field "port"/);
  });

  it('keeps unknown fields for later writes', () => {
    // Act
    const s = parse({ ...base, proxy: 'rds-proxy-1', generation: 4 });
    const out = JSON.parse(serializeSecret(s, { username: 'app_clone', generation: 5 }));
    // Assess
    expect(out).toMatchObject({ proxy: 'rds-proxy-1', username: 'app_clone', generation: 5, host: base.host });
  });

  it('allows a missing host when an RDS identifier names the database', () => {
    expect(parse({ ...base, host: undefined, dbInstanceIdentifier: 'orders-db' }).host).toBe('');
  });
});

describe('Function: alternateUsername', () => {
  it('toggles the _clone suffix', () => {
    expect(alternateUsername({ username: 'app' })).toBe('app_clone');
    expect(alternateUsername({ username: 'app_clone' })).toBe('app');
  });

  it('uses the explicit pair when given', () => {
    expect(alternateUsername({ username: 'blue', alternateUsername: 'green' })).toBe('green');
    expect(() => alternateUsername({ username: 'blue', alternateUsername: 'blue' })).toThrow(/must differ/);
  });

  it('refuses a username whose alternate exceeds 63 bytes', () => {
    // 58 bytes + "_clone" (6) = 64 bytes
    const username = 'u'.repeat(58);
    expect(() => alternateUsername({ username })).toThrow(/63-byte/);
    expect(alternateUsername({ username: 'u'.repeat(57) })).toHaveLength(63);
  });

  it('counts bytes, not characters, as PostgreSQL does', () => {
    // 29 two-byte characters = 58 bytes
    expect(() => alternateUsername({ username: 'é'.repeat(29) })).toThrow(/63-byte/);
  });
});
