/**
 * The consumer registry (docs/deploy.md, "Register consumers"): which consumers use a secret and how they refresh. It is
 * declared in the CDK construct, reaches the rotation function as JSON configuration
 * (`CONVERGE_CONSUMERS`), is shown by the CLI, and is the blast-radius inventory.
 */
import { ConfigurationError } from './errors';

/**
 * How a consumer picks up a new credential.
 * - `live`: refreshes in place and may pre-load AWSPENDING; the promotion gate waits for it.
 * - `scheduled`: a job that loads AWSCURRENT when it runs; the revocation guard waits for it.
 * - `restart-only`: loads at start only; the revocation guard waits for it.
 */
export const CONSUMER_MODES = ['live', 'scheduled', 'restart-only'] as const;
export type ConsumerMode = (typeof CONSUMER_MODES)[number];

/** Consumer names become CloudWatch dimension values: 1-255 printable characters, no spaces at the ends. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,254}$/;

/** One registered consumer. */
export interface ConsumerRegistration {
  /** Unique name; the `Consumer` dimension of its metrics. */
  readonly name: string;
  readonly mode: ConsumerMode;
  /**
   * How old the consumer's last data point may be and still count as fresh, in seconds.
   * A `scheduled` job that runs hourly needs at least 3600 here. Under 60 s needs high-resolution
   * reporting (see {@link MIN_STALENESS_SECONDS}).
   *
   * @default 300
   */
  readonly maxStalenessSeconds: number;
}

export const DEFAULT_MAX_STALENESS_SECONDS = 300;

/**
 * Shortest accepted staleness. Below 60 s the consumer must report high-resolution metrics
 * (`GenerationReporter` option `highResolution`, period at most half the staleness): the gates then
 * read per-second data, which CloudWatch keeps for 3 hours.
 */
export const MIN_STALENESS_SECONDS = 10;

/**
 * Parses a registry written as JSON text (an environment variable, a `--consumers` option) and
 * validates it like {@link parseRegistry}.
 *
 * @throws {@link ConfigurationError} naming `source`: the JSON does not parse, or an entry is wrong
 *
 * @example
 * const registry = parseRegistryJson(process.env.CONVERGE_CONSUMERS ?? '[]', 'CONVERGE_CONSUMERS');
 */
export function parseRegistryJson(text: string, source: string): ConsumerRegistration[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigurationError(
      `${source} is not valid JSON (${(err as Error).message}); expected a JSON array of {name, mode, maxStalenessSeconds}`,
    );
  }
  return parseRegistry(parsed, source);
}

/**
 * Validates a registry (parsed JSON or construct props) and applies defaults.
 *
 * @throws {@link ConfigurationError} naming the entry and what is wrong, with the value received
 *
 * @example
 * const registry = parseRegistry(JSON.parse(process.env.CONVERGE_CONSUMERS ?? '[]'));
 */
export function parseRegistry(value: unknown, source = 'consumer registry'): ConsumerRegistration[] {
  if (!Array.isArray(value)) {
    throw new ConfigurationError(`${source} must be a JSON array of consumers, got ${typeOf(value)}`);
  }
  const seen = new Set<string>();
  return value.map((entry: unknown, i) => {
    const where = `${source}[${i}]`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      throw new ConfigurationError(`${where} must be an object, got ${typeOf(entry)}`);
    }
    const { name, mode, maxStalenessSeconds } = entry as Record<string, unknown>;
    if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
      throw new ConfigurationError(
        `${where}.name must be 1-255 characters of letters, digits and ._:/@+=- starting with a letter or digit, got ${JSON.stringify(name)}`,
      );
    }
    if (seen.has(name)) throw new ConfigurationError(`${where}.name duplicates consumer "${name}"`);
    seen.add(name);
    if (typeof mode !== 'string' || !(CONSUMER_MODES as readonly string[]).includes(mode)) {
      throw new ConfigurationError(
        `${where}.mode must be one of ${CONSUMER_MODES.join(', ')}, got ${JSON.stringify(mode)} (consumer "${name}")`,
      );
    }
    const staleness = maxStalenessSeconds ?? DEFAULT_MAX_STALENESS_SECONDS;
    if (typeof staleness !== 'number' || !Number.isFinite(staleness) || staleness < MIN_STALENESS_SECONDS) {
      throw new ConfigurationError(
        `${where}.maxStalenessSeconds must be a number of at least ${MIN_STALENESS_SECONDS}, got ${JSON.stringify(maxStalenessSeconds)} (consumer "${name}")`,
      );
    }
    return { name, mode: mode as ConsumerMode, maxStalenessSeconds: staleness };
  });
}

/** Count of consumers by mode: the blast-radius inventory. */
export function blastRadius(registry: readonly ConsumerRegistration[]): Record<ConsumerMode, number> {
  const counts = { live: 0, scheduled: 0, 'restart-only': 0 } as Record<ConsumerMode, number>;
  for (const c of registry) counts[c.mode]++;
  return counts;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}
