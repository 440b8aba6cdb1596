/**
 * A rotation set up end to end for tests: a fresh database on the shared TLS PostgreSQL, a master
 * secret and an application secret in the in-memory Secrets Manager (installed behind the real
 * SDK client), and the real rotation handler registered as the secret's rotation function.
 *
 * @example
 * const h = await createRotationHarness({ prefix: 'rot' });
 * await h.rotate();                       // RotateSecret through the SDK, four steps, awaited
 * expect(h.current().generation).toBe(1);
 */
import { RotateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { installSecretsManagerModel, type SecretsManagerStub } from '../../cli/local/install';
import {
  secretFields,
  type LocalPostgres,
  type ProvisionedDatabase,
} from '../../cli/local/postgres';
import { SecretsManagerModel } from '../../cli/local/secrets-manager-model';
import {
  createRotationHandler,
  loadConfig,
  type RotationConfig,
  type RotationDependencies,
  type Step,
} from '../../lambda/rotation';
import {
  AWSCURRENT,
  AWSPENDING,
  AWSPREVIOUS,
  parseSecret,
  type DbSecret,
} from '../../lambda/shared/secret';
import { freshDatabase, uniqueTag } from './database';

let shared: { model: SecretsManagerModel; sm: SecretsManagerStub } | undefined;

/**
 * The test file's one Secrets Manager model, installed on first use.
 *
 * @example
 * const { model } = localSecretsManager();
 */
export function localSecretsManager(): { model: SecretsManagerModel; sm: SecretsManagerStub } {
  if (!shared) {
    const model = new SecretsManagerModel();
    shared = { model, sm: installSecretsManagerModel(model) };
  }
  return shared;
}

export interface RotationHarnessOptions {
  /** Prefix of database, role and secret names. */
  readonly prefix: string;
  /** Extra or replacement fields of the application secret (e.g. ownerRole, ssl). */
  readonly secretFields?: Record<string, unknown>;
  /** Raw SecretString for the application secret (for malformed-input tests). */
  readonly rawSecretString?: string;
  /** Name of the application role. @default `${prefix}_app_<tag>` */
  readonly appUsername?: string;
  /** Fields of the master secret to override (e.g. a wrong password). */
  readonly masterFields?: Record<string, unknown>;
  /** Environment for loadConfig (CONVERGE_*); the CA bundle and short timeouts are preset. */
  readonly env?: Record<string, string>;
  /** Other injected dependencies (cloudWatch client, clock, logger...). */
  readonly deps?: Partial<RotationDependencies>;
  /** Server to use. @default the shared TLS server of this file's major */
  readonly server?: LocalPostgres;
  /**
   * Who creates the application role: the master (default) or the superuser, which on PostgreSQL 16+
   * leaves the master without ADMIN OPTION on it (see provisionDatabase in cli/local/postgres.ts).
   *
   * @default 'master'
   */
  readonly appCreatedBy?: 'master' | 'superuser';
}

export interface RotationHarness {
  readonly db: ProvisionedDatabase & { server: LocalPostgres };
  readonly model: SecretsManagerModel;
  readonly sm: SecretsManagerStub;
  readonly secretArn: string;
  readonly masterArn: string;
  readonly lambdaArn: string;
  readonly config: RotationConfig;
  readonly handler: ReturnType<typeof createRotationHandler>;
  /**
   * RotateSecret through the SDK (with `token` as ClientRequestToken when given, as the CLI does),
   * then waits for the four steps; rejects with the step's error.
   */
  rotate(options?: { token?: string }): Promise<string>;
  /** Stages an AWSPENDING placeholder (what RotateSecret does first) and returns its token. */
  begin(): string;
  /** Runs one step through the handler. */
  step(step: Step, token: string): Promise<void>;
  /** The token of the waiting rotation (AWSPENDING on a version that is not AWSCURRENT). */
  pendingToken(): string;
  /**
   * What Secrets Manager's retry of a rotation stopped in setSecret does: setSecret, testSecret and
   * finishSecret again for the waiting token.
   */
  retry(): Promise<void>;
  /** Parsed secret at a stage. */
  secret(stage?: string): DbSecret;
  current(): DbSecret;
  /** Every password the model or the fixture holds: what must never be printed. */
  passwords(): string[];
}

/**
 * Sets up a rotation end to end on a fresh database of this file's PostgreSQL major.
 *
 * @example
 * const h = await createRotationHarness({ prefix: 'legacy', appCreatedBy: 'superuser' });
 * await h.rotate();
 */
export async function createRotationHarness(
  options: RotationHarnessOptions,
): Promise<RotationHarness> {
  const { model, sm } = localSecretsManager();
  const db = await freshDatabase(options.prefix, {
    appUsername: options.appUsername,
    server: options.server,
    appCreatedBy: options.appCreatedBy,
  });
  const tag = uniqueTag();
  const master = model.createSecret({
    Name: `${options.prefix}-master-${tag}`,
    SecretString: JSON.stringify({
      ...secretFields(db.server, db).master,
      ...options.masterFields,
    }),
  });
  const app = model.createSecret({
    Name: `${options.prefix}-app-${tag}`,
    SecretString:
      options.rawSecretString ??
      JSON.stringify({ ...secretFields(db.server, db).app(master.ARN), ...options.secretFields }),
  });
  const config = loadConfig({
    CONVERGE_CA_BUNDLE: db.server.caBundlePath ?? '',
    CONVERGE_CONNECT_TIMEOUT_MS: '3000',
    CONVERGE_STATEMENT_TIMEOUT_MS: '5000',
    ...options.env,
  });
  const handler = createRotationHandler({ config, ...options.deps });
  const lambdaArn = `arn:aws:lambda:us-east-1:123456789012:function:${options.prefix}-rotation-${tag}`;
  model.registerRotationFunction(lambdaArn, (e) => handler(e));
  model.configureRotation(app.ARN!, lambdaArn);
  const client = new SecretsManagerClient({});
  const secretArn = app.ARN!;
  const harness: RotationHarness = {
    db,
    model,
    sm,
    secretArn,
    masterArn: master.ARN!,
    lambdaArn,
    config,
    handler,
    async rotate(rotateOptions = {}) {
      const out = await client.send(
        new RotateSecretCommand({ SecretId: secretArn, ClientRequestToken: rotateOptions.token }),
      );
      const record = await model.rotationSettled(secretArn);
      if (record?.error) throw record.error;
      return out.VersionId!;
    },
    begin: () => model.stagePendingPlaceholder(secretArn),
    async step(step, token) {
      await handler({ Step: step, SecretId: secretArn, ClientRequestToken: token });
    },
    pendingToken() {
      const waiting = Object.entries(model.snapshot(secretArn)).find(
        ([, v]) => v.stages.includes(AWSPENDING) && !v.stages.includes(AWSCURRENT),
      );
      if (!waiting) throw new Error(`no rotation of ${secretArn} is waiting`);
      return waiting[0];
    },
    async retry() {
      const token = harness.pendingToken();
      for (const step of ['setSecret', 'testSecret', 'finishSecret'] as const)
        await harness.step(step, token);
    },
    secret(stage = AWSCURRENT) {
      return parseSecret(
        model.getSecretValue({ SecretId: secretArn, VersionStage: stage }).SecretString,
      );
    },
    current: () => harness.secret(AWSCURRENT),
    passwords() {
      const out = [db.master.password, db.app.password];
      for (const v of Object.values(model.snapshot(secretArn))) {
        try {
          out.push(String(JSON.parse(v.value ?? '{}').password ?? ''));
        } catch {
          /* malformed on purpose */
        }
      }
      return out.filter(Boolean);
    },
  };
  return harness;
}

export { AWSCURRENT, AWSPENDING, AWSPREVIOUS };
