/**
 * What the CLI reads about a secret: its versions with stages, generation and username (never a
 * password), whether a rotation is in progress, and the operator overrides in effect.
 *
 * With `decrypt: false` only DescribeSecret is called: version ids, stages, tags and the generation
 * high-water tag, and no GetSecretValue (what `abort` and `rotate` use; they change a secret and
 * need no value of it).
 */
import { DescribeSecretCommand, GetSecretValueCommand, type DescribeSecretCommandOutput } from '@aws-sdk/client-secrets-manager';
import {
  readGenerationHighWater,
  readOverrides,
  TAG_GENERATION_HIGH_WATER,
  tagValue,
  type Overrides,
} from '../../lambda/rotation/overrides';
import { AWSCURRENT, AWSPENDING, AWSPREVIOUS, parseSecret } from '../../lambda/shared/secret';
import type { CliClients } from '../clients';

export interface VersionView {
  readonly versionId: string;
  readonly stages: readonly string[];
  readonly generation?: number;
  readonly username?: string;
  /** Why generation/username are missing (no value yet, unparsable). */
  readonly note?: string;
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
  readonly description: DescribeSecretCommandOutput;
}

/**
 * @example
 * const state = await readSecretState(clients, 'orders-app');                       // with generations
 * const meta = await readSecretState(clients, 'orders-app', { decrypt: false });    // DescribeSecret only
 */
export async function readSecretState(
  clients: CliClients,
  secretId: string,
  options: { readonly decrypt?: boolean } = {},
): Promise<SecretState> {
  const description = await clients.sm.send(new DescribeSecretCommand({ SecretId: secretId }));
  const arn = description.ARN ?? secretId;
  const versions: VersionView[] = [];
  for (const [versionId, stages] of Object.entries(description.VersionIdsToStages ?? {})) {
    const facts = options.decrypt === false ? {} : await versionFacts(clients, arn, versionId);
    versions.push({ versionId, stages, ...facts });
  }
  const withStage = (s: string) => versions.find((v) => v.stages.includes(s));
  const pendingVersion = versions.find((v) => v.stages.includes(AWSPENDING) && !v.stages.includes(AWSCURRENT));
  return {
    arn,
    name: description.Name ?? arn,
    rotationEnabled: description.RotationEnabled ?? false,
    rotationLambdaArn: description.RotationLambdaARN,
    lastRotated: description.LastRotatedDate ? new Date(description.LastRotatedDate).toISOString() : undefined,
    versions,
    current: withStage(AWSCURRENT),
    previous: withStage(AWSPREVIOUS),
    pending: pendingVersion,
    highWaterGeneration:
      tagValue(description, TAG_GENERATION_HIGH_WATER) === undefined ? undefined : readGenerationHighWater(description),
    // Overrides count only when bound to the waiting rotation's token (see lambda/rotation/overrides.ts).
    overrides: readOverrides(description, pendingVersion?.versionId ?? ''),
    description,
  };
}

async function versionFacts(clients: CliClients, arn: string, versionId: string): Promise<Partial<VersionView>> {
  let text: string | undefined;
  try {
    text = (await clients.sm.send(new GetSecretValueCommand({ SecretId: arn, VersionId: versionId }))).SecretString;
  } catch (err) {
    if ((err as Error).name === 'ResourceNotFoundException') return { note: 'no value yet (createSecret has not run)' };
    throw err;
  }
  try {
    const s = parseSecret(text);
    return { generation: s.generation, username: s.username };
  } catch (err) {
    return { note: `unparsable: ${(err as Error).message}` };
  }
}
