/**
 * `converge rotate <secret> [--emergency] [--enable-rotation]`: a manual RotateSecret, exactly what
 * `aws secretsmanager rotate-secret` does, plus the emergency override when asked.
 *
 * RotateSecret turns automatic rotation on. On a secret whose rotation an operator paused
 * (CancelRotateSecret, RotationEnabled false) the command refuses unless `enableRotation` is set,
 * and then says that it re-enabled it.
 *
 * The CLI chooses the rotation's token and passes it as `ClientRequestToken`; the emergency tag's
 * value is that token, so the override applies to this rotation only (lambda/rotation/overrides.ts).
 * If RotateSecret fails, the tag is removed again before the command exits. No secret value is read.
 */
import { randomUUID } from 'node:crypto';
import { RotateSecretCommand, TagResourceCommand } from '@aws-sdk/client-secrets-manager';
import { TAG_EMERGENCY } from '../../lambda/rotation/overrides';
import { ConvergeError } from '../../lambda/shared/errors';
import type { CliClients } from '../clients';
import type { Confirm } from '../confirm';
import { describeCliError, NotConfirmedError, RotationPausedError } from '../errors';
import { removeTagIfBoundTo, untagCommand } from './override-tags';
import { readSecretState, type SecretState } from './secret-state';

export interface RotateOptions {
  /** Suspected compromise: tag the rotation `converge:emergency` (see the README's runbook). */
  readonly emergency?: boolean;
  /** Rotate even though automatic rotation is paused, and so turn it back on. */
  readonly enableRotation?: boolean;
  /** Asked before anything changes (the CLI passes one for `--emergency` without `--yes`). */
  readonly confirm?: Confirm;
}

export interface RotateResult {
  readonly secret: string;
  /** The new version, staged AWSPENDING by RotateSecret. */
  readonly versionId?: string;
  readonly emergency: boolean;
  /** The version holding AWSCURRENT when the rotation started (it stays there until finishSecret). */
  readonly currentVersionId?: string;
  /** The version holding AWSPREVIOUS when the rotation started: the previous user's. */
  readonly previousVersionId?: string;
  /** Automatic rotation was paused and this command turned it back on. */
  readonly rotationReEnabled: boolean;
  /** Tags the command set and left in place (`converge:emergency=<versionId>`). */
  readonly tagsSet: readonly string[];
}

/**
 * @throws {@link RotationPausedError} when automatic rotation is paused and `enableRotation` is not set
 * @throws {@link NotConfirmedError} when `confirm` answers false
 *
 * @example
 * const { versionId } = await rotate(clients, 'orders-app', { emergency: false });
 */
export async function rotate(
  clients: CliClients,
  secretId: string,
  options: RotateOptions = {},
): Promise<RotateResult> {
  let state = await readSecretState(clients, secretId, { decrypt: false });
  checkCanRotate(state, options);
  if (options.confirm) {
    if (!(await options.confirm(state.name, plan(state, options)))) {
      throw new NotConfirmedError(options.emergency ? 'rotate --emergency' : 'rotate', state.name);
    }
    // The operator took their time: decide again on what is there now.
    state = await readSecretState(clients, state.arn, { decrypt: false });
    checkCanRotate(state, options);
  }
  const token = randomUUID();
  const base = {
    secret: state.name,
    emergency: options.emergency ?? false,
    currentVersionId: state.current?.versionId,
    previousVersionId: state.previous?.versionId,
    rotationReEnabled: !state.rotationEnabled,
  };
  if (!options.emergency) {
    const out = await clients.sm.send(
      new RotateSecretCommand({ SecretId: state.arn, ClientRequestToken: token }),
    );
    return { ...base, versionId: out.VersionId ?? token, tagsSet: [] };
  }
  await clients.sm.send(
    new TagResourceCommand({ SecretId: state.arn, Tags: [{ Key: TAG_EMERGENCY, Value: token }] }),
  );
  let out;
  try {
    out = await clients.sm.send(
      new RotateSecretCommand({ SecretId: state.arn, ClientRequestToken: token }),
    );
  } catch (err) {
    const removal = await removeTagIfBoundTo(clients, state.arn, TAG_EMERGENCY, token);
    const tag =
      removal.outcome === 'failed'
        ? `could NOT remove tag ${TAG_EMERGENCY} (${removal.error}); it names a rotation that never started and has no effect; remove it with: ${untagCommand(state.arn, TAG_EMERGENCY)}`
        : `removed tag ${TAG_EMERGENCY} again`;
    throw new ConvergeError(
      `RotateSecret failed (${describeCliError(err)}): no rotation started; ${tag}`,
      { cause: err },
    );
  }
  return { ...base, versionId: out.VersionId ?? token, tagsSet: [`${TAG_EMERGENCY}=${token}`] };
}

function checkCanRotate(state: SecretState, options: RotateOptions): void {
  if (!state.rotationLambdaArn) {
    throw new ConvergeError(
      `secret ${state.name} has no rotation function: deploy the converge construct for it first`,
    );
  }
  if (state.pending) {
    throw new ConvergeError(
      `a rotation of ${state.name} is already waiting (version ${state.pending.versionId}): ` +
        'see `converge status`, then wait, `converge finish --force` or `converge abort`',
    );
  }
  if (!state.rotationEnabled && !options.enableRotation) throw new RotationPausedError(state.name);
}

/** What the command is about to change, for the confirmation. */
function plan(state: SecretState, options: RotateOptions): string[] {
  const lines: string[] = [];
  if (options.emergency) lines.push(`tag the secret ${TAG_EMERGENCY}=<the new version's id>`);
  lines.push(
    'call RotateSecret: a new version is staged AWSPENDING and the rotation function runs',
  );
  if (!state.rotationEnabled) lines.push('turn automatic rotation back ON (it is paused now)');
  if (options.emergency) {
    lines.push(
      `NOT wait for consumers: the revocation guard terminates every session of the previous user ` +
        `(AWSPREVIOUS${state.previous ? `, version ${state.previous.versionId}` : ': none yet'})`,
      `after promotion, revoke the formerly current credential (AWSCURRENT, version ${state.current?.versionId ?? '?'}) ` +
        'and terminate its sessions: every process still on it loses its connections',
    );
  }
  return lines;
}
