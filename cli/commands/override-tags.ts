/**
 * The operator's override tags as the CLI handles them: each is bound to one rotation's token (see
 * lambda/rotation/overrides.ts), and a command that set one removes it again when it did not start
 * or finish that rotation.
 */
import { DescribeSecretCommand, UntagResourceCommand } from '@aws-sdk/client-secrets-manager';
import { tagValue } from '../../lambda/rotation/overrides';
import type { CliClients } from '../clients';

/**
 * Removes an override tag if it still names `token` (a newer rotation's tag is left alone).
 * Errors are swallowed: the caller is already reporting a failure, and the tag is bound to a
 * rotation that did not start, so it can never take effect.
 *
 * @example
 * await removeTagIfBoundTo(clients, arn, TAG_FORCE_FINISH, token);
 */
export async function removeTagIfBoundTo(
  clients: CliClients,
  arn: string,
  key: string,
  token: string,
): Promise<void> {
  try {
    const d = await clients.sm.send(new DescribeSecretCommand({ SecretId: arn }));
    if (tagValue(d, key) === token)
      await clients.sm.send(new UntagResourceCommand({ SecretId: arn, TagKeys: [key] }));
  } catch {
    /* see above */
  }
}
