/**
 * createSecret: stage a new AWSPENDING version for the alternate user, with a fresh password and
 * the next generation. Idempotent: if the token's AWSPENDING version already has a value, nothing
 * changes.
 */
import { GetRandomPasswordCommand, PutSecretValueCommand, TagResourceCommand } from '@aws-sdk/client-secrets-manager';
import { alternateUsername, AWSPENDING, serializeSecret } from '../shared/secret';
import { awsCall } from './aws-call';
import type { StepContext } from './context';
import { readGenerationHighWater, TAG_GENERATION_HIGH_WATER } from './overrides';
import { readCurrent, readPendingIfAny } from './secrets';

export async function createSecret(ctx: StepContext): Promise<void> {
  const current = await readCurrent(ctx);
  const existing = await readPendingIfAny(ctx);
  if (existing) {
    ctx.logger.info('createSecret: AWSPENDING already has a value; nothing to do', { generation: existing.generation });
    return;
  }
  const username = alternateUsername(current);
  // Generations are never reused: the tag remembers the highest one ever issued, so a rotation
  // aborted after createSecret leaves its number burnt.
  const generation = Math.max(current.generation, readGenerationHighWater(ctx.description)) + 1;
  const { RandomPassword: password } = await awsCall('GetRandomPassword', () =>
    ctx.secretsManager.send(
      new GetRandomPasswordCommand({
        PasswordLength: ctx.config.passwordLength,
        ExcludeCharacters: ctx.config.excludeCharacters,
        RequireEachIncludedType: true,
      }),
    ),
  );
  if (!password) throw new Error('GetRandomPassword returned no password');
  await awsCall('TagResource', () =>
    ctx.secretsManager.send(
      new TagResourceCommand({
        SecretId: ctx.secretArn,
        Tags: [{ Key: TAG_GENERATION_HIGH_WATER, Value: String(generation) }],
      }),
    ),
  );
  const changes: Record<string, unknown> = { username, password, generation };
  if (current.alternateUsername !== undefined) changes.alternateUsername = current.username;
  await awsCall('PutSecretValue', () =>
    ctx.secretsManager.send(
      new PutSecretValueCommand({
        SecretId: ctx.secretArn,
        ClientRequestToken: ctx.token,
        SecretString: serializeSecret(current, changes),
        VersionStages: [AWSPENDING],
        ...(ctx.event.RotationToken ? { RotationToken: ctx.event.RotationToken } : {}),
      }),
    ),
  );
  ctx.logger.info('createSecret: staged AWSPENDING', { username, generation, previousGeneration: current.generation });
}
