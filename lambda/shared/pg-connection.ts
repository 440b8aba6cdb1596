/**
 * How every part of converge connects to PostgreSQL: TLS per the secret's `ssl` mode with no silent
 * downgrade, connect and statement timeouts on every connection, and driver failures turned into
 * typed errors that name the host and user but never the password.
 */
import { readFileSync } from 'node:fs';
import { checkServerIdentity, createSecureContext, type SecureContext } from 'node:tls';
import { Client, DatabaseError, type ClientConfig } from 'pg';
import {
  AuthenticationFailedError,
  ConfigurationError,
  ConvergeError,
  DatabaseConnectionError,
  TlsRequiredError,
  redactedCause,
} from './errors';
import type { SslMode } from './secret';

/** Where to connect. */
export interface ConnectionTarget {
  readonly host: string;
  readonly port: number;
  readonly dbname: string;
  readonly ssl: SslMode;
}

/**
 * Where a secret's credential connects.
 *
 * @example
 * await withClient(targetOf(secret), secret, options, (c) => c.query('SELECT 1'));
 */
export function targetOf(secret: ConnectionTarget): ConnectionTarget {
  return { host: secret.host, port: secret.port, dbname: secret.dbname, ssl: secret.ssl };
}

/** Who connects. */
export interface Credential {
  readonly username: string;
  readonly password: string;
}

/** Connection behaviour shared by the rotation function, the consumer pool and the CLI. */
export interface ConnectionOptions {
  /**
   * PEM file with the certificate authorities that sign the server certificate.
   *
   * @default - Node's built-in trust store (verification still happens)
   */
  readonly caBundlePath?: string;
  /**
   * Time allowed for TCP, TLS and authentication together.
   *
   * @default 5000
   */
  readonly connectTimeoutMs?: number;
  /**
   * Server-side `statement_timeout` and client-side query timeout.
   *
   * @default 10000
   */
  readonly statementTimeoutMs?: number;
  /**
   * `application_name` shown in pg_stat_activity.
   *
   * @default 'converge'
   */
  readonly applicationName?: string;
  /**
   * Pin the session's `search_path` to `pg_catalog, pg_temp` from the first statement on (a startup
   * option, which outranks every per-role and per-database setting). Every session that runs as the
   * master sets it: names in its SQL then resolve only to the system catalog, never to a function,
   * operator or relation that a rotated (untrusted) user created in a schema it can write.
   *
   * @default false
   */
  readonly pinCatalogSearchPath?: boolean;
}

/** The startup option that {@link ConnectionOptions.pinCatalogSearchPath} sends. */
export const CATALOG_SEARCH_PATH_OPTION = '-c search_path=pg_catalog,pg_temp';

const caCache = new Map<string, Buffer>();

function readCa(path: string): Buffer {
  let ca = caCache.get(path);
  if (!ca) {
    try {
      ca = readFileSync(path);
    } catch (err) {
      throw new ConfigurationError(`CA bundle "${path}" cannot be read`, {
        cause: redactedCause(err),
      });
    }
    caCache.set(path, ca);
  }
  return ca;
}

const contextCache = new Map<string, SecureContext>();

/**
 * One TLS context per CA bundle, built once: passing `ca` instead would make Node parse the bundle
 * and build a new certificate store for every connection (the RDS global bundle holds over a
 * hundred certificates).
 */
function caContext(path: string): SecureContext {
  let context = contextCache.get(path);
  if (!context) {
    context = createSecureContext({ ca: readCa(path) });
    contextCache.set(path, context);
  }
  return context;
}

/**
 * The `pg` TLS settings for a mode. `verify-full` checks the certificate chain and that the
 * certificate names `host` (IP addresses included, which `pg` alone does not check).
 *
 * @example
 * new pg.Client({ host, ssl: tlsSettings('verify-full', host, { caBundlePath }) });
 */
export function tlsSettings(
  mode: SslMode,
  host: string,
  options: ConnectionOptions = {},
): ClientConfig['ssl'] {
  if (mode === 'disable') return false;
  if (mode === 'require') return { rejectUnauthorized: false };
  const trust = options.caBundlePath ? { secureContext: caContext(options.caBundlePath) } : {};
  if (mode === 'verify-ca') {
    return { ...trust, rejectUnauthorized: true, checkServerIdentity: () => undefined };
  }
  return {
    ...trust,
    rejectUnauthorized: true,
    servername: isIp(host) ? undefined : host,
    checkServerIdentity: (_name, cert) => checkServerIdentity(host, cert),
  };
}

/**
 * A complete `pg` client configuration for a target and credential.
 *
 * @example
 * const pool = new pg.Pool(pgConfig(target, { username, password }, { caBundlePath }));
 */
export function pgConfig(
  target: ConnectionTarget,
  credential: Credential,
  options: ConnectionOptions = {},
): ClientConfig {
  const statementTimeout = options.statementTimeoutMs ?? 10_000;
  return {
    host: target.host,
    port: target.port,
    database: target.dbname,
    user: credential.username,
    password: credential.password,
    ssl: tlsSettings(target.ssl, target.host, options),
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
    statement_timeout: statementTimeout,
    query_timeout: statementTimeout + 1_000,
    application_name: options.applicationName ?? 'converge',
    ...(options.pinCatalogSearchPath ? { options: CATALOG_SEARCH_PATH_OPTION } : {}),
  };
}

/**
 * Opens one connection, or throws a typed error: {@link AuthenticationFailedError} for a rejected
 * credential, {@link TlsRequiredError} when TLS cannot be established or verified, and
 * {@link DatabaseConnectionError} otherwise. The password never appears in the error.
 *
 * @example
 * const client = await openClient(target, credential, { caBundlePath });
 * try { await client.query('SELECT 1'); } finally { await client.end(); }
 */
export async function openClient(
  target: ConnectionTarget,
  credential: Credential,
  options: ConnectionOptions = {},
): Promise<Client> {
  const client = new Client(pgConfig(target, credential, options));
  // An idle connection dropped by the server must not crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return client;
  } catch (err) {
    await client.end().catch(() => undefined);
    throw classifyConnectError(err, target, credential);
  }
}

/**
 * Runs `fn` with a fresh connection and always closes it.
 *
 * @example
 * const user = await withClient(target, cred, {}, (c) => c.query('SELECT current_user'));
 */
export async function withClient<T>(
  target: ConnectionTarget,
  credential: Credential,
  options: ConnectionOptions,
  fn: (client: Client) => Promise<T>,
): Promise<T> {
  const client = await openClient(target, credential, options);
  try {
    return await fn(client);
  } catch (err) {
    throw lostConnection(err, target, credential) ?? err;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Node and `pg` codes and messages of a connection that broke after it was established. */
const LOST_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED']);
const LOST_MESSAGE =
  /connection terminated|connection (was )?(lost|closed|ended)|client has encountered a connection error|socket hang up|not queryable/i;

/**
 * A connection that broke while `fn` used it becomes a {@link DatabaseConnectionError} naming the
 * target: the socket went away (`pg` throws a plain `Error`), or the server ended the session
 * (a FATAL error, SQLSTATE class 57 such as 57P01 on an administrator's command or a failover, or
 * class 08). Statement errors and typed errors are left as they are.
 */
function lostConnection(
  err: unknown,
  target: ConnectionTarget,
  credential: Credential,
): DatabaseConnectionError | undefined {
  if (err instanceof ConvergeError || !(err instanceof Error)) return undefined;
  const code = (err as { code?: string }).code;
  if (err instanceof DatabaseError) {
    const sessionEnded =
      err.severity === 'FATAL' || err.severity === 'PANIC' || /^(57|08)/.test(code ?? '');
    if (!sessionEnded) return undefined;
  } else if (!(code !== undefined && LOST_CODES.has(code)) && !LOST_MESSAGE.test(err.message)) {
    return undefined;
  }
  return new DatabaseConnectionError(
    `the connection to ${target.host}:${target.port}/${target.dbname} as "${credential.username}" broke while in use (${err.message}); ` +
      'whatever was not committed was rolled back by the server',
    { cause: redactedCause(err, [credential.password]), code },
  );
}

const TLS_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

/**
 * Maps a `pg` connect failure to a typed error.
 *
 * @example
 * try { await client.connect(); } catch (err) { throw classifyConnectError(err, target, cred); }
 */
export function classifyConnectError(
  err: unknown,
  target: ConnectionTarget,
  credential: Credential,
): ConvergeError {
  if (err instanceof ConvergeError) return err;
  const cause = redactedCause(err, [credential.password]);
  const code = (err as { code?: string } | undefined)?.code;
  const where = `${target.host}:${target.port}/${target.dbname} as "${credential.username}"`;
  if (code === '28P01' || code === '28000') {
    return new AuthenticationFailedError(
      `PostgreSQL rejected the credential for ${where} (SQLSTATE ${code})`,
      {
        cause,
        code,
      },
    );
  }
  if (/does not support SSL/i.test(cause.message)) {
    return new TlsRequiredError(
      `${where}: the server does not offer TLS and ssl mode "${target.ssl}" requires it (no plaintext fallback)`,
      { cause, code },
    );
  }
  if ((code && TLS_CODES.has(code)) || /certificate|altnames|self[- ]signed/i.test(cause.message)) {
    return new TlsRequiredError(
      `${where}: the server certificate could not be verified (${code ?? cause.message})`,
      {
        cause,
        code,
      },
    );
  }
  if (/timeout/i.test(cause.message)) {
    return new DatabaseConnectionError(`${where}: connection timed out`, {
      cause,
      code: code ?? 'ETIMEDOUT',
    });
  }
  return new DatabaseConnectionError(`${where}: cannot connect (${code ?? cause.message})`, {
    cause,
    code,
  });
}

function isIp(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}
