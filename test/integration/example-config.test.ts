/**
 * The example stack's own configuration, run the way it is deployed: the example is synthesized
 * with the settings `cdk deploy` uses (cdk.json's context, as bin/app.ts reads it), and the rotation
 * function's configuration is taken from the template, not written here. The real handler then runs
 * the example's scheduled rotations against the local Secrets Manager and CloudWatch models and the
 * embedded PostgreSQL, with no operator action between them.
 *
 * Only what cannot exist locally is replaced: the Secrets Manager endpoint (the local models answer
 * the SDK clients in-process), the CA bundle (the local server's), the database endpoint and the
 * master credential (a local master that, like RDS's, is not a superuser). Everything else comes
 * from the template: the consumer registry and gate settings (CONVERGE_*), the function's timeout,
 * the secrets' names, the application secret's fields, and the SecretName dimension of the alarms.
 */
import { DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import {
  DescribeSecretCommand,
  RotateSecretCommand,
  SecretsManagerClient,
  TagResourceCommand,
} from '@aws-sdk/client-secrets-manager';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { mockClient } from 'aws-sdk-client-mock';
import { CloudWatchModel } from '../../cli/local/cloudwatch-model';
import { installCloudWatchModel, installSecretsManagerModel } from '../../cli/local/install';
import { provisionDatabase, withAdmin, type ProvisionedDatabase } from '../../cli/local/postgres';
import { SecretsManagerModel } from '../../cli/local/secrets-manager-model';
import { createRotationHandler, loadConfig } from '../../lambda/rotation';
import { ENV } from '../../lambda/rotation/config';
import { OVERRIDE_TAGS } from '../../lambda/rotation/overrides';
import { DIMENSION_SECRET, ROTATIONS_COMPLETED } from '../../lambda/shared/metric-contract';
import {
  alternateUsername,
  AWSCURRENT,
  AWSPREVIOUS,
  parseSecret,
} from '../../lambda/shared/secret';
import { ConvergeExampleStack, exampleSettingsFromContext } from '../../lib';
import { CDK_JSON_CONTEXT } from '../cdk/fixtures';
import { expectNoSecretsInOutput } from '../support/captured-output';
import { tlsServer, uniqueTag } from '../support/database';
import { evaluate, intrinsic, only, resources, type Json } from '../support/template';
import { VirtualClock } from './gates/fleet';

/** The stack id bin/app.ts uses (the secret names derive from it). */
const STACK = 'ConvergeExample';
/** What Secrets Manager's ARN for the deployed function would be (any ARN the model knows works). */
const LAMBDA_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:ConvergeExample-AppUserRotation';
/** CloudFormation names the RDS instance at deployment; locally it gets this identifier. */
const LOCAL_INSTANCE_ID = 'convergeexample-database-local';
/** The example's default schedule rotates weekly; the clock moves on by that much between rotations. */
const WEEK_MS = 7 * 24 * 3600 * 1000;

/** The example app exactly as `cdk synth` builds it (bin/app.ts), without bundling the function. */
function synthesizeExample(): Json {
  const app = new App({ context: { ...CDK_JSON_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
  const stack = new ConvergeExampleStack(app, STACK, {
    settings: exampleSettingsFromContext(app.node),
  });
  return Template.fromStack(stack).toJSON() as Json;
}

/** Every SecretName dimension value of every alarm in the template, evaluated with `refs`. */
function alarmSecretNames(template: Json, refs: Readonly<Record<string, string>>): string[] {
  const names: string[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!node || typeof node !== 'object') return;
    const o = node as Json;
    if (o.Name === DIMENSION_SECRET && 'Value' in o) names.push(evaluate(o.Value, refs));
    Object.values(o).forEach(visit);
  };
  for (const [, props] of resources(template, 'AWS::CloudWatch::Alarm')) visit(props);
  return names;
}

describe("the example stack's own configuration, run by the real handler against the local models", () => {
  const server = tlsServer();
  const tag = uniqueTag();
  const errors: unknown[] = [];
  const metricLines: string[] = [];
  let template: Json;
  let db: ProvisionedDatabase;
  let model: SecretsManagerModel;
  let sm: ReturnType<typeof installSecretsManagerModel>;
  let cw: ReturnType<typeof installCloudWatchModel>;
  const rds = mockClient(RDSClient);
  const clock = new VirtualClock();

  beforeAll(async () => {
    template = synthesizeExample();
    model = new SecretsManagerModel();
    sm = installSecretsManagerModel(model);
    cw = installCloudWatchModel(new CloudWatchModel({ now: () => clock.now() }));
  });

  afterAll(async () => {
    sm?.restore();
    cw?.restore();
    rds.restore();
    if (db) {
      await withAdmin(server, 'postgres', server.superuser, async (c) => {
        await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(db.dbname)} WITH (FORCE)`);
        for (const role of [db.app.username, alternateUsername(db.app), db.master.username]) {
          await c.query(`DROP ROLE IF EXISTS ${c.escapeIdentifier(role)}`);
        }
      });
    }
  });

  it('completes two scheduled rotations in a row with no operator action, under the SecretName its alarms watch', async () => {
    // Prepare: what the template says the deployment holds
    const schedule = only(
      resources(template, 'AWS::SecretsManager::RotationSchedule'),
      'rotation schedule',
    )[1];
    const attachments = Object.fromEntries(
      resources(template, 'AWS::SecretsManager::SecretTargetAttachment'),
    );
    const secrets = Object.fromEntries(resources(template, 'AWS::SecretsManager::Secret'));
    const appAttachmentId = intrinsic(schedule.SecretId)[1] as string;
    const appAttachment = attachments[appAttachmentId];
    expect(appAttachment?.TargetType).toBe('AWS::RDS::DBInstance');
    const appSecretId = intrinsic(appAttachment.SecretId)[1] as string;
    const appSecret = secrets[appSecretId];
    const appTemplate = (appSecret.GenerateSecretString as Json).SecretStringTemplate;
    const [masterAttachmentId, masterAttachment] = only(
      Object.entries(attachments).filter(([id]) => id !== appAttachmentId),
      'master secret attachment',
    );
    const masterSecretId = intrinsic(masterAttachment.SecretId)[1] as string;
    const masterSecret = secrets[masterSecretId];
    const [fnId, fn] = only(
      resources(template, 'AWS::Lambda::Function').filter(([, p]) =>
        Object.keys(((p.Environment as Json)?.Variables ?? {}) as Json).includes(ENV.consumers),
      ),
      'rotation function',
    );
    expect(schedule.RotationLambdaARN).toEqual({ 'Fn::GetAtt': [fnId, 'Arn'] });
    const instance = only(resources(template, 'AWS::RDS::DBInstance'), 'database instance')[1];
    const timeoutMs = Number(fn.Timeout) * 1000;

    // Prepare: the function's environment as deployed; only the endpoint and the CA bundle are local
    const deployed = (fn.Environment as Json).Variables as Record<string, unknown>;
    const tokens = Object.keys(deployed).filter((k) => typeof deployed[k] !== 'string');
    expect(tokens).toEqual(['AWS_ENDPOINT_URL_SECRETS_MANAGER']);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(deployed)) if (typeof v === 'string') env[k] = v;
    env[ENV.caBundle] = server.caBundlePath ?? '';
    const config = loadConfig(env);

    // Prepare: the database as the deployment guide leaves it (the application user created by
    // the master), under the names of the example's secret. The names are fixed (no test tag), so
    // no other test file may use them; afterAll drops them again.
    const appFields = JSON.parse(
      evaluate(appTemplate, { [masterAttachmentId]: 'masterarn-placeholder' }),
    ) as Json;
    db = await provisionDatabase(server, {
      dbname: String(appFields.dbname),
      master: `excfg_master_${tag}`,
      app: String(appFields.username),
    });
    const where = {
      engine: instance.Engine,
      host: server.host,
      port: server.port,
      dbInstanceIdentifier: LOCAL_INSTANCE_ID,
    };
    const master = model.createSecret({
      Name: String(masterSecret.Name),
      SecretString: JSON.stringify({ ...where, dbname: db.dbname, ...db.master }),
    });
    const refs: Record<string, string> = {
      [masterSecretId]: master.ARN!,
      [masterAttachmentId]: master.ARN!,
    };
    const app = model.createSecret({
      Name: String(appSecret.Name),
      // What the template generates, plus what the attachment adds (engine, host, port, instance id).
      SecretString: JSON.stringify({
        ...JSON.parse(evaluate(appTemplate, refs)),
        password: db.app.password,
        ...where,
      }),
    });
    const appArn = app.ARN!;
    refs[appSecretId] = appArn;
    refs[appAttachmentId] = appArn;
    // The instance has no read replicas: the revocation guard's member check finds nothing else.
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: LOCAL_INSTANCE_ID }).resolves({
      DBInstances: [
        {
          DBInstanceIdentifier: LOCAL_INSTANCE_ID,
          Engine: String(instance.Engine),
          Endpoint: { Address: server.host, Port: server.port },
          ReadReplicaDBInstanceIdentifiers: [],
        },
      ],
    });

    // Prepare: the function as Lambda runs it, invoked by the Secrets Manager model on schedule
    const handler = createRotationHandler({
      config,
      clock,
      writeMetric: (line) => metricLines.push(line),
    });
    model.registerRotationFunction(LAMBDA_ARN, (event) => {
      const started = clock.now();
      return handler(event, {
        getRemainingTimeInMillis: () => timeoutMs - (clock.now() - started),
      });
    });
    model.configureRotation(appArn, LAMBDA_ARN);
    const client = new SecretsManagerClient({});
    const stageOf = (stage: string) => {
      const found = Object.entries(model.snapshot(appArn)).find(([, v]) =>
        v.stages.includes(stage),
      );
      return found && { versionId: found[0], secret: parseSecret(found[1].value) };
    };

    // Act + Assess: two scheduled rotations, a week apart, nothing done in between
    const original = stageOf(AWSCURRENT)!;
    const users = [original.secret.username];
    for (const rotation of [1, 2]) {
      const before = stageOf(AWSCURRENT)!;
      const started = await client.send(new RotateSecretCommand({ SecretId: appArn }));
      const record = await model.rotationSettled(appArn);
      if (record?.error) errors.push(record.error);
      expect({
        rotation,
        error: record?.error && `${record.error.name}: ${record.error.message}`,
      }).toEqual({
        rotation,
        error: undefined,
      });
      const after = stageOf(AWSCURRENT)!;
      expect({
        rotation,
        current: after.versionId,
        previous: stageOf(AWSPREVIOUS)?.versionId,
        generation: after.secret.generation,
      }).toEqual({
        rotation,
        current: started.VersionId,
        previous: before.versionId,
        generation: rotation,
      });
      expect(after.secret.username).not.toBe(before.secret.username);
      users.push(after.secret.username);
      // The promoted credential logs in as its user.
      const who = await withAdmin(server, db.dbname, after.secret, (c) =>
        c.query<{ u: string }>('SELECT current_user AS u'),
      );
      expect(who.rows[0].u).toBe(after.secret.username);
      clock.advance(WEEK_MS);
    }
    // The alternating users swapped back and forth: app_user, its clone, app_user.
    expect(users).toEqual([
      String(appFields.username),
      `${String(appFields.username)}_clone`,
      String(appFields.username),
    ]);

    // The guard looked for read replicas through the RDS API, as it does on AWS.
    expect(rds.commandCalls(DescribeDBInstancesCommand).length).toBeGreaterThan(0);

    // Assess: no override was needed or set
    const tags = (await client.send(new DescribeSecretCommand({ SecretId: appArn }))).Tags ?? [];
    expect(
      tags.map((t) => t.Key).filter((k) => (OVERRIDE_TAGS as readonly string[]).includes(k ?? '')),
    ).toEqual([]);
    const tagged = sm.commandCalls(TagResourceCommand).flatMap((c) => c.args[0].input.Tags ?? []);
    expect(
      tagged
        .map((t) => t.Key)
        .filter((k) => (OVERRIDE_TAGS as readonly string[]).includes(k ?? '')),
    ).toEqual([]);

    // Assess: the function reported both completions under the name the example's alarms watch
    const completed = metricLines
      .map((l) => JSON.parse(l) as Json)
      .filter((m) => ROTATIONS_COMPLETED in m);
    expect(completed.map((m) => m[DIMENSION_SECRET])).toEqual([appSecret.Name, appSecret.Name]);
    const watched = alarmSecretNames(template, refs);
    expect(watched.length).toBeGreaterThan(0);
    expect([...new Set(watched)]).toEqual([appSecret.Name]);

    expectNoSecretsInOutput(
      [db.master.password, db.app.password, secretPasswords(model, appArn)].flat(),
      errors,
    );
  });
});

/** Every password any version of the secret holds. */
function secretPasswords(model: SecretsManagerModel, arn: string): string[] {
  return Object.values(model.snapshot(arn)).flatMap((v) => {
    try {
      return [String((JSON.parse(v.value ?? '{}') as Json).password ?? '')];
    } catch {
      return [];
    }
  });
}
