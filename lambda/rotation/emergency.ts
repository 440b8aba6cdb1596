/**
 * Emergency rotation, after promotion: the formerly current credential stops working now.
 *
 * In a suspected compromise the leaked credential is normally AWSCURRENT. Once finishSecret has
 * moved AWSCURRENT to the new version, the user of the formerly current version (now AWSPREVIOUS)
 * gets a random password that nobody stores and every one of its sessions is terminated, on every
 * member of the database, each logged by who opened it (consumer, host, pid and generation from the
 * consumer library's application_name, or unattributed with its application_name and client
 * address; gates/session-groups.ts). The role keeps LOGIN
 * and its memberships; the next rotation makes it the pending user again as usual.
 *
 * The revocation is owed from the moment of promotion until it is confirmed: the emergency tag (its
 * value the rotation's token) stays on the secret until then, and every invocation of the function
 * for that secret completes an owed revocation first (see entry-checks.ts), so a Lambda that dies
 * between the promotion and the revocation cannot leave the leaked credential working.
 */
import {
  DescribeSecretCommand,
  UntagResourceCommand,
  type DescribeSecretCommandOutput,
} from '@aws-sdk/client-secrets-manager';
import { EMERGENCY_REVOCATIONS, SESSIONS_TERMINATED } from '../shared/metric-contract';
import { AWSCURRENT, AWSPREVIOUS } from '../shared/secret';
import { awsCall } from './aws-call';
import { withMasterSession } from './connections';
import type { RotationDependencies } from './context';
import { emitFunctionMetric } from './function-metrics';
import { sessionScopeFor } from './gates/session-scope';
import { loadMaster } from './master-secret';
import { TAG_EMERGENCY, tagValue } from './overrides';
import { describeEvery, describeSession } from './revocation-guard';
import { assertNotMorePrivileged, findRole, scramblePassword } from './roles';
import { assertAlternateOf, readStage } from './secrets';

/** What an emergency revocation needs: the clients, and the secret it runs for. */
export interface EmergencyScope extends RotationDependencies {
  readonly secretArn: string;
  readonly secretName: string;
}

/**
 * The token of the rotation whose emergency revocation is owed: the emergency tag's value when that
 * version already carries AWSCURRENT; otherwise undefined.
 *
 * @example
 * const owed = owedEmergencyRevocation(description);
 */
export function owedEmergencyRevocation(
  description: Pick<DescribeSecretCommandOutput, 'Tags' | 'VersionIdsToStages'>,
): string | undefined {
  const token = tagValue(description, TAG_EMERGENCY);
  if (!token) return undefined;
  return description.VersionIdsToStages?.[token]?.includes(AWSCURRENT) ? token : undefined;
}

/**
 * Revokes the formerly current credential (the AWSPREVIOUS user), then removes the emergency tag
 * if it still names `token`. Idempotent: running it again replaces the random password again and
 * finds no sessions.
 *
 * @throws {@link ConfusedDeputyError} when AWSPREVIOUS is not the pair of AWSCURRENT on the same database
 *
 * @example
 * await revokeFormerlyCurrent(ctx, token);
 */
export async function revokeFormerlyCurrent(ctx: EmergencyScope, token: string): Promise<void> {
  const current = await readStage(ctx, AWSCURRENT);
  const former = await readStage(ctx, AWSPREVIOUS);
  if (former && current) {
    assertAlternateOf(current, former, 'AWSPREVIOUS');
    const master = await loadMaster(ctx, current);
    await withMasterSession(ctx, master, async (c) => {
      const role = await findRole(c, former.username);
      if (!role) {
        ctx.logger.warn(
          'EMERGENCY: the formerly current user does not exist any more; nothing to revoke',
          { username: former.username },
        );
        return;
      }
      assertNotMorePrivileged(
        role,
        await findRole(c, current.username),
        master.credential.username,
      );
      await scramblePassword(c, former.username);
      const scope = await sessionScopeFor(ctx, c, master, current);
      const terminated = await scope.terminate(former.username);
      emitFunctionMetric(ctx, EMERGENCY_REVOCATIONS, 1, 'Count');
      if (terminated.length > 0)
        emitFunctionMetric(ctx, SESSIONS_TERMINATED, terminated.length, 'Count');
      ctx.logger.warn(
        `EMERGENCY: revoked the formerly current credential of "${former.username}": its password was replaced by one nobody stores ` +
          `and ${terminated.length} session(s) were terminated` +
          (terminated.length > 0 ? `: ${describeEvery(terminated)}` : ''),
        {
          username: former.username,
          generation: former.generation,
          terminated: terminated.map(describeSession),
        },
      );
    });
  } else {
    ctx.logger.warn('EMERGENCY: no AWSPREVIOUS version to revoke', { token });
  }
  // Removed only while it still names this rotation: a newer emergency rotation keeps its own.
  const after = await awsCall('DescribeSecret', () =>
    ctx.secretsManager.send(new DescribeSecretCommand({ SecretId: ctx.secretArn })),
  );
  if (tagValue(after, TAG_EMERGENCY) === token) {
    await awsCall('UntagResource', () =>
      ctx.secretsManager.send(
        new UntagResourceCommand({ SecretId: ctx.secretArn, TagKeys: [TAG_EMERGENCY] }),
      ),
    );
  }
}
