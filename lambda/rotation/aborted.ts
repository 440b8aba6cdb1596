/**
 * The record of the last operator abort, kept on the secret as the tag `converge:aborted` =
 * `<versionId> <generation> <atISO>`: which version lost AWSPENDING, the generation it held, and
 * when (the CLI's clock, right after the stage was removed).
 *
 * `converge abort` writes it (cli/commands/abort.ts); the revocation guard reads it from the
 * DescribeSecret output every step already has (lambda/rotation/revocation-guard.ts), and so does
 * `converge rotate` before it starts a rotation. With it, `LoadedGeneration` data points of the
 * aborted generation that a consumer published BEFORE the abort stop blocking the next rotation
 * once that consumer has reported after the abort (see `decideRevocation` in gates/decision.ts):
 * a live consumer that had adopted the aborted credential falls back at its next refresh, and its
 * earlier points are history, not use. Points of that generation published after the abort still
 * block, and so does every open session of the user (the guard counts them as always).
 *
 * Only the last abort is kept (a later abort replaces the tag): points of an earlier aborted
 * generation block until they leave the consumer's freshness window, as before. A tag that cannot
 * be parsed counts as absent, which is the conservative reading.
 */
import type { DescribeSecretCommandOutput } from '@aws-sdk/client-secrets-manager';
import { tagValue } from './override-tag-keys';

/** Tag key of the abort record. */
export const TAG_ABORTED = 'converge:aborted';

/** One operator abort. */
export interface AbortRecord {
  /** The version that lost AWSPENDING. */
  readonly versionId: string;
  /** The generation that version held (never issued again). */
  readonly generation: number;
  /** When AWSPENDING was removed, milliseconds since the epoch. */
  readonly at: number;
}

/** Characters Secrets Manager accepts in a tag value (`[\p{L}\p{Z}\p{N}_.:/=+\-@]`, at most 256). */
const TAG_VALUE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$/u;

/**
 * The tag value for an abort record.
 *
 * @throws Error when the version id holds a character a tag value cannot (Secrets Manager's version
 * ids are UUIDs or the client request token, which the CLI chooses as a UUID)
 *
 * @example
 * encodeAbortRecord({ versionId: 'a1b2', generation: 8, at: Date.parse('2031-03-04T05:06:07Z') });
 * // 'a1b2 8 2031-03-04T05:06:07.000Z'
 */
export function encodeAbortRecord(record: AbortRecord): string {
  const value = `${record.versionId} ${record.generation} ${new Date(record.at).toISOString()}`;
  if (/\s/.test(record.versionId) || !TAG_VALUE.test(value)) {
    throw new Error(
      `version id ${JSON.stringify(record.versionId)} cannot be recorded in a tag value`,
    );
  }
  return value;
}

/**
 * The abort record in a DescribeSecret output, or undefined when there is none or it cannot be read.
 *
 * @example
 * const aborted = readAbortRecord(ctx.description); // { versionId, generation: 8, at: 1931... } | undefined
 */
export function readAbortRecord(
  description: Pick<DescribeSecretCommandOutput, 'Tags'>,
): AbortRecord | undefined {
  const value = tagValue(description, TAG_ABORTED);
  if (value === undefined) return undefined;
  const parts = value.trim().split(/\s+/);
  if (parts.length !== 3) return undefined;
  const [versionId, generationText, atText] = parts;
  const generation = Number(generationText);
  const at = Date.parse(atText);
  if (!/^\d+$/.test(generationText) || !Number.isSafeInteger(generation) || Number.isNaN(at))
    return undefined;
  return { versionId, generation, at };
}
