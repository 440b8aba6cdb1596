/**
 * The secret model shared by the rotation function, the consumer library and the CLI
 * (README.md, "The secret"). Parsing never echoes a value back: errors name the field only.
 */
import { InvalidSecretError } from './errors';

/** Secrets Manager staging labels. */
export const AWSCURRENT = 'AWSCURRENT';
export const AWSPENDING = 'AWSPENDING';
export const AWSPREVIOUS = 'AWSPREVIOUS';

/** PostgreSQL identifiers are at most NAMEDATALEN - 1 = 63 bytes; longer names are truncated. */
export const MAX_IDENTIFIER_BYTES = 63;

/** Suffix toggled by the alternating-users strategy when no explicit pair is given. */
export const CLONE_SUFFIX = '_clone';

export const ENGINES = ['postgres', 'aurora-postgresql'] as const;
export type Engine = (typeof ENGINES)[number];

/**
 * TLS modes, as libpq names them. `verify-full` (the default) checks the chain and the host name;
 * `verify-ca` checks the chain only; `require` encrypts without verifying; `disable` is plaintext and
 * is only ever used when the secret says so explicitly.
 */
export const SSL_MODES = ['verify-full', 'verify-ca', 'require', 'disable'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** A parsed database secret. `fields` keeps every key of the JSON so writes preserve unknown ones. */
export interface DbSecret {
  readonly engine: Engine;
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  readonly dbname: string;
  readonly masterarn: string;
  readonly ssl: SslMode;
  /** Credential generation; 0 when the stored JSON has none yet. */
  readonly generation: number;
  readonly ownerRole?: string;
  readonly alternateUsername?: string;
  readonly dbInstanceIdentifier?: string;
  readonly dbClusterIdentifier?: string;
  /** The JSON object as stored, unknown fields included. */
  readonly fields: Readonly<Record<string, unknown>>;
}

/** Credentials of the role allowed to CREATE/ALTER ROLE. Host fields are optional here. */
export interface MasterSecret {
  readonly username: string;
  readonly password: string;
  readonly host?: string;
  readonly port?: number;
  readonly dbname?: string;
  readonly ssl?: SslMode;
}

/**
 * Parses and validates the JSON of a rotated database secret.
 *
 * @param text - the SecretString
 * @param label - what the secret is, for error messages (e.g. `AWSCURRENT secret`)
 * @throws {@link InvalidSecretError} naming the first field that is wrong, never its value
 *
 * @example
 * const secret = parseSecret(out.SecretString, 'AWSCURRENT secret');
 * console.log(secret.username, secret.generation);
 */
export function parseSecret(text: string | undefined, label = 'secret'): DbSecret {
  const fields = parseObject(text, label);
  const engine = requireString(fields, 'engine', label);
  if (!(ENGINES as readonly string[]).includes(engine)) {
    throw new InvalidSecretError(
      `${label}: field "engine" must be one of ${ENGINES.join(', ')}`,
      'engine',
    );
  }
  const dbInstanceIdentifier = optionalString(fields, 'dbInstanceIdentifier', label);
  const dbClusterIdentifier = optionalString(fields, 'dbClusterIdentifier', label);
  const host =
    dbInstanceIdentifier || dbClusterIdentifier
      ? (optionalString(fields, 'host', label) ?? '')
      : requireString(fields, 'host', label);
  const username = requireIdentifier(fields, 'username', label);
  const alternateUsername = fields.alternateUsername === undefined
    ? undefined
    : requireIdentifier(fields, 'alternateUsername', label);
  const ownerRole = fields.ownerRole === undefined ? undefined : requireIdentifier(fields, 'ownerRole', label);
  return {
    engine: engine as Engine,
    host,
    port: requirePort(fields, label),
    username,
    password: requireString(fields, 'password', label),
    dbname: requireString(fields, 'dbname', label),
    masterarn: requireString(fields, 'masterarn', label),
    ssl: parseSsl(fields.ssl, label),
    generation: parseGeneration(fields.generation, label),
    ownerRole,
    alternateUsername,
    dbInstanceIdentifier,
    dbClusterIdentifier,
    fields,
  };
}

/**
 * Parses the master secret: `username` and `password` are required, connection fields optional
 * (an RDS-managed master secret holds only the credentials).
 *
 * @example
 * const master = parseMasterSecret(out.SecretString);
 */
export function parseMasterSecret(text: string | undefined, label = 'master secret'): MasterSecret {
  const fields = parseObject(text, label);
  return {
    username: requireIdentifier(fields, 'username', label),
    password: requireString(fields, 'password', label),
    host: optionalString(fields, 'host', label),
    port: fields.port === undefined ? undefined : requirePort(fields, label),
    dbname: optionalString(fields, 'dbname', label),
    ssl: fields.ssl === undefined ? undefined : parseSsl(fields.ssl, label),
  };
}

/**
 * The other user of the alternating pair: the explicit `alternateUsername` when set, otherwise the
 * username with `_clone` toggled.
 *
 * @throws {@link InvalidSecretError} when the alternate would exceed PostgreSQL's 63-byte limit
 * (PostgreSQL would silently truncate it and two secrets could end up sharing one role).
 *
 * @example
 * alternateUsername(parseSecret('{"username":"app",...}')); // 'app_clone'
 */
export function alternateUsername(secret: Pick<DbSecret, 'username' | 'alternateUsername'>): string {
  const { username, alternateUsername: explicit } = secret;
  if (explicit !== undefined) {
    if (explicit === username) {
      throw new InvalidSecretError(
        'field "alternateUsername" must differ from "username"',
        'alternateUsername',
      );
    }
    return explicit;
  }
  const alternate = username.endsWith(CLONE_SUFFIX)
    ? username.slice(0, -CLONE_SUFFIX.length)
    : username + CLONE_SUFFIX;
  if (alternate.length === 0) {
    throw new InvalidSecretError('field "username" has no base name before "_clone"', 'username');
  }
  if (Buffer.byteLength(alternate, 'utf8') > MAX_IDENTIFIER_BYTES) {
    throw new InvalidSecretError(
      `field "username" is too long for its alternate: "${CLONE_SUFFIX}" would exceed PostgreSQL's ` +
        `${MAX_IDENTIFIER_BYTES}-byte identifier limit (set "alternateUsername" to name the pair explicitly)`,
      'username',
    );
  }
  return alternate;
}

/**
 * The JSON of a new secret version: every stored field (unknown ones included) with `changes`
 * applied. Key order of the original is kept so diffs stay readable.
 *
 * @example
 * const pending = serializeSecret(current, { username: 'app_clone', password, generation: 2 });
 */
export function serializeSecret(
  secret: Pick<DbSecret, 'fields'>,
  changes: Readonly<Record<string, unknown>>,
): string {
  return JSON.stringify({ ...secret.fields, ...changes });
}

function parseObject(text: string | undefined, label: string): Record<string, unknown> {
  if (text === undefined || text === '') {
    throw new InvalidSecretError(`${label}: SecretString is empty (binary or missing secret value)`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // The parser's message may quote part of the text; it is deliberately not kept.
    throw new InvalidSecretError(`${label}: SecretString is not valid JSON`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new InvalidSecretError(`${label}: SecretString must be a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

function requireString(fields: Record<string, unknown>, name: string, label: string): string {
  const value = fields[name];
  if (value === undefined || value === null) {
    throw new InvalidSecretError(`${label}: required field "${name}" is missing`, name);
  }
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidSecretError(`${label}: field "${name}" must be a non-empty string`, name);
  }
  return value;
}

function optionalString(fields: Record<string, unknown>, name: string, label: string): string | undefined {
  return fields[name] === undefined || fields[name] === null ? undefined : requireString(fields, name, label);
}

function requireIdentifier(fields: Record<string, unknown>, name: string, label: string): string {
  const value = requireString(fields, name, label);
  if (value.includes('\0')) {
    throw new InvalidSecretError(`${label}: field "${name}" contains a NUL character`, name);
  }
  if (Buffer.byteLength(value, 'utf8') > MAX_IDENTIFIER_BYTES) {
    throw new InvalidSecretError(
      `${label}: field "${name}" exceeds PostgreSQL's ${MAX_IDENTIFIER_BYTES}-byte identifier limit`,
      name,
    );
  }
  return value;
}

function requirePort(fields: Record<string, unknown>, label: string): number {
  const value = fields.port;
  if (value === undefined || value === null) {
    throw new InvalidSecretError(`${label}: required field "port" is missing`, 'port');
  }
  const port = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidSecretError(`${label}: field "port" must be an integer from 1 to 65535`, 'port');
  }
  return port;
}

function parseSsl(value: unknown, label: string): SslMode {
  if (value === undefined || value === null || value === true) return 'verify-full';
  if (typeof value === 'string' && (SSL_MODES as readonly string[]).includes(value)) {
    return value as SslMode;
  }
  throw new InvalidSecretError(
    `${label}: field "ssl" must be one of ${SSL_MODES.join(', ')} (plaintext needs an explicit "disable")`,
    'ssl',
  );
}

function parseGeneration(value: unknown, label: string): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidSecretError(`${label}: field "generation" must be a non-negative integer`, 'generation');
  }
  return value;
}
