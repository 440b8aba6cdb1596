/**
 * The names `converge drill --scenario` accepts. No dependencies, so the CLI can validate the flag
 * without loading the drill.
 */

/** The scenarios, in the order the README lists them. */
export const SCENARIO_NAMES = [
  'healthy',
  'stuck-live',
  'silent',
  'restart-only',
  'abort-midway',
  'emergency',
] as const;

/** One of {@link SCENARIO_NAMES}. */
export type ScenarioName = (typeof SCENARIO_NAMES)[number];
