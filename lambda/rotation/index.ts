/**
 * The Secrets Manager rotation function for PostgreSQL (alternating users) with convergence gates.
 * `handler` is the Lambda entry point; the rest is public for tests, the CLI and the drill.
 */
export { handler, createRotationHandler, runStep, type RedriveEvent, type InvocationContext } from './handler';
export { loadConfig, ENV, DEFAULT_EXCLUDE_CHARACTERS, type RotationConfig, type GateConfig } from './config';
export { STEPS, systemClock, type Clock, type RotationDependencies, type RotationEvent, type Step, type StepContext } from './context';
export { TAG_EMERGENCY, TAG_FORCE_FINISH, TAG_GENERATION_HIGH_WATER, readOverrides, type Overrides } from './overrides';
