/**
 * SCRAM-SHA-256 password verifiers, computed here so the plaintext password is never sent to the
 * server in SQL text. PostgreSQL stores a pre-hashed `SCRAM-SHA-256$...` string as-is (CREATE ROLE
 * docs: "If the presented password string is already in MD5-encrypted or SCRAM-encrypted format,
 * then it is stored as-is"), so the new password cannot surface in server logs (log_statement=ddl,
 * common on RDS), in pg_stat_activity, or in pg_stat_statements.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/** PostgreSQL's default `scram_iterations`. */
export const SCRAM_ITERATIONS = 4096;

/**
 * The verifier PostgreSQL would compute for `password` (RFC 5802 / RFC 7677), in its storage format
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
 *
 * Passwords are used as their UTF-8 bytes; generated passwords are printable ASCII, for which
 * SASLprep is the identity, so clients and server agree.
 *
 * @example
 * await client.query(`ALTER ROLE ${client.escapeIdentifier(user)} PASSWORD ${client.escapeLiteral(scramVerifier(pw))}`);
 */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = SCRAM_ITERATIONS): string {
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
