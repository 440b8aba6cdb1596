/**
 * What the rotation safety tests ask of the database and the AWS models, in one place: log in as a
 * secret's user, hold a session, count a user's sessions, read its LOGIN flag, build the CLI's
 * clients, and check after every test file that no password leaked.
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { RDSClient } from '@aws-sdk/client-rds';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Client } from 'pg';
import type { CliClients } from '../../cli/clients';
import { CloudWatchModel } from '../../cli/local/cloudwatch-model';
import { installCloudWatchModel } from '../../cli/local/install';
import { installLambdaModel, LambdaModel } from '../../cli/local/lambda-model';
import { runCli } from '../../cli/main';
import { openClient, withClient } from '../../lambda/shared/pg-connection';
import type { DbSecret } from '../../lambda/shared/secret';
import { expectNoSecretsInOutput } from './captured-output';
import { asSuperuser } from './database';
import {
  createRotationHarness,
  type RotationHarness,
  type RotationHarnessOptions,
} from './rotation-harness';

/**
 * The test file's harnesses, created through `create`, and the errors its tests saw; after all its
 * tests, no password of any of them may appear in the output or in those errors.
 *
 * @example
 * const file = leakCheckedHarnesses();
 * const h = await file.create({ prefix: 'emg' });
 */
export function leakCheckedHarnesses() {
  const harnesses: RotationHarness[] = [];
  const errors: unknown[] = [];
  afterAll(() =>
    expectNoSecretsInOutput(
      harnesses.flatMap((h) => h.passwords()),
      errors,
    ),
  );
  return {
    harnesses,
    errors,
    async create(options: RotationHarnessOptions): Promise<RotationHarness> {
      const h = await createRotationHarness(options);
      harnesses.push(h);
      return h;
    },
  };
}

/** The CLI's clients, answered by whatever models the test file installed. */
export function cliClients(): CliClients {
  return {
    sm: new SecretsManagerClient({}),
    cw: new CloudWatchClient({}),
    lambda: new LambdaClient({}),
    rds: new RDSClient({}),
  };
}

/**
 * Opens a session as `s`'s user over TLS (the caller ends it); its idle errors are swallowed, as a
 * consumer's would be.
 *
 * @example
 * const c = await connectAs(h, h.current(), 'holder');
 */
export async function connectAs(
  h: RotationHarness,
  s: DbSecret,
  applicationName: string,
): Promise<Client> {
  const c = await openClient({ host: s.host, port: s.port, dbname: s.dbname, ssl: s.ssl }, s, {
    caBundlePath: h.config.caBundlePath,
    applicationName,
  });
  c.on('error', () => undefined);
  return c;
}

/**
 * Logs in as `s`'s user and returns `session_user`; rejects with the typed error when refused.
 *
 * @example
 * await expect(logIn(h, leaked)).rejects.toBeInstanceOf(AuthenticationFailedError);
 */
export function logIn(h: RotationHarness, s: DbSecret): Promise<string> {
  return withClient(
    { host: s.host, port: s.port, dbname: s.dbname, ssl: s.ssl },
    s,
    { caBundlePath: h.config.caBundlePath },
    async (c) => (await c.query<{ u: string }>('SELECT session_user AS u')).rows[0].u,
  );
}

/** Sessions of `username` in pg_stat_activity (the whole server). */
export function sessionCount(h: RotationHarness, username: string): Promise<number> {
  return asSuperuser(h.db.dbname, async (c) =>
    Number(
      (
        await c.query<{ n: string }>(
          'SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1',
          [username],
        )
      ).rows[0].n,
    ),
  );
}

/** Whether `username` has LOGIN. */
export function canLogin(h: RotationHarness, username: string): Promise<boolean> {
  return asSuperuser(
    h.db.dbname,
    async (c) =>
      (
        await c.query<{ l: boolean }>('SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = $1', [
          username,
        ])
      ).rows[0].l,
  );
}

/** The server's major version. */
export function serverMajor(h: RotationHarness): Promise<number> {
  return asSuperuser(h.db.dbname, async (c) =>
    Math.floor(
      Number(
        (await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]
          .v,
      ) / 10000,
    ),
  );
}

/**
 * Runs the CLI in process (its AWS clients answered by the installed models) and returns its exit
 * code and what it printed.
 *
 * @example
 * const { code, err } = await cli('finish', arn, '--force');
 */
export async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/**
 * The CloudWatch and Lambda models the CLI talks to, installed behind the real SDK clients for
 * this test file and removed after its last test (the Secrets Manager model comes with each
 * rotation harness).
 *
 * @example
 * const { cwModel, lambda } = cliModels();
 */
export function cliModels() {
  const cwModel = new CloudWatchModel();
  const cwStub = installCloudWatchModel(cwModel);
  const lambda = new LambdaModel();
  const lambdaStub = installLambdaModel(lambda);
  afterAll(() => {
    cwStub.restore();
    lambdaStub.restore();
  });
  return { cwModel, cwStub, lambda, lambdaStub };
}
