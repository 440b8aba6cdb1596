/**
 * `abort-midway`: a rotation is held at the promotion gate by a stuck live consumer while another
 * live consumer has already adopted the pending credential. The operator runs `converge abort`:
 * AWSPENDING is removed (AWSCURRENT untouched), the consumer that adopted it falls back to
 * AWSCURRENT, the operator restarts the stuck consumer and rotates again, and that rotation
 * completes. Any refusal of the next rotation by the revocation guard (the abort-then-rotate trap)
 * is counted in the report.
 */
import { DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import { AWSCURRENT } from '../../../lambda/shared/secret';
import type { Scenario } from '../scenario';
import { restartNonLive } from './steps';

const STUCK = 'drill-live-2';
const ADOPTER = 'drill-live-1';

export const abortMidway: Scenario = {
  name: 'abort-midway',
  summary: `a rotation held at the gate by ${STUCK} is aborted after ${ADOPTER} adopted the pending credential; consumers fall back and the next rotation completes`,
  plan: [
    `freeze ${STUCK}'s secret source; converge rotate; the promotion gate holds`,
    `wait until ${ADOPTER} uses the pending credential; capture converge status --sessions`,
    `operator: converge abort (AWSPENDING removed, AWSCURRENT untouched); ${ADOPTER} falls back to AWSCURRENT`,
    `operator: restart ${STUCK}, then converge rotate; the new rotation completes`,
  ],
  async run(stand, ctx) {
    const current = await stand.currentGeneration();
    stand.consumer(STUCK).freeze();
    stand.phase('rotating');
    const first = await stand.rotate();
    await stand.waitFor(
      `${ADOPTER} to adopt the pending credential`,
      () => (stand.consumer(ADOPTER).generation() ?? 0) > current,
    );
    const pendingGeneration = stand.consumer(ADOPTER).generation();
    await ctx.captureHold('holding at promotion gate', STUCK, { rotationState: 'waiting-at-gate' });
    const aborted = await ctx.operator(
      'converge abort',
      `converge abort ${stand.secretName} --yes`,
      () => stand.abort(),
    );
    ctx.note(
      `abort: version ${aborted.abortedVersionId} (generation ${pendingGeneration}) lost AWSPENDING; AWSCURRENT stays on ${aborted.currentVersionId}; re-drive: ${aborted.redrive}`,
    );
    const r1 = await ctx.finishRotation(first);
    if (r1.ok) ctx.problem('the aborted rotation was promoted');
    stand.phase(`waiting for ${ADOPTER} to fall back to AWSCURRENT (generation ${current})`);
    await stand.waitFor(
      `${ADOPTER} to fall back to generation ${current}`,
      () => stand.consumer(ADOPTER).generation() === current,
    );
    await ctx.operator(`restart ${STUCK}`, `restart ${STUCK}`, () =>
      stand.consumer(STUCK).restart(),
    );
    const second = await ctx.operator(
      'converge rotate',
      `converge rotate ${stand.secretName}`,
      () => stand.rotate(),
    );
    const r2 = await ctx.finishRotation(second);
    if (!r2.ok)
      ctx.problem(`the rotation after the abort did not complete: ${r2.error ?? 'not promoted'}`);
    if (r2.guardHolds > 0) {
      const first = stand.guardHolds.find((h) => h.versionId === second.versionId);
      ctx.note(
        `the rotation after the abort was refused ${r2.guardHolds} time(s) by the revocation guard before it went on; first: ${first?.error}`,
      );
    }
    const stages =
      (await stand.clients.sm.send(new DescribeSecretCommand({ SecretId: stand.secretArn })))
        .VersionIdsToStages ?? {};
    if (!stages[second.versionId]?.includes(AWSCURRENT))
      ctx.problem('the new rotation is not AWSCURRENT');
    await restartNonLive(stand);
  },
};
