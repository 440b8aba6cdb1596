/**
 * Promotion gate (DESIGN.md 4.4): finishSecret calls {@link promotionGate} before it moves
 * AWSCURRENT. It returns when every registered `live` consumer reports the pending generation and
 * throws ConvergencePendingError otherwise, with no side effects.
 *
 * SEAM: the CloudWatch evaluation is built by the convergence-gates work (issue 4). Until then the
 * gate admits promotion only when no `live` consumer is registered and refuses otherwise, so a
 * registry is never silently ignored.
 */
import { ConvergencePendingError } from '../shared/errors';
import type { DbSecret } from '../shared/secret';
import type { StepContext } from './context';

export async function promotionGate(ctx: StepContext, pending: DbSecret): Promise<void> {
  const live = ctx.config.consumers.filter((c) => c.mode === 'live');
  if (live.length === 0 || ctx.overrides.forceFinish) return;
  throw new ConvergencePendingError(
    pending.generation,
    live.map((c) => ({ consumer: c.name, reason: 'silent' as const })),
    'CloudWatch evaluation is not available in this build',
  );
}
