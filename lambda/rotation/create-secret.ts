/**
 * createSecret: stage a new AWSPENDING version for the alternate user, with a fresh password and
 * the next generation. Idempotent: if the token's AWSPENDING version already has a value, nothing
 * changes (except that a missing version record is written).
 *
 * With the generation high-water tag, the same TagResource call records what the pending version
 * holds (`converge:version:<token>` = generation and username, see lambda/rotation/records.ts), and
 * what AWSCURRENT holds when it has no record yet (a secret rotated before converge recorded
 * versions), so `converge status` never needs GetSecretValue. A retry after that call but before
 * PutSecretValue issues the next generation and overwrites the record with it, so the record always
 * matches the value that is finally stored.
 */
import {
  GetRandomPasswordCommand,
  PutSecretValueCommand,
  TagResourceCommand,
  type Tag,
} from '@aws-sdk/client-secrets-manager';
import { alternateUsername, AWSPENDING, serializeSecret, type DbSecret } from '../shared/secret';
import { awsCall } from './aws-call';
import type { StepContext } from './context';
import { readGenerationHighWater, TAG_GENERATION_HIGH_WATER } from './overrides';
import { readVersionRecords, versionRecordTag, versionTagKey } from './records';
import { readCurrent, readPendingIfAny } from './secrets';
import { currentVersion } from './still-pending';

export async function createSecret(ctx: StepContext): Promise<void> {
  const current = await readCurrent(ctx);
  const existing = await readPendingIfAny(ctx);
  if (existing) {
    ctx.logger.info('createSecret: AWSPENDING already has a value; nothing to do', {
      generation: existing.generation,
    });
    await recordMissingVersions(ctx, current, existing);
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
        Tags: [
          { Key: TAG_GENERATION_HIGH_WATER, Value: String(generation) },
          ...versionRecordTags(ctx, current, { username, generation }),
        ],
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
  ctx.logger.info('createSecret: staged AWSPENDING', {
    username,
    generation,
    previousGeneration: current.generation,
  });
}

/**
 * The version records to write with the high-water tag: the pending version's, and AWSCURRENT's when
 * it has none. A version id or username that cannot be written as a tag is logged and left out
 * (status then shows that version as not recorded).
 */
function versionRecordTags(
  ctx: StepContext,
  current: DbSecret,
  pending: { username: string; generation: number },
): Tag[] {
  const tags: Tag[] = [];
  const add = (versionId: string, record: { username: string; generation: number }) => {
    const tag = versionRecordTag(versionId, record);
    if (tag) tags.push(tag);
    else ctx.logger.warn('createSecret: this version cannot be recorded in a tag', { versionId });
  };
  add(ctx.token, pending);
  const currentId = currentVersion(ctx.description);
  if (currentId !== undefined && !readVersionRecords(ctx.description).has(currentId)) {
    add(currentId, { username: current.username, generation: current.generation });
  }
  return tags;
}

/**
 * A retry that finds the pending value already stored writes the records that are missing (the
 * pending version's, if its first TagResource was lost, and AWSCURRENT's). Best effort: the value is
 * staged, and a record only informs `converge status`.
 */
async function recordMissingVersions(
  ctx: StepContext,
  current: DbSecret,
  pending: DbSecret,
): Promise<void> {
  const records = readVersionRecords(ctx.description);
  const recorded = records.get(ctx.token);
  const tags = versionRecordTags(ctx, current, pending).filter(
    (t) =>
      t.Key !== versionTagKey(ctx.token) ||
      recorded?.generation !== pending.generation ||
      recorded.username !== pending.username,
  );
  if (tags.length === 0) return;
  try {
    await awsCall('TagResource', () =>
      ctx.secretsManager.send(new TagResourceCommand({ SecretId: ctx.secretArn, Tags: tags })),
    );
  } catch (err) {
    ctx.logger.warn(
      'createSecret: could not write the version records (status shows them as not recorded)',
      {
        errorName: (err as Error).name,
        errorMessage: (err as Error).message,
      },
    );
  }
}
