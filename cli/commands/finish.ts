/**
 * `converge finish <secret> --force`: promote a waiting rotation without the promotion gate.
 * The CLI tags the secret (`converge:force-finish`) and invokes the rotation function's re-drive,
 * so the promotion happens in one place (finishSecret), is logged there as FORCED, and the tag is
 * cleared when it completes.
 */
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { TagResourceCommand, UntagResourceCommand } from '@aws-sdk/client-secrets-manager';
import { TAG_FORCE_FINISH } from '../../lambda/rotation/overrides';
import { ConvergeError } from '../../lambda/shared/errors';
import type { CliClients } from '../clients';
import { readSecretState } from './secret-state';

export interface FinishResult {
  readonly secret: string;
  readonly promotedVersionId: string;
  readonly generation?: number;
  readonly forced: true;
}

/**
 * @example
 * await finish(clients, 'orders-app', { force: true });
 */
export async function finish(clients: CliClients, secretId: string, options: { force?: boolean }): Promise<FinishResult> {
  if (!options.force) {
    throw new ConvergeError('finish promotes without waiting for consumers; pass --force to confirm');
  }
  const state = await readSecretState(clients, secretId);
  if (!state.pending) throw new ConvergeError(`no rotation of ${state.name} is waiting; nothing to finish`);
  if (!state.rotationLambdaArn) throw new ConvergeError(`secret ${state.name} has no rotation function`);
  await clients.sm.send(new TagResourceCommand({ SecretId: state.arn, Tags: [{ Key: TAG_FORCE_FINISH, Value: 'true' }] }));
  const out = await clients.lambda.send(
    new InvokeCommand({
      FunctionName: state.rotationLambdaArn,
      InvocationType: 'RequestResponse',
      Payload: new TextEncoder().encode(JSON.stringify({ converge: 'redrive', SecretId: state.arn })),
    }),
  );
  if (out.FunctionError) {
    // Leave no override behind when the promotion did not happen.
    await clients.sm.send(new UntagResourceCommand({ SecretId: state.arn, TagKeys: [TAG_FORCE_FINISH] }));
    const detail = out.Payload ? (JSON.parse(Buffer.from(out.Payload).toString('utf8')) as { errorType?: string; errorMessage?: string }) : {};
    throw new ConvergeError(`the rotation function could not finish: ${detail.errorType ?? 'Error'}: ${detail.errorMessage ?? 'no detail'}`);
  }
  return { secret: state.name, promotedVersionId: state.pending.versionId, generation: state.pending.generation, forced: true };
}
