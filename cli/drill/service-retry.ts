/**
 * The service's retry, compressed. When setSecret is refused by the revocation guard, Secrets
 * Manager does not give up on the rotation: Lambda retries the invocation, and the service
 * re-attempts the rotation later, over minutes. The local Secrets Manager model runs each step
 * once, so the drill wraps the rotation function it registers: a setSecret refused with
 * RevocationBlockedError is invoked again every `everyMs`, up to `maxMs`, and every refusal is
 * recorded (what a scenario reports as the guard's holds). Likewise a finishSecret whose promotion
 * gate gave up within its invocation (ConvergencePendingError) is invoked again, as the service's
 * retry or the ConvergenceLag alarm's re-drive would. Nothing in lambda/ knows about it.
 */
import type { RotationFunction } from '../local/secrets-manager-model';

/** One refusal of setSecret by the revocation guard. */
export interface GuardHold {
  /** ISO time of the refusal. */
  readonly at: string;
  readonly versionId: string;
  /** The function's error: `RevocationBlockedError: ...` (names what still holds the old user). */
  readonly error: string;
}

export interface ServiceRetryOptions {
  /** @default 2000 */
  readonly everyMs?: number;
  /** @default 120000 */
  readonly maxMs?: number;
  /** Called with every refusal. */
  readonly onHold?: (hold: GuardHold) => void;
  /** While true, retrying goes on. @default - always */
  readonly running?: () => boolean;
}

/**
 * Wraps `fn` so that a setSecret refused by the revocation guard is retried as the service would.
 *
 * @example
 * model.registerRotationFunction(arn, withServiceRetry((e) => handler(e), { onHold: (h) => holds.push(h) }));
 */
export function withServiceRetry(
  fn: RotationFunction,
  options: ServiceRetryOptions = {},
): RotationFunction {
  const everyMs = options.everyMs ?? 2000;
  const maxMs = options.maxMs ?? 120_000;
  const running = options.running ?? (() => true);
  return async (event) => {
    const end = Date.now() + maxMs;
    for (;;) {
      try {
        return await fn(event);
      } catch (err) {
        const e = err as Error;
        const guardHold = event.Step === 'setSecret' && e?.name === 'RevocationBlockedError';
        // A promotion gate that gave up within its invocation: the service's retry (or the
        // ConvergenceLag alarm's re-drive) runs finishSecret again.
        const gateHold = event.Step === 'finishSecret' && e?.name === 'ConvergencePendingError';
        if (!guardHold && !gateHold) throw err;
        if (guardHold)
          options.onHold?.({
            at: new Date().toISOString(),
            versionId: event.ClientRequestToken,
            error: `${e.name}: ${e.message}`,
          });
        else if (Date.now() + 1000 <= end) {
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        if (Date.now() + everyMs > end || !running()) throw err;
        await new Promise((r) => setTimeout(r, everyMs));
      }
    }
  };
}
