/**
 * The tag keys of the operator overrides and the tag reader, apart from overrides.ts so that the
 * CDK constructs (which grant these keys) load no AWS SDK client at synth time.
 */
import type { DescribeSecretCommandOutput } from '@aws-sdk/client-secrets-manager';

/** Tag keys. The `converge:` prefix keeps them apart from the user's own tags. */
export const TAG_EMERGENCY = 'converge:emergency';
export const TAG_FORCE_FINISH = 'converge:force-finish';
/** Highest generation ever issued for this secret: aborted rotations keep their number burnt. */
export const TAG_GENERATION_HIGH_WATER = 'converge:generation';

/** The override tag keys. */
export const OVERRIDE_TAGS = [TAG_EMERGENCY, TAG_FORCE_FINISH] as const;

/**
 * The value of tag `key`, or undefined.
 *
 * @example
 * tagValue(await sm.send(new DescribeSecretCommand({ SecretId })), TAG_FORCE_FINISH);
 */
export function tagValue(
  description: Pick<DescribeSecretCommandOutput, 'Tags'>,
  key: string,
): string | undefined {
  return (description.Tags ?? []).find((t) => t.Key === key)?.Value;
}
