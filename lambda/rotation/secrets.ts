/**
 * Reading the AWSCURRENT and AWSPENDING versions of the rotated secret, parsed and validated,
 * with the host resolved through RDS when the secret names an instance or cluster instead.
 */
import { InvalidSecretError, RotationStateError } from '../shared/errors';
import type { ConnectionTarget } from '../shared/pg-connection';
import { AWSCURRENT, AWSPENDING, parseSecret, type DbSecret } from '../shared/secret';
import { getSecretString } from './aws-call';
import type { StepContext } from './context';
import { resolveRdsEndpoint } from './master-secret';

/** The AWSCURRENT secret. @throws {@link InvalidSecretError} when it is missing or malformed */
export async function readCurrent(ctx: Pick<StepContext, 'secretsManager' | 'rds' | 'secretArn'>): Promise<DbSecret> {
  const text = await getSecretString(ctx.secretsManager, { SecretId: ctx.secretArn, VersionStage: AWSCURRENT });
  if (text === undefined) throw new InvalidSecretError(`secret ${ctx.secretArn} has no AWSCURRENT value`);
  return resolveHost(ctx, parseSecret(text, 'AWSCURRENT secret'));
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
    throw new RotationStateError(`version ${ctx.token} of ${ctx.secretArn} has no AWSPENDING value (createSecret has not run)`);
  }
  return pending;
}

/** Where a secret's credential connects. */
export function targetOf(secret: DbSecret): ConnectionTarget {
  return { host: secret.host, port: secret.port, dbname: secret.dbname, ssl: secret.ssl };
}

/**
 * The secret with its host filled in from RDS when it names an instance or cluster instead.
 *
 * @example
 * const secret = await resolveHost(ctx, parseSecret(text));
 */
export async function resolveHost(ctx: Pick<StepContext, 'rds'>, secret: DbSecret): Promise<DbSecret> {
  if (secret.host) return secret;
  const endpoint = await resolveRdsEndpoint(ctx.rds, {
    instance: secret.dbInstanceIdentifier,
    cluster: secret.dbClusterIdentifier,
  });
  return { ...secret, host: endpoint.host };
}
