/**
 * `silent`: a live consumer's reporter stops (the process keeps working; nothing reaches
 * CloudWatch). Its old data ages out of its freshness window, the promotion gate cannot prove it
 * moved and holds; `converge status` shows it BLOCKING (silent since ...) and says restart it; the
 * operator restarts it, its new reporter reports the pending generation, the rotation completes.
 */
import type { Scenario } from '../scenario';
import { restartNonLive } from './steps';

const SILENT = 'drill-live-2';

export const silent: Scenario = {
  name: 'silent',
  summary: `a live consumer (${SILENT}) stops reporting; the promotion gate holds on its silence until the operator restarts it`,
  plan: [
    `stop ${SILENT}'s reporter (its pool keeps working)`,
    'converge rotate: the promotion gate holds finishSecret',
    `capture converge status --sessions once ${SILENT} is silent (BLOCKING, next action restart)`,
    `operator: restart ${SILENT}; its new reporter reports the pending generation; the rotation completes`,
    'restart the scheduled and restart-only consumers',
  ],
  async run(stand, ctx) {
    await stand.consumer(SILENT).silence();
    stand.phase('rotating');
    const rotation = await stand.rotate();
    // Stale first (its last report is still fresh), silent once that report leaves the window.
    await stand.waitFor(`${SILENT}'s last report to leave its freshness window`, async () => {
      const s = await stand.status();
      const c = s.consumers.find((x) => x.name === SILENT) as
        { state: string; reason?: string } | undefined;
      return c?.state === 'silent' || (c?.state === 'BLOCKING' && c.reason === 'silent');
    });
    await ctx.captureHold('holding at promotion gate', SILENT, {
      rotationState: 'waiting-at-gate',
    });
    await ctx.operator(`restart ${SILENT}`, `restart ${SILENT}`, () =>
      stand.consumer(SILENT).restart(),
    );
    stand.phase('waiting for the gate to admit');
    const r = await ctx.finishRotation(rotation);
    if (!r.ok)
      ctx.problem(`the rotation did not complete after the restart: ${r.error ?? 'not promoted'}`);
    await restartNonLive(stand);
  },
};
