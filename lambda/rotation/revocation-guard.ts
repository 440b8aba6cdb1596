/**
 * Revocation guard (DESIGN.md 4.5): setSecret calls {@link revocationGuard} before the ALTER ROLE
 * that overwrites the password of an existing alternate user (the AWSPREVIOUS user).
 *
 * SEAM: consumer evidence and pg_stat_activity checks are built by the convergence-gates work
 * (issue 4).
 */
import type { Client } from 'pg';
import type { DbSecret } from '../shared/secret';
import type { StepContext } from './context';

export interface RevocationGuardInput {
  /** The user whose password is about to be overwritten. */
  readonly username: string;
  /** The AWSCURRENT secret (its generation is what every consumer must have reached). */
  readonly current: DbSecret;
  /** A connection as the master role, on the secret's database. */
  readonly master: Client;
}

export async function revocationGuard(_ctx: StepContext, _input: RevocationGuardInput): Promise<void> {
  return;
}
