/**
 * The operator's override tags as the CLI handles them: each is bound to one rotation's token (see
 * lambda/rotation/overrides.ts), and a command that set one removes it again when it did not start
 * or finish that rotation.
 */
import { DescribeSecretCommand, UntagResourceCommand } from '@aws-sdk/client-secrets-manager';
import { tagValue } from '../../lambda/rotation/overrides';
import type { CliClients } from '../clients';

/**
 * What {@link removeTagIfBoundTo} did: `removed`; `absent` (already gone, e.g. the function removed
 * it when it promoted); `kept` (it now names another rotation, which is left alone); or `failed`
 * with the error of DescribeSecret or UntagResource (the tag may still be there).
 */
export type TagRemoval =
  | { readonly outcome: 'removed' | 'absent' | 'kept' }
  | { readonly outcome: 'failed'; readonly error: string };

/**
 * Removes an override tag if it still names `token` (a newer rotation's tag is left alone). Never
 * throws: the caller is reporting something else and says what became of the tag.
 *
 * @example
 * const removal = await removeTagIfBoundTo(clients, arn, TAG_FORCE_FINISH, token);
 * if (removal.outcome === 'failed') console.error(removal.error);
 */
export async function removeTagIfBoundTo(
  clients: CliClients,
  arn: string,
  key: string,
  token: string,
): Promise<TagRemoval> {
  try {
    const d = await clients.sm.send(new DescribeSecretCommand({ SecretId: arn }));
    const value = tagValue(d, key);
    if (value === undefined) return { outcome: 'absent' };
    if (value !== token) return { outcome: 'kept' };
    await clients.sm.send(new UntagResourceCommand({ SecretId: arn, TagKeys: [key] }));
    return { outcome: 'removed' };
  } catch (err) {
    const e = err as Error;
    return { outcome: 'failed', error: `${e.name}: ${(e.message ?? '').split('\n')[0]}` };
  }
}

/**
 * The AWS CLI command that removes tag `key` by hand.
 *
 * @example
 * untagCommand(arn, TAG_FORCE_FINISH); // 'aws secretsmanager untag-resource --secret-id arn:... --tag-keys converge:force-finish'
 */
export function untagCommand(arn: string, key: string): string {
  return `aws secretsmanager untag-resource --secret-id ${arn} --tag-keys ${key}`;
}
