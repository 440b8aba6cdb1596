/**
 * Per-rotation operator intent. Secrets Manager invokes the function with a fixed event, so the
 * CLI sets a tag on the secret before it starts or re-drives a rotation; the steps read it from
 * DescribeSecret and log it loudly.
 *
 * Every override is bound to one rotation: the tag's **value is that rotation's token** (the CLI
 * chooses the token and passes it to RotateSecret as `ClientRequestToken`), and a step honours the
 * tag only when the value equals the token it runs for. A tag left behind by a failed call, a
 * crashed invocation or an aborted rotation can therefore never change what a later rotation does;
 * such tags are reported as stale and cleaned up.
 */
import {
  UntagResourceCommand,
  type DescribeSecretCommandOutput,
} from '@aws-sdk/client-secrets-manager';
import type { RotationDependencies } from './context';
import {
  OVERRIDE_TAGS,
  TAG_EMERGENCY,
  TAG_FORCE_FINISH,
  TAG_GENERATION_HIGH_WATER,
  tagValue,
} from './override-tag-keys';

// The keys live apart so that the CDK constructs load no SDK client; existing importers keep this path.
export { OVERRIDE_TAGS, TAG_EMERGENCY, TAG_FORCE_FINISH, TAG_GENERATION_HIGH_WATER, tagValue };

export interface Overrides {
  /**
   * Suspected compromise: the revocation guard does not wait for consumers and terminates the old
   * user's sessions, and after promotion the formerly current credential is revoked too.
   */
  readonly emergency: boolean;
  /** finishSecret promotes without waiting for the promotion gate. */
  readonly forceFinish: boolean;
}

/** An override tag whose value is not the token being run: ignored. */
export interface StaleOverride {
  readonly key: string;
  readonly value: string;
}

/**
 * The overrides in force for the rotation `token`: a tag counts only when its value is `token`.
 *
 * @example
 * const { emergency } = readOverrides(await sm.send(new DescribeSecretCommand({ SecretId })), event.ClientRequestToken);
 */
export function readOverrides(
  description: Pick<DescribeSecretCommandOutput, 'Tags'>,
  token: string,
): Overrides {
  return {
    emergency: tagValue(description, TAG_EMERGENCY) === token,
    forceFinish: tagValue(description, TAG_FORCE_FINISH) === token,
  };
}

/**
 * Override tags present but bound to another rotation than `token` (or written the old way, as
 * `true`): they are ignored, and worth a warning.
 *
 * @example
 * for (const s of staleOverrides(description, token)) logger.warn('ignoring override', { ...s });
 */
export function staleOverrides(
  description: Pick<DescribeSecretCommandOutput, 'Tags'>,
  token: string,
): StaleOverride[] {
  return OVERRIDE_TAGS.flatMap((key) => {
    const value = tagValue(description, key);
    return value !== undefined && value !== token ? [{ key, value }] : [];
  });
}

/** The generation high-water mark recorded in the tags, or 0. */
export function readGenerationHighWater(
  description: Pick<DescribeSecretCommandOutput, 'Tags'>,
): number {
  const value = tagValue(description, TAG_GENERATION_HIGH_WATER);
  const n = Number(value);
  return value !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/**
 * Removes an override tag; a failure is logged, not thrown (the tag is bound to a rotation that is
 * complete, so it can no longer change anything).
 *
 * @example
 * await removeOverride(deps, arn, TAG_FORCE_FINISH);
 */
export async function removeOverride(
  deps: Pick<RotationDependencies, 'secretsManager' | 'logger'>,
  arn: string,
  key: string,
): Promise<void> {
  try {
    await deps.secretsManager.send(new UntagResourceCommand({ SecretId: arn, TagKeys: [key] }));
  } catch (err) {
    deps.logger.warn(
      'could not remove an override tag (it is bound to its rotation and has no further effect)',
      {
        tag: key,
        errorName: (err as Error).name,
        errorMessage: (err as Error).message,
      },
    );
  }
}
