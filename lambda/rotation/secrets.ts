/**
 * Reading the versions of the rotated secret (AWSCURRENT, AWSPENDING, any stage), parsed and
 * validated, with the host resolved through RDS when the secret names an instance or cluster instead.
 */
import { ConfusedDeputyError, InvalidSecretError, RotationStateError } from '../shared/errors';
import {
  alternateUsername,
  AWSCURRENT,
  AWSPENDING,
  parseSecret,
  type DbSecret,
} from '../shared/secret';
import { getSecretString } from './aws-call';
import type { StepContext } from './context';
import { resolveRdsEndpoint } from './master-secret';

/** The AWSCURRENT secret. @throws {@link InvalidSecretError} when it is missing or malformed */
export async function readCurrent(
  ctx: Pick<StepContext, 'secretsManager' | 'rds' | 'secretArn'>,
): Promise<DbSecret> {
  const current = await readStage(ctx, AWSCURRENT);
  if (!current) throw new InvalidSecretError(`secret ${ctx.secretArn} has no AWSCURRENT value`);
  return current;
}

/**
 * The secret at a staging label, or undefined when no version with a value carries it.
 *
 * @example
 * const former = await readStage(ctx, AWSPREVIOUS);
 */
export async function readStage(
  ctx: Pick<StepContext, 'secretsManager' | 'rds' | 'secretArn'>,
  stage: string,
): Promise<DbSecret | undefined> {
  const text = await getSecretString(ctx.secretsManager, {
    SecretId: ctx.secretArn,
    VersionStage: stage,
  });
  return text === undefined ? undefined : resolveHost(ctx, parseSecret(text, `${stage} secret`));
}

/** The AWSPENDING value of this rotation's token, or undefined when createSecret has not stored it. */
export async function readPendingIfAny(ctx: StepContext): Promise<DbSecret | undefined> {
  const text = await getSecretString(ctx.secretsManager, {
    SecretId: ctx.secretArn,
    VersionId: ctx.token,
    VersionStage: AWSPENDING,
  });
  return text === undefined ? undefined : resolveHost(ctx, parseSecret(text, 'AWSPENDING secret'));
}

/** The AWSPENDING value of this rotation's token. @throws {@link RotationStateError} when absent */
export async function readPending(ctx: StepContext): Promise<DbSecret> {
  const pending = await readPendingIfAny(ctx);
  if (!pending) {
    throw new RotationStateError(
      `version ${ctx.token} of ${ctx.secretArn} has no AWSPENDING value (createSecret has not run)`,
    );
  }
  return pending;
}

/**
 * The secret with its host filled in from RDS when it names an instance or cluster instead.
 *
 * @example
 * const secret = await resolveHost(ctx, parseSecret(text));
 */
export async function resolveHost(
  ctx: Pick<StepContext, 'rds'>,
  secret: DbSecret,
): Promise<DbSecret> {
  if (secret.host) return secret;
  const endpoint = await resolveRdsEndpoint(ctx.rds, {
    instance: secret.dbInstanceIdentifier,
    cluster: secret.dbClusterIdentifier,
  });
  return { ...secret, host: endpoint.host };
}

/**
 * `other` must describe the alternate user of `reference` on the same database, with the same master
 * and TLS mode; anything else could make the master act on an unrelated role or another database, or
 * use a weaker connection.
 *
 * @throws {@link ConfusedDeputyError} naming the field that differs
 *
 * @example
 * assertAlternateOf(current, pending, 'AWSPENDING');
 */
export function assertAlternateOf(reference: DbSecret, other: DbSecret, label: string): void {
  const expected = alternateUsername(reference);
  if (other.username !== expected) {
    throw new ConfusedDeputyError(
      `${label} user "${other.username}" is not the alternate of AWSCURRENT user "${reference.username}" (expected "${expected}")`,
    );
  }
  for (const field of ['host', 'port', 'dbname', 'masterarn', 'ssl'] as const) {
    if (other[field] !== reference[field]) {
      throw new ConfusedDeputyError(
        `${label} field "${field}" differs from AWSCURRENT; refusing to act on another database or a weaker TLS mode`,
      );
    }
  }
}
