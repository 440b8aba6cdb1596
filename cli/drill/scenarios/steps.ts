/** Steps several scenarios share. */
import type { Stand } from '../stand';

/**
 * What follows a promotion in production: scheduled jobs' next run and a deploy of restart-only
 * services load AWSCURRENT. `except` names consumers left as they are.
 *
 * @example
 * await restartNonLive(stand, ['drill-restart-only-4']);
 */
export async function restartNonLive(stand: Stand, except: readonly string[] = []): Promise<void> {
  const movers = stand.consumers.filter(
    (r) => r.consumer.mode !== 'live' && !except.includes(r.consumer.name),
  );
  if (movers.length === 0) return;
  stand.phase(`restarting ${movers.map((r) => r.consumer.name).join(', ')} (next run / deploy)`);
  await Promise.all(movers.map((r) => r.restart()));
}

/**
 * Waits until every running consumer's pool uses AWSCURRENT's generation.
 *
 * @example
 * await allOnCurrent(stand);
 */
export async function allOnCurrent(stand: Stand, timeoutMs = 60_000): Promise<void> {
  const current = await stand.currentGeneration();
  await stand.waitFor(
    `every consumer on generation ${current}`,
    () => stand.consumers.every((r) => r.generation() === current),
    timeoutMs,
  );
}
