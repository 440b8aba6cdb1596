/**
 * Per-rotation operator intent (DESIGN.md 4.7). Secrets Manager invokes the function with a fixed
 * event, so the CLI sets these tags on the secret before it calls RotateSecret; the steps read
 * them from DescribeSecret, log them loudly, and finishSecret clears them when it completes.
 */
import type { DescribeSecretCommandOutput } from '@aws-sdk/client-secrets-manager';

/** Tag keys. The `converge:` prefix keeps them apart from the user's own tags. */
export const TAG_EMERGENCY = 'converge:emergency';
export const TAG_FORCE_FINISH = 'converge:force-finish';
/** Highest generation ever issued for this secret: aborted rotations keep their number burnt. */
export const TAG_GENERATION_HIGH_WATER = 'converge:generation';

export interface Overrides {
  /**
   * Suspected compromise: the revocation guard does not wait for consumers and terminates the old
   * user's sessions.
   */
  readonly emergency: boolean;
  /** finishSecret promotes without waiting for the promotion gate. */
  readonly forceFinish: boolean;
}

/**
 * Reads the override tags (`"true"`, case-insensitive, turns one on).
 *
 * @example
 * const { emergency } = readOverrides(await sm.send(new DescribeSecretCommand({ SecretId })));
 */
export function readOverrides(description: Pick<DescribeSecretCommandOutput, 'Tags'>): Overrides {
  const tag = (key: string) =>
    (description.Tags ?? []).some((t) => t.Key === key && (t.Value ?? '').toLowerCase() === 'true');
  return { emergency: tag(TAG_EMERGENCY), forceFinish: tag(TAG_FORCE_FINISH) };
}

/** The generation high-water mark recorded in the tags, or 0. */
export function readGenerationHighWater(description: Pick<DescribeSecretCommandOutput, 'Tags'>): number {
  const value = (description.Tags ?? []).find((t) => t.Key === TAG_GENERATION_HIGH_WATER)?.Value;
  const n = Number(value);
  return value !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : 0;
}
