/**
 * Whether the rotation a step started for is still the one waiting: its version still carries
 * AWSPENDING and AWSCURRENT is still on the version it was on when the step started. Read again
 * (DescribeSecret) wherever a step waited, because an operator may have aborted or finished the
 * rotation meanwhile.
 */
import {
  DescribeSecretCommand,
  type DescribeSecretCommandOutput,
} from '@aws-sdk/client-secrets-manager';
import { RotationAbortedError } from '../shared/errors';
import { AWSCURRENT, AWSPENDING } from '../shared/secret';
import { awsCall } from './aws-call';
import type { StepContext } from './context';

/** `waiting`: nothing changed; `promoted`: the token is AWSCURRENT already (a concurrent invocation). */
export type WaitingState = 'waiting' | 'promoted';

/** The version holding AWSCURRENT in a DescribeSecret answer. */
export function currentVersion(
  description: Pick<DescribeSecretCommandOutput, 'VersionIdsToStages'>,
): string | undefined {
  return Object.entries(description.VersionIdsToStages ?? {}).find(([, stages]) =>
    stages.includes(AWSCURRENT),
  )?.[0];
}

/** The version waiting to be promoted: AWSPENDING on a version that is not AWSCURRENT. */
export function waitingVersion(
  description: Pick<DescribeSecretCommandOutput, 'VersionIdsToStages'>,
): string | undefined {
  return Object.entries(description.VersionIdsToStages ?? {}).find(
    ([, stages]) => stages.includes(AWSPENDING) && !stages.includes(AWSCURRENT),
  )?.[0];
}

/**
 * Reads the secret's stages now and compares them with those the step started from.
 *
 * @throws {@link RotationAbortedError} when the token lost AWSPENDING or AWSCURRENT moved elsewhere
 *
 * @example
 * if ((await stillPending(ctx, generation)) === 'promoted') return;
 */
export async function stillPending(ctx: StepContext, generation?: number): Promise<WaitingState> {
  const what = generation === undefined ? 'it' : `generation ${generation}`;
  const fresh = await awsCall('DescribeSecret', () =>
    ctx.secretsManager.send(new DescribeSecretCommand({ SecretId: ctx.secretArn })),
  );
  const stages = fresh.VersionIdsToStages?.[ctx.token] ?? [];
  if (stages.includes(AWSCURRENT)) return 'promoted';
  if (!stages.includes(AWSPENDING)) {
    throw new RotationAbortedError(
      `version ${ctx.token} lost AWSPENDING while finishSecret waited (the rotation was aborted); not promoting ${what}. Nothing was changed.`,
    );
  }
  const startedFrom = currentVersion(ctx.description);
  const now = currentVersion(fresh);
  if (now !== startedFrom) {
    throw new RotationAbortedError(
      `AWSCURRENT moved from version ${startedFrom ?? '(none)'} to ${now ?? '(none)'} while finishSecret waited; not promoting ` +
        `${what} over it. Nothing was changed.`,
    );
  }
  return 'waiting';
}

/**
 * Whether the rotation was aborted or superseded since the step started (a failed read throws).
 *
 * @example
 * if (err instanceof RotationStateError && (await wasAborted(ctx))) return 'aborted';
 */
export async function wasAborted(ctx: StepContext): Promise<boolean> {
  try {
    await stillPending(ctx);
    return false;
  } catch (err) {
    if (err instanceof RotationAbortedError) return true;
    throw err;
  }
}
