/**
 * `stuck-live`: one live consumer never refreshes (its secret source is frozen: it never sees
 * AWSPENDING). The promotion gate holds; `converge status` shows it BLOCKING and says restart it;
 * the operator restarts it; the new process adopts the pending credential, the gate admits and the
 * rotation completes.
 */
import type { Scenario } from '../scenario';
import { restartNonLive } from './steps';

const STUCK = 'drill-live-2';

export const stuckLive: Scenario = {
  name: 'stuck-live',
  summary: `a live consumer (${STUCK}) never refreshes its credential; the promotion gate holds until the operator restarts it`,
  plan: [
    `freeze ${STUCK}'s secret source (it keeps generation 0, never sees AWSPENDING)`,
    'converge rotate: the promotion gate holds finishSecret',
    `capture converge status --sessions during the hold (${STUCK} BLOCKING, next action restart)`,
    `operator: restart ${STUCK}; the gate admits; the rotation completes`,
    'restart the scheduled and restart-only consumers (their next run / deploy)',
  ],
  async run(stand, ctx) {
    stand.consumer(STUCK).freeze();
    stand.phase('rotating');
    const rotation = await stand.rotate();
    await ctx.captureHold('holding at promotion gate', STUCK, { rotationState: 'waiting-at-gate' });
    await ctx.operator(`restart ${STUCK}`, `restart ${STUCK}`, () =>
      stand.consumer(STUCK).restart(),
    );
    stand.phase('waiting for the gate to admit');
    const r = await ctx.finishRotation(rotation);
    if (!r.ok)
      ctx.problem(`the rotation did not complete after the restart: ${r.error ?? 'not promoted'}`);
    await restartNonLive(stand);
  },
};
