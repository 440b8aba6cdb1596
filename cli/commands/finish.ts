/**
 * `converge finish <secret> --force`: promote a waiting rotation without the promotion gate.
 * The CLI tags the secret (`converge:force-finish`, its value the waiting version's token) and
 * invokes the rotation function's re-drive, so the promotion happens in one place (finishSecret)
 * and is logged there as FORCED. The tag is removed when the command ends, whatever happened, and
 * success is reported only when the function says it promoted and AWSCURRENT really moved.
 */
import { TagResourceCommand } from '@aws-sdk/client-secrets-manager';
import { TAG_FORCE_FINISH } from '../../lambda/rotation/overrides';
import { ConvergeError } from '../../lambda/shared/errors';
import type { CliClients } from '../clients';
import { removeTagIfBoundTo } from './override-tags';
import { invokeRedrive } from './redrive-call';
import { readSecretState } from './secret-state';

export interface FinishResult {
  readonly secret: string;
  readonly promotedVersionId: string;
  readonly generation?: number;
  readonly forced: true;
}

/**
 * @throws {@link ConvergeError} when nothing waits, the function fails, or it did not promote
 * (the waiting rotation was aborted meanwhile, say)
 *
 * @example
 * await finish(clients, 'orders-app', { force: true });
 */
export async function finish(
  clients: CliClients,
  secretId: string,
  options: { force?: boolean },
): Promise<FinishResult> {
  if (!options.force) {
    throw new ConvergeError(
      'finish promotes without waiting for consumers; pass --force to confirm',
    );
  }
  const state = await readSecretState(clients, secretId);
  if (!state.pending)
    throw new ConvergeError(`no rotation of ${state.name} is waiting; nothing to finish`);
  if (!state.rotationLambdaArn)
    throw new ConvergeError(`secret ${state.name} has no rotation function`);
  const token = state.pending.versionId;
  await clients.sm.send(
    new TagResourceCommand({
      SecretId: state.arn,
      Tags: [{ Key: TAG_FORCE_FINISH, Value: token }],
    }),
  );
  try {
    const { payload, functionError } = await invokeRedrive(clients, state.rotationLambdaArn, state.arn);
    if (functionError) {
      const detail = (payload ?? {}) as { errorType?: string; errorMessage?: string };
      throw new ConvergeError(
        `the rotation function could not finish: ${detail.errorType ?? 'Error'}: ${detail.errorMessage ?? 'no detail'}`,
      );
    }
    const after = await readSecretState(clients, state.arn);
    if (payload !== 'promoted' || after.current?.versionId !== token) {
      throw new ConvergeError(
        `nothing was promoted: the rotation function answered ${JSON.stringify(payload)} and AWSCURRENT is version ` +
          `${after.current?.versionId ?? '?'} (generation ${after.current?.generation ?? '?'}); see \`converge status ${state.name}\``,
      );
    }
    return {
      secret: state.name,
      promotedVersionId: token,
      generation: state.pending.generation,
      forced: true,
    };
  } finally {
    await removeTagIfBoundTo(clients, state.arn, TAG_FORCE_FINISH, token);
  }
}
