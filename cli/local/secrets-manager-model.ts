/**
 * An in-memory model of the documented behaviour of AWS Secrets Manager, for the drill and the
 * tests. It answers the real SDK v3 commands (installed with aws-sdk-client-mock, see
 * {@link installLocalAws}) the way the service does:
 *
 * - versions with staging labels; a label lives on at most one version;
 * - moving AWSCURRENT moves AWSPREVIOUS to the version that held AWSCURRENT;
 * - PutSecretValue is idempotent per ClientRequestToken and throws ResourceExistsException when the
 *   same token comes with a different value;
 * - RotateSecret creates the AWSPENDING version with no value, refuses while an earlier rotation
 *   is incomplete, turns automatic rotation on (RotationEnabled), and invokes the rotation
 *   function's four steps (asynchronously, like the service);
 * - CancelRotateSecret turns automatic rotation off, invokes no further step of a rotation in
 *   progress, leaves every staging label where it is, and answers the partial version's id;
 * - GetSecretValue of a version without a value, an unknown version, or a stage not on the version
 *   throws ResourceNotFoundException;
 * - TagResource (and CreateSecret's Tags) validate like the service's API model: a key of 1-128 and
 *   a value of 0-256 Unicode characters, both matching `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`, and at
 *   most 50 tags per secret (keys starting with `aws:` do not count), else ValidationException and
 *   nothing is changed. (The API reference documents the 50-tag limit but not the error the service
 *   answers with; the model answers ValidationException.)
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  InvalidParameterException,
  InvalidRequestException,
  ResourceExistsException,
  ResourceNotFoundException,
  SecretsManagerServiceException,
  type CreateSecretCommandInput,
  type CreateSecretCommandOutput,
  type DescribeSecretCommandInput,
  type DescribeSecretCommandOutput,
  type GetRandomPasswordCommandInput,
  type GetRandomPasswordCommandOutput,
  type GetSecretValueCommandInput,
  type GetSecretValueCommandOutput,
  type ListSecretVersionIdsCommandInput,
  type ListSecretVersionIdsCommandOutput,
  type PutSecretValueCommandInput,
  type PutSecretValueCommandOutput,
  type RotateSecretCommandInput,
  type RotateSecretCommandOutput,
  type TagResourceCommandInput,
  type UntagResourceCommandInput,
  type UpdateSecretVersionStageCommandInput,
  type UpdateSecretVersionStageCommandOutput,
  type CancelRotateSecretCommandInput,
  type CancelRotateSecretCommandOutput,
  type UpdateSecretCommandInput,
  type UpdateSecretCommandOutput,
} from '@aws-sdk/client-secrets-manager';

const meta = { $metadata: {} };
const CURRENT = 'AWSCURRENT';
const PENDING = 'AWSPENDING';
const PREVIOUS = 'AWSPREVIOUS';

/** The event Secrets Manager sends to a rotation function. */
export interface RotationEvent {
  readonly Step: 'createSecret' | 'setSecret' | 'testSecret' | 'finishSecret';
  readonly SecretId: string;
  readonly ClientRequestToken: string;
  readonly RotationToken?: string;
}

/** A rotation function as the model invokes it. */
export type RotationFunction = (event: RotationEvent) => Promise<unknown>;

interface Version {
  readonly id: string;
  value?: string;
  stages: Set<string>;
  readonly created: Date;
}

interface Secret {
  readonly arn: string;
  readonly name: string;
  readonly versions: Map<string, Version>;
  tags: Map<string, string>;
  rotationEnabled: boolean;
  rotationLambdaArn?: string;
  rotationRules?: RotateSecretCommandInput['RotationRules'];
  lastRotated?: Date;
  lastChanged: Date;
  kmsKeyId?: string;
  description?: string;
  /** The rotation whose steps the model is invoking now. */
  running?: RotationRecord;
}

/** Outcome of one rotation the model ran. */
export interface RotationRecord {
  readonly secretArn: string;
  readonly token: string;
  readonly steps: { step: RotationEvent['Step']; ms: number }[];
  error?: Error;
  /** CancelRotateSecret stopped it: no step was invoked after that. */
  cancelled?: boolean;
}

export interface SecretsManagerModelOptions {
  /** @default 'us-east-1' */
  readonly region?: string;
  /** @default '123456789012' */
  readonly accountId?: string;
  /**
   * How often the service retries a rotation whose step threw, before giving up. The real
   * service's count is undocumented.
   *
   * @default 0
   */
  readonly rotationRetries?: number;
  /**
   * Whether RotateSecret invokes the rotation function itself. `false` only stages the AWSPENDING
   * version (as the service does first) and leaves the four invocations to the caller, which then
   * plays the service: the model-based test delivers each step, retries and out-of-order repeats.
   *
   * @default true
   */
  readonly invokeRotation?: boolean;
}

/**
 * In-memory Secrets Manager. Create one per test (or per drill), then install it with
 * {@link installLocalAws}.
 *
 * @example
 * const sm = new SecretsManagerModel();
 * const { ARN } = sm.createSecret({ Name: 'app', SecretString: '{}' });
 */
export class SecretsManagerModel {
  private readonly secrets = new Map<string, Secret>();
  private readonly rotationFunctions = new Map<string, RotationFunction>();
  private readonly inFlight = new Map<string, Promise<RotationRecord>>();
  /** Every rotation the model ran, in order. */
  public readonly rotations: RotationRecord[] = [];
  private readonly region: string;
  private readonly accountId: string;
  private readonly rotationRetries: number;
  private readonly invokeRotation: boolean;

  public constructor(options: SecretsManagerModelOptions = {}) {
    this.region = options.region ?? 'us-east-1';
    this.accountId = options.accountId ?? '123456789012';
    this.rotationRetries = options.rotationRetries ?? 0;
    this.invokeRotation = options.invokeRotation ?? true;
  }

  /** Registers the function RotateSecret invokes for a RotationLambdaARN. */
  public registerRotationFunction(lambdaArn: string, fn: RotationFunction): void {
    this.rotationFunctions.set(lambdaArn, fn);
  }

  /** Resolves when the rotation RotateSecret started for this secret has ended (either way). */
  public async rotationSettled(secretId: string): Promise<RotationRecord | undefined> {
    return this.inFlight.get(this.find(secretId).arn);
  }

  public createSecret(input: CreateSecretCommandInput): CreateSecretCommandOutput {
    if (!input.Name) throw invalidParameter('Name is required');
    validateTags(new Map(), input.Tags ?? []);
    for (const s of this.secrets.values()) {
      if (s.name === input.Name) {
        throw new ResourceExistsException({ message: `The operation failed because the secret ${input.Name} already exists.`, ...meta });
      }
    }
    const arn = `arn:aws:secretsmanager:${this.region}:${this.accountId}:secret:${input.Name}-${randomBytes(3).toString('hex')}`;
    const secret: Secret = {
      arn,
      name: input.Name,
      versions: new Map(),
      tags: new Map((input.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? ''])),
      rotationEnabled: false,
      lastChanged: new Date(),
      kmsKeyId: input.KmsKeyId,
      description: input.Description,
    };
    this.secrets.set(arn, secret);
    let versionId: string | undefined;
    if (input.SecretString !== undefined) {
      versionId = input.ClientRequestToken ?? randomUUID();
      secret.versions.set(versionId, { id: versionId, value: input.SecretString, stages: new Set([CURRENT]), created: new Date() });
    }
    return { ARN: arn, Name: input.Name, VersionId: versionId, ...meta };
  }

  public describeSecret(input: DescribeSecretCommandInput): DescribeSecretCommandOutput {
    const s = this.find(input.SecretId);
    const versionIdsToStages: Record<string, string[]> = {};
    for (const v of s.versions.values()) {
      if (v.stages.size > 0) versionIdsToStages[v.id] = [...v.stages];
    }
    return {
      ARN: s.arn,
      Name: s.name,
      Description: s.description,
      KmsKeyId: s.kmsKeyId,
      RotationEnabled: s.rotationEnabled,
      RotationLambdaARN: s.rotationLambdaArn,
      RotationRules: s.rotationRules,
      LastRotatedDate: s.lastRotated,
      LastChangedDate: s.lastChanged,
      Tags: [...s.tags].map(([Key, Value]) => ({ Key, Value })),
      VersionIdsToStages: versionIdsToStages,
      ...meta,
    };
  }

  public listSecretVersionIds(input: ListSecretVersionIdsCommandInput): ListSecretVersionIdsCommandOutput {
    const s = this.find(input.SecretId);
    const versions = [...s.versions.values()]
      .filter((v) => input.IncludeDeprecated || v.stages.size > 0)
      .map((v) => ({ VersionId: v.id, VersionStages: [...v.stages], CreatedDate: v.created }));
    return { ARN: s.arn, Name: s.name, Versions: versions, ...meta };
  }

  public getSecretValue(input: GetSecretValueCommandInput): GetSecretValueCommandOutput {
    const s = this.find(input.SecretId);
    let version: Version | undefined;
    if (input.VersionId) {
      version = s.versions.get(input.VersionId);
      if (version && input.VersionStage && !version.stages.has(input.VersionStage)) version = undefined;
    } else {
      const stage = input.VersionStage ?? CURRENT;
      version = [...s.versions.values()].find((v) => v.stages.has(stage));
    }
    if (!version || version.value === undefined) {
      throw new ResourceNotFoundException({
        message: `Secrets Manager can't find the specified secret value for ${input.VersionId ? `VersionId: ${input.VersionId}` : `staging label: ${input.VersionStage ?? CURRENT}`}`,
        ...meta,
      });
    }
    return {
      ARN: s.arn,
      Name: s.name,
      VersionId: version.id,
      SecretString: version.value,
      VersionStages: [...version.stages],
      CreatedDate: version.created,
      ...meta,
    };
  }

  public putSecretValue(input: PutSecretValueCommandInput): PutSecretValueCommandOutput {
    const s = this.find(input.SecretId);
    if (input.SecretString === undefined) throw invalidParameter('You must provide either SecretString or SecretBinary.');
    const token = input.ClientRequestToken ?? randomUUID();
    const stages = input.VersionStages ?? [CURRENT];
    const existing = s.versions.get(token);
    if (existing && existing.value !== undefined) {
      if (existing.value !== input.SecretString) {
        throw new ResourceExistsException({
          message: 'You can’t modify an existing version, you can only create a new version.',
          ...meta,
        });
      }
      return { ARN: s.arn, Name: s.name, VersionId: token, VersionStages: [...existing.stages], ...meta };
    }
    const version = existing ?? { id: token, stages: new Set<string>(), created: new Date() };
    version.value = input.SecretString;
    s.versions.set(token, version);
    for (const stage of stages) this.attach(s, stage, version);
    s.lastChanged = new Date();
    return { ARN: s.arn, Name: s.name, VersionId: token, VersionStages: [...version.stages], ...meta };
  }

  public updateSecretVersionStage(input: UpdateSecretVersionStageCommandInput): UpdateSecretVersionStageCommandOutput {
    const s = this.find(input.SecretId);
    const stage = input.VersionStage;
    if (!stage) throw invalidParameter('VersionStage is required');
    const holder = [...s.versions.values()].find((v) => v.stages.has(stage));
    if (holder && input.MoveToVersionId && input.RemoveFromVersionId !== holder.id && input.MoveToVersionId !== holder.id) {
      throw invalidParameter(
        `The staging label ${stage} is currently attached to version ${holder.id}, so you must explicitly reference that version in RemoveFromVersionId.`,
      );
    }
    if (input.RemoveFromVersionId) {
      const from = s.versions.get(input.RemoveFromVersionId);
      if (!from) throw notFound(`version ${input.RemoveFromVersionId}`);
      if (!from.stages.has(stage)) {
        throw invalidParameter(`The staging label ${stage} is not attached to version ${input.RemoveFromVersionId}.`);
      }
      if (stage === CURRENT && !input.MoveToVersionId) {
        throw invalidParameter('You can only move staging label AWSCURRENT to a different secret version. It can’t be completely removed.');
      }
      if (!input.MoveToVersionId) from.stages.delete(stage);
    }
    if (input.MoveToVersionId) {
      const to = s.versions.get(input.MoveToVersionId);
      if (!to) throw notFound(`version ${input.MoveToVersionId}`);
      this.attach(s, stage, to);
    }
    s.lastChanged = new Date();
    return { ARN: s.arn, Name: s.name, ...meta };
  }

  public getRandomPassword(input: GetRandomPasswordCommandInput): GetRandomPasswordCommandOutput {
    const length = input.PasswordLength ?? 32;
    if (!Number.isInteger(length) || length < 1 || length > 4096) throw invalidParameter('PasswordLength must be 1-4096');
    const exclude = new Set([...(input.ExcludeCharacters ?? '')]);
    const classes = [
      input.ExcludeLowercase ? '' : 'abcdefghijklmnopqrstuvwxyz',
      input.ExcludeUppercase ? '' : 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
      input.ExcludeNumbers ? '' : '0123456789',
      input.ExcludePunctuation ? '' : '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~',
      input.IncludeSpace ? ' ' : '',
    ]
      .map((c) => [...c].filter((ch) => !exclude.has(ch)).join(''))
      .filter((c) => c.length > 0);
    if (classes.length === 0) throw invalidParameter('No characters left to build a password from.');
    const all = classes.join('');
    const pick = (set: string) => set[randomBytes(4).readUInt32BE(0) % set.length];
    const chars = Array.from({ length }, () => pick(all));
    if (input.RequireEachIncludedType !== false && length >= classes.length) {
      classes.forEach((c, i) => (chars[i] = pick(c)));
      for (let i = chars.length - 1; i > 0; i--) {
        const j = randomBytes(4).readUInt32BE(0) % (i + 1);
        [chars[i], chars[j]] = [chars[j], chars[i]];
      }
    }
    return { RandomPassword: chars.join(''), ...meta };
  }

  public rotateSecret(input: RotateSecretCommandInput): RotateSecretCommandOutput {
    const s = this.find(input.SecretId);
    if (input.RotationLambdaARN) s.rotationLambdaArn = input.RotationLambdaARN;
    if (input.RotationRules) s.rotationRules = input.RotationRules;
    if (!s.rotationLambdaArn) {
      throw invalidRequest('No Lambda rotation function ARN is associated with this secret.');
    }
    const pending = [...s.versions.values()].find((v) => v.stages.has(PENDING));
    if (pending && !pending.stages.has(CURRENT)) {
      throw invalidRequest('A previous rotation isn’t complete. That rotation will be reattempted.');
    }
    const fn = this.rotationFunctions.get(s.rotationLambdaArn);
    if (!fn) throw invalidRequest(`Secrets Manager cannot invoke the specified Lambda function ${s.rotationLambdaArn}.`);
    s.rotationEnabled = true;
    if (input.RotateImmediately === false) {
      // Documented: "Secrets Manager tests the rotation configuration by running the testSecret step
      // of the Lambda rotation function. The test creates an AWSPENDING version of the secret and
      // then removes it."
      const testToken = input.ClientRequestToken ?? randomUUID();
      if (pending) pending.stages.delete(PENDING);
      s.versions.set(testToken, { id: testToken, stages: new Set([PENDING]), created: new Date() });
      const record: RotationRecord = { secretArn: s.arn, token: testToken, steps: [] };
      this.rotations.push(record);
      const started = Date.now();
      const run = fn({ Step: 'testSecret', SecretId: s.arn, ClientRequestToken: testToken })
        .then(() => void record.steps.push({ step: 'testSecret', ms: Date.now() - started }))
        .catch((err: unknown) => void (record.error = err instanceof Error ? err : new Error(String(err))))
        .then(() => {
          s.versions.get(testToken)?.stages.delete(PENDING);
          return record;
        });
      this.inFlight.set(s.arn, run);
      return { ARN: s.arn, Name: s.name, ...meta };
    }
    const token = input.ClientRequestToken ?? randomUUID();
    if (pending) pending.stages.delete(PENDING);
    s.versions.set(token, { id: token, stages: new Set([PENDING]), created: new Date() });
    if (!this.invokeRotation) return { ARN: s.arn, Name: s.name, VersionId: token, ...meta };
    const run = this.runRotation(s, fn, token);
    this.inFlight.set(s.arn, run);
    return { ARN: s.arn, Name: s.name, VersionId: token, ...meta };
  }

  /**
   * Documented: "Turns off automatic rotation, and if a rotation is currently in progress, cancels
   * the rotation", which "can leave the VersionStage labels in an unexpected state": the labels are
   * not touched, and the answer's VersionId is the version the rotation created.
   */
  public cancelRotateSecret(input: CancelRotateSecretCommandInput): CancelRotateSecretCommandOutput {
    const s = this.find(input.SecretId);
    s.rotationEnabled = false;
    if (s.running) s.running.cancelled = true;
    const partial = [...s.versions.values()].find((v) => v.stages.has(PENDING) && !v.stages.has(CURRENT));
    return { ARN: s.arn, Name: s.name, VersionId: partial?.id, ...meta };
  }

  public updateSecret(input: UpdateSecretCommandInput): UpdateSecretCommandOutput {
    const s = this.find(input.SecretId);
    if (input.Description !== undefined) s.description = input.Description;
    if (input.KmsKeyId !== undefined) s.kmsKeyId = input.KmsKeyId;
    let versionId: string | undefined;
    if (input.SecretString !== undefined) {
      versionId = this.putSecretValue({ SecretId: s.arn, SecretString: input.SecretString, ClientRequestToken: input.ClientRequestToken }).VersionId;
    }
    return { ARN: s.arn, Name: s.name, VersionId: versionId, ...meta };
  }

  public tagResource(input: TagResourceCommandInput): object {
    const s = this.find(input.SecretId);
    validateTags(s.tags, input.Tags ?? []);
    for (const t of input.Tags ?? []) s.tags.set(t.Key ?? '', t.Value ?? '');
    return meta;
  }

  public untagResource(input: UntagResourceCommandInput): object {
    const s = this.find(input.SecretId);
    for (const k of input.TagKeys ?? []) s.tags.delete(k);
    return meta;
  }

  /**
   * What RotateSecret does before it invokes the function: a new version `token` with AWSPENDING
   * and no value. Lets tests drive the four steps one by one.
   */
  public stagePendingPlaceholder(secretId: string, token: string = randomUUID()): string {
    const s = this.find(secretId);
    for (const v of s.versions.values()) v.stages.delete(PENDING);
    s.versions.set(token, { id: token, stages: new Set([PENDING]), created: new Date() });
    return token;
  }

  /** Enables rotation with a function ARN without rotating (what the CDK RotationSchedule sets up). */
  public configureRotation(secretId: string, lambdaArn: string, enabled = true): void {
    const s = this.find(secretId);
    s.rotationLambdaArn = lambdaArn;
    s.rotationEnabled = enabled;
  }

  /** The stages of every labelled version, for assertions ("unchanged before and after"). */
  public snapshot(secretId: string): Record<string, { stages: string[]; value?: string }> {
    const s = this.find(secretId);
    const out: Record<string, { stages: string[]; value?: string }> = {};
    for (const v of s.versions.values()) out[v.id] = { stages: [...v.stages].sort(), value: v.value };
    return out;
  }

  private async runRotation(s: Secret, fn: RotationFunction, token: string): Promise<RotationRecord> {
    const record: RotationRecord = { secretArn: s.arn, token, steps: [] };
    this.rotations.push(record);
    s.running = record;
    try {
      return await this.invokeSteps(s, fn, record);
    } finally {
      if (s.running === record) s.running = undefined;
    }
  }

  private async invokeSteps(s: Secret, fn: RotationFunction, record: RotationRecord): Promise<RotationRecord> {
    const token = record.token;
    for (let attempt = 0; attempt <= this.rotationRetries; attempt++) {
      record.error = undefined;
      try {
        for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) {
          if (record.cancelled) throw new Error(`rotation ${token} was cancelled (CancelRotateSecret) before ${step}`);
          const started = Date.now();
          await fn({ Step: step, SecretId: s.arn, ClientRequestToken: token });
          record.steps.push({ step, ms: Date.now() - started });
        }
        s.lastRotated = new Date();
        return record;
      } catch (err) {
        record.error = err instanceof Error ? err : new Error(String(err));
        if (record.cancelled) break;
      }
    }
    return record;
  }

  private attach(s: Secret, stage: string, to: Version): void {
    for (const v of s.versions.values()) {
      if (v !== to && v.stages.has(stage)) {
        v.stages.delete(stage);
        if (stage === CURRENT) {
          for (const p of s.versions.values()) p.stages.delete(PREVIOUS);
          v.stages.add(PREVIOUS);
        }
      }
    }
    if (stage === CURRENT) to.stages.delete(PREVIOUS);
    to.stages.add(stage);
  }

  private find(secretId: string | undefined): Secret {
    if (!secretId) throw invalidParameter('SecretId is required');
    const direct = this.secrets.get(secretId);
    if (direct) return direct;
    for (const s of this.secrets.values()) {
      // Names, full ARNs and partial ARNs (without the random suffix) all identify a secret.
      if (s.name === secretId || s.arn.startsWith(`${secretId}-`) && secretId.startsWith('arn:')) return s;
    }
    throw notFound(`secret ${secretId}`);
  }
}

/** The characters the service's API model allows in tag keys and values. */
const TAG_PATTERN = /^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$/u;
const MAX_TAGS = 50;

/**
 * The error the service answers when a request fails its API model's constraints (it is not one of
 * the SDK's modelled exceptions, so it surfaces as a SecretsManagerServiceException with this name).
 */
export class ValidationException extends SecretsManagerServiceException {
  public constructor(message: string) {
    super({ name: 'ValidationException', $fault: 'client', message, ...meta });
  }
}

/**
 * Checks `tags` as the service does before it adds them to `existing`. The message names the
 * member and the constraint, never the value.
 */
function validateTags(existing: ReadonlyMap<string, string>, tags: readonly { Key?: string; Value?: string }[]): void {
  const errors: string[] = [];
  tags.forEach((t, i) => {
    const at = `tags.${i + 1}.member`;
    const key = t.Key ?? '';
    const value = t.Value ?? '';
    const keyLength = [...key].length;
    if (keyLength < 1 || keyLength > 128) errors.push(`${at}.key failed to satisfy constraint: Member must have length between 1 and 128`);
    if (!TAG_PATTERN.test(key)) errors.push(`${at}.key failed to satisfy constraint: Member must satisfy regular expression pattern: ${TAG_PATTERN.source}`);
    if ([...value].length > 256) errors.push(`${at}.value failed to satisfy constraint: Member must have length less than or equal to 256`);
    if (!TAG_PATTERN.test(value)) errors.push(`${at}.value failed to satisfy constraint: Member must satisfy regular expression pattern: ${TAG_PATTERN.source}`);
  });
  if (errors.length > 0) throw new ValidationException(`${errors.length} validation error${errors.length > 1 ? 's' : ''} detected: ${errors.join('; ')}`);
  const keys = new Set([...existing.keys(), ...tags.map((t) => t.Key ?? '')].filter((k) => !k.startsWith('aws:')));
  if (keys.size > MAX_TAGS) {
    throw new ValidationException(`a secret can have at most ${MAX_TAGS} tags; this request would leave it with ${keys.size}`);
  }
}

function notFound(what: string): ResourceNotFoundException {
  return new ResourceNotFoundException({ message: `Secrets Manager can't find the specified ${what}.`, ...meta });
}

function invalidParameter(message: string): InvalidParameterException {
  return new InvalidParameterException({ message, ...meta });
}

function invalidRequest(message: string): InvalidRequestException {
  return new InvalidRequestException({ message, ...meta });
}
