/**
 * What the CLI reads about a secret: its versions with stages, generation and username (never a
 * password), whether a rotation is in progress, the operator overrides in effect, and the rotation
 * function's records of the promotion gate's hold and of the last step failure.
 *
 * Everything comes from DescribeSecret alone: the rotation function records each version's
 * generation and username in a `converge:version:<id>` tag (lambda/rotation/records.ts), so status,
 * abort, rotate and finish need no GetSecretValue permission and never see a password. A version
 * without a record (the secret was rotated before converge recorded versions) shows a note instead;
 * the next rotation records it. Only `readValues: true` reads such versions' values with
 * GetSecretValue: `status --sessions`, which logs in as the master and holds that permission anyway.
 */
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  type DescribeSecretCommandOutput,
} from '@aws-sdk/client-secrets-manager';
import {
  readGenerationHighWater,
  readOverrides,
  TAG_GENERATION_HIGH_WATER,
  tagValue,
  type Overrides,
} from '../../lambda/rotation/overrides';
import {
  readGateRecord,
  readLastFailure,
  readVersionRecords,
  type FailureRecord,
  type GateRecord,
} from '../../lambda/rotation/records';
import { AWSCURRENT, AWSPENDING, AWSPREVIOUS, parseSecret } from '../../lambda/shared/secret';
import type { CliClients } from '../clients';

/** The note of a version the rotation function has not recorded. */
export const NOT_RECORDED =
  'not recorded (rotated before converge recorded versions; the next rotation records it)';
/** The note of a waiting version without a record: its createSecret has not run yet. */
export const PENDING_NOT_RECORDED = 'not recorded yet (createSecret has not run for it)';

export interface VersionView {
  readonly versionId: string;
  readonly stages: readonly string[];
  readonly generation?: number;
  readonly username?: string;
  /** Why generation/username are missing (not recorded, no value yet, unparsable). */
  readonly note?: string;
  /** Where generation and username come from: the function's record, or the value (`readValues`). */
  readonly source?: 'record' | 'value';
}

export interface SecretState {
  readonly arn: string;
  readonly name: string;
  readonly rotationEnabled: boolean;
  readonly rotationLambdaArn?: string;
  readonly lastRotated?: string;
  readonly versions: readonly VersionView[];
  readonly current?: VersionView;
  readonly previous?: VersionView;
  /** The waiting rotation: AWSPENDING on a version that is not AWSCURRENT. */
  readonly pending?: VersionView;
  /**
   * The `converge:generation` tag: the highest generation createSecret ever issued (it writes the tag
   * before it stages the value, so a pending version it staged holds this generation). Undefined
   * while no createSecret has run.
   */
  readonly highWaterGeneration?: number;
  /** Overrides bound to the waiting rotation (none when nothing waits). */
  readonly overrides: Overrides;
  /**
   * The promotion gate's hold record (`converge:gate`): the version it holds, since when, after how
   * many evaluations. Left behind only while that version waits (finishSecret removes it), so
   * compare `gate.versionId` with `pending?.versionId`.
   */
  readonly gate?: GateRecord;
  /**
   * The function's last step failure (`converge:last-failure`), gate holds excepted. It stays after
   * an abort; a promotion removes its own rotation's, and a step that succeeds on retry removes its
   * own. Compare `lastFailure.versionId` with `pending?.versionId`.
   */
  readonly lastFailure?: FailureRecord;
  readonly description: DescribeSecretCommandOutput;
}

export interface ReadSecretStateOptions {
  /**
   * Read the value (GetSecretValue) of each version the function has not recorded. Only for
   * `status --sessions`, whose grant includes GetSecretValue; everything else works from the records.
   *
   * @default false
   */
  readonly readValues?: boolean;
  /**
   * @deprecated The records made it the default to read no value; `decrypt: true` is `readValues: true`.
   */
  readonly decrypt?: boolean;
}

/**
 * @example
 * const state = await readSecretState(clients, 'orders-app');                        // DescribeSecret only
 * const full = await readSecretState(clients, 'orders-app', { readValues: true });   // values of unrecorded versions too
 */
export async function readSecretState(
  clients: CliClients,
  secretId: string,
  options: ReadSecretStateOptions = {},
): Promise<SecretState> {
  const description = await clients.sm.send(new DescribeSecretCommand({ SecretId: secretId }));
  const arn = description.ARN ?? secretId;
  const readValues = options.readValues ?? options.decrypt === true;
  const records = readVersionRecords(description);
  const versions: VersionView[] = [];
  for (const [versionId, stages] of Object.entries(description.VersionIdsToStages ?? {})) {
    const record = records.get(versionId);
    let facts: Partial<VersionView>;
    if (record)
      facts = { generation: record.generation, username: record.username, source: 'record' };
    else if (readValues) facts = await versionFacts(clients, arn, versionId);
    else
      facts = {
        note:
          stages.includes(AWSPENDING) && !stages.includes(AWSCURRENT)
            ? PENDING_NOT_RECORDED
            : NOT_RECORDED,
      };
    versions.push({ versionId, stages, ...facts });
  }
  const withStage = (s: string) => versions.find((v) => v.stages.includes(s));
  const pendingVersion = versions.find(
    (v) => v.stages.includes(AWSPENDING) && !v.stages.includes(AWSCURRENT),
  );
  return {
    arn,
    name: description.Name ?? arn,
    rotationEnabled: description.RotationEnabled ?? false,
    rotationLambdaArn: description.RotationLambdaARN,
    lastRotated: description.LastRotatedDate
      ? new Date(description.LastRotatedDate).toISOString()
      : undefined,
    versions,
    current: withStage(AWSCURRENT),
    previous: withStage(AWSPREVIOUS),
    pending: pendingVersion,
    highWaterGeneration:
      tagValue(description, TAG_GENERATION_HIGH_WATER) === undefined
        ? undefined
        : readGenerationHighWater(description),
    // Overrides count only when bound to the waiting rotation's token (see lambda/rotation/overrides.ts).
    overrides: readOverrides(description, pendingVersion?.versionId ?? ''),
    gate: readGateRecord(description),
    lastFailure: readLastFailure(description),
    description,
  };
}

async function versionFacts(
  clients: CliClients,
  arn: string,
  versionId: string,
): Promise<Partial<VersionView>> {
  let text: string | undefined;
  try {
    text = (
      await clients.sm.send(new GetSecretValueCommand({ SecretId: arn, VersionId: versionId }))
    ).SecretString;
  } catch (err) {
    if ((err as Error).name === 'ResourceNotFoundException')
      return { note: 'no value yet (createSecret has not run)' };
    throw err;
  }
  try {
    const s = parseSecret(text);
    return { generation: s.generation, username: s.username, source: 'value' };
  } catch (err) {
    return { note: `unparsable: ${(err as Error).message}` };
  }
}
