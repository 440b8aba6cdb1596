/**
 * Every scenario the drill runs besides `healthy` (today's drill, ../drill.ts), by name.
 */
import type { Scenario, ScenarioName } from '../scenario';
import { abortMidway } from './abort-midway';
import { emergency } from './emergency';
import { restartOnly } from './restart-only';
import { silent } from './silent';
import { stuckLive } from './stuck-live';

export const SCENARIOS: Record<Exclude<ScenarioName, 'healthy'>, Scenario> = {
  'stuck-live': stuckLive,
  silent,
  'restart-only': restartOnly,
  'abort-midway': abortMidway,
  emergency,
};
