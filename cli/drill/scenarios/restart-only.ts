/**
 * `restart-only`: a restart-only consumer is not restarted after rotation 1, so it keeps using the
 * previous user. Rotation 2's setSecret would overwrite that user's password: the revocation guard
 * refuses (held by the guard; the service retries). `converge status` shows it BLOCKING the
 * revocation and says restart it; the operator restarts it; the guard admits and rotation 2
 * completes.
 */
import type { Scenario } from '../scenario';
import { blockingConsumers } from '../status-view';
import { restartNonLive } from './steps';

const FORGOTTEN = 'drill-restart-only-4';

export const restartOnly: Scenario = {
  name: 'restart-only',
  summary: `a restart-only consumer (${FORGOTTEN}) is not restarted after a rotation; the next rotation is held by the revocation guard until the operator restarts it`,
  plan: [
    `rotation 1 completes; the scheduled consumer moves, ${FORGOTTEN} is NOT restarted (it stays on the previous user)`,
    `the rotation schedule starts rotation 2; its revocation guard refuses setSecret (${FORGOTTEN} still uses the user it would overwrite)`,
    `capture converge status --sessions during the hold (${FORGOTTEN} BLOCKING the revocation, next action restart)`,
    `operator: restart ${FORGOTTEN}; the guard admits at the service's next retry; rotation 2 completes`,
  ],
  async run(stand, ctx) {
    stand.phase('rotation 1');
    const first = await ctx.finishRotation(await stand.rotate());
    if (!first.ok)
      return ctx.problem(`rotation 1 did not complete: ${first.error ?? 'not promoted'}`);
    await restartNonLive(stand, [FORGOTTEN]);
    stand.consumer(FORGOTTEN).mark('not restarted');
    stand.phase(`waiting until only ${FORGOTTEN} holds the next revocation`);
    await stand.waitFor(
      `status to name ${FORGOTTEN} as the only consumer blocking the next rotation`,
      async () => {
        const names = blockingConsumers(await stand.status()).map((c) => c.name);
        return names.length === 1 && names[0] === FORGOTTEN;
      },
    );
    // The schedule starts rotation 2 (no `converge rotate` in front of it to wait first).
    stand.phase('rotation 2, started by the rotation schedule');
    const second = await stand.rotate({ schedule: true });
    await stand.waitFor("rotation 2's setSecret to be refused by the revocation guard", () =>
      stand.guardHolds.some((h) => h.versionId === second.versionId),
    );
    await ctx.captureHold('held by the revocation guard', FORGOTTEN, {
      rotationState: 'held-by-guard',
      gate: 'revocation',
    });
    await ctx.operator(`restart ${FORGOTTEN}`, `restart ${FORGOTTEN}`, () =>
      stand.consumer(FORGOTTEN).restart(),
    );
    stand.phase('waiting for the guard to admit (the service retries setSecret every 2 s)');
    const r = await ctx.finishRotation(second);
    if (!r.ok)
      ctx.problem(`rotation 2 did not complete after the restart: ${r.error ?? 'not promoted'}`);
    await restartNonLive(stand);
  },
};
