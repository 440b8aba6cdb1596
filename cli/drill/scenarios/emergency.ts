/**
 * `emergency`: a credential is suspected leaked while a restart-only consumer still uses the
 * previous user. The operator runs `converge rotate --emergency --yes`: the revocation guard does
 * not wait, terminates that user's sessions (the function logs each one, attributed by its
 * application_name), and after promotion the formerly current credential is revoked and its
 * sessions terminated too. The report counts the queries that failed, per consumer: the blast
 * radius an emergency rotation accepts.
 */
import type { Scenario } from '../scenario';
import { restartNonLive } from './steps';

const STUCK = 'drill-restart-only-4';

export const emergency: Scenario = {
  name: 'emergency',
  summary: `converge rotate --emergency while ${STUCK} still uses the previous user: its sessions are terminated and the rotation completes without waiting for it`,
  plan: [
    `rotation 1 completes; ${STUCK} is NOT restarted (it stays on the previous user)`,
    `capture converge status --sessions (${STUCK} BLOCKING the next revocation)`,
    "operator: converge rotate --emergency --yes: the guard terminates the previous user's sessions without waiting",
    'after promotion the formerly current credential is revoked; report terminated sessions and failed queries per consumer',
  ],
  async run(stand, ctx) {
    stand.phase('rotation 1');
    const first = await ctx.finishRotation(await stand.rotate());
    if (!first.ok)
      return ctx.problem(`rotation 1 did not complete: ${first.error ?? 'not promoted'}`);
    await restartNonLive(stand, [STUCK]);
    stand.consumer(STUCK).mark('not restarted');
    await ctx.captureHold('the next rotation would be held by the revocation guard', STUCK, {
      gate: 'revocation',
    });
    const failedBefore = stand.consumers.map((r) => r.failed());
    const logBefore = stand.functionLog.length;
    const rotation = await ctx.operator(
      'converge rotate --emergency',
      `converge rotate ${stand.secretName} --emergency --yes`,
      () => stand.rotate({ emergency: true }),
    );
    const r = await ctx.finishRotation(rotation, { emergency: true });
    if (!r.ok) ctx.problem(`the emergency rotation did not complete: ${r.error ?? 'not promoted'}`);
    if (r.guardHolds > 0)
      ctx.problem(`the emergency rotation waited for the revocation guard ${r.guardHolds} time(s)`);
    const terminated = stand.functionLog
      .slice(logBefore)
      .filter((l) => l.message.startsWith('EMERGENCY') && Array.isArray(l.attributes.terminated))
      .flatMap((l) =>
        (l.attributes.terminated as Record<string, unknown>[]).map((s) => ({
          ...s,
          loggedAs: l.message,
          username: l.attributes.username,
        })),
      );
    ctx.terminated(terminated);
    if (terminated.length === 0) ctx.problem('the function logged no terminated session');
    const failed = stand.consumers
      .map((c, i) => `${c.consumer.name} ${c.failed() - failedBefore[i]}`)
      .join(', ');
    ctx.note(`failed queries during the emergency rotation, per consumer: ${failed}`);
    await restartNonLive(stand);
  },
};
