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
 * If RotateSecret fails, the tag is removed again before the command exits.
 *
 * Before RotateSecret (not in an emergency, which does not wait for consumers) the command asks
 * what the revocation guard would decide about the consumers now (cli/commands/guard-outlook.ts).
 * When it would admit, the rotation starts at once: a healthy fleet is not delayed. When it would
 * hold, the command says what it waits for (e.g. a live consumer that adopted an aborted rotation's
 * credential and has not reported the current generation since the abort), re-checks every
 * `pollSeconds`, and starts the rotation as soon as the guard would admit; after `waitSeconds`
 * (0 = check once) it starts nothing and throws {@link RotationWouldBlockError} naming what still
 * blocks. Starting anyway would only leave a rotation stuck in setSecret with a guard error. When
 * the outlook cannot be read (no access to the function's configuration or to CloudWatch), the
 * rotation starts and the function's guard decides alone. The guard's sessions check is the
 * function's: this check reads metrics only. No password is read or printed.
 */
import { randomUUID } from 'node:crypto';
import { RotateSecretCommand, TagResourceCommand } from '@aws-sdk/client-secrets-manager';
import { systemClock, type Clock } from '../../lambda/rotation/context';
import { TAG_EMERGENCY } from '../../lambda/rotation/overrides';
import { ConvergeError, RotationWouldBlockError } from '../../lambda/shared/errors';
import type { CliClients } from '../clients';
import type { Confirm } from '../confirm';
import { describeCliError, NotConfirmedError, RotationPausedError } from '../errors';
import { revocationOutlook, type GuardOutlook } from './guard-outlook';
import { removeTagIfBoundTo, untagCommand } from './override-tags';
import { readSecretState, type SecretState } from './secret-state';

export interface RotateOptions {
  /** Suspected compromise: tag the rotation `converge:emergency` (see the README's runbook). */
  readonly emergency?: boolean;
  /** Rotate even though automatic rotation is paused, and so turn it back on. */
  readonly enableRotation?: boolean;
  /** Asked before anything changes (the CLI passes one for `--emergency` without `--yes`). */
  readonly confirm?: Confirm;
  /**
   * Longest wait, in seconds, for the revocation guard to admit before the rotation starts; 0
   * checks once. Not used with `emergency`.
   *
   * @default DEFAULT_ROTATE_WAIT_SECONDS
   */
  readonly waitSeconds?: number;
  /**
   * Seconds between two checks while waiting.
   *
   * @default 5
   */
  readonly pollSeconds?: number;
  /** Receives a progress line at each check that holds (the CLI writes them to stderr). */
  readonly progress?: (line: string) => void;
  /**
   * Time and sleeping (tests pass a virtual clock).
   *
   * @default systemClock
   */
  readonly clock?: Clock;
}

/** Default {@link RotateOptions.waitSeconds}: about what a live consumer needs to move and its data to age out. */
export const DEFAULT_ROTATE_WAIT_SECONDS = 120;

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
  /** What the command checked before it started the rotation (absent for an emergency). */
  readonly guardCheck?: {
    readonly verdict: GuardOutlook['verdict'];
    /** Seconds it waited for the guard to admit (0 when it admitted at once). */
    readonly waitedSeconds: number;
    readonly checks: number;
    /** Why the check could not decide, or why it did not apply. */
    readonly note?: string;
  };
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
  let guardCheck: RotateResult['guardCheck'];
  if (!options.emergency) {
    const checked = await waitForGuard(clients, state, options);
    state = checked.state;
    guardCheck = checked.guardCheck;
  }
  const token = randomUUID();
  const base = {
    secret: state.name,
    emergency: options.emergency ?? false,
    currentVersionId: state.current?.versionId,
    previousVersionId: state.previous?.versionId,
    rotationReEnabled: !state.rotationEnabled,
    ...(guardCheck ? { guardCheck } : {}),
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

/**
 * Checks what the revocation guard would decide until it would admit or `waitSeconds` have passed.
 * The secret is read again before each check: a rotation that started meanwhile stops the command.
 */
async function waitForGuard(
  clients: CliClients,
  initial: SecretState,
  options: RotateOptions,
): Promise<{ state: SecretState; guardCheck: NonNullable<RotateResult['guardCheck']> }> {
  const clock = options.clock ?? systemClock;
  const waitSeconds = options.waitSeconds ?? DEFAULT_ROTATE_WAIT_SECONDS;
  const pollMs = Math.max(1, options.pollSeconds ?? 5) * 1000;
  const started = clock.now();
  const deadline = started + waitSeconds * 1000;
  let state = initial;
  let lastWho = '';
  for (let checks = 1; ; checks++) {
    const outlook = await revocationOutlook(clients, state, clock.now());
    const waitedSeconds = Math.round((clock.now() - started) / 1000);
    if (outlook.verdict !== 'hold') {
      const note = outlook.error
        ? `could not check the consumers (${outlook.error}); started anyway: the rotation function's revocation guard decides`
        : outlook.note;
      if (waitedSeconds > 0)
        options.progress?.(
          `rotate: the revocation guard would admit now (after ${waitedSeconds} s); starting the rotation`,
        );
      return {
        state,
        guardCheck: { verdict: outlook.verdict, waitedSeconds, checks, ...(note ? { note } : {}) },
      };
    }
    const waits = outlook.waits.map((w) => w.text).join('; ');
    if (clock.now() >= deadline) {
      throw new RotationWouldBlockError(
        state.name,
        outlook.waits.map((w) => w.blocking),
        `rotation of ${state.name} NOT started: the revocation guard would hold` +
          `${waitSeconds > 0 ? ` after ${waitedSeconds} s of waiting` : ''}: ${waits}. Nothing was changed. ` +
          `See \`converge status ${state.name}\`; run rotate again (with a longer --wait) once it moves`,
      );
    }
    // The full story when what blocks changes; a short line otherwise.
    const who = outlook.waits
      .map((w) => `${w.blocking.consumer}:${w.blocking.reason}:${w.blocking.lastGeneration}`)
      .join(',');
    options.progress?.(
      who === lastWho
        ? `rotate: [${waitedSeconds} s of ${waitSeconds} s] still waiting for ${outlook.waits.map((w) => w.blocking.consumer).join(', ')}`
        : `rotate: [${waitedSeconds} s of ${waitSeconds} s] the revocation guard would hold: ${waits}`,
    );
    lastWho = who;
    await clock.sleep(Math.min(pollMs, deadline - clock.now()));
    state = await readSecretState(clients, state.arn, { decrypt: false });
    checkCanRotate(state, options);
  }
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
