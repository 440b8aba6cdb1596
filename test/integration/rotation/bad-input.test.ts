import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { GetRandomPasswordCommand, PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { wireSecretsManager } from '../../../cli/local/install';
import type { Step } from '../../../lambda/rotation';
import {
  AuthenticationFailedError,
  AwsCallError,
  ConfusedDeputyError,
  DatabaseConnectionError,
  InvalidSecretError,
  MasterSecretError,
  RotationStateError,
  TlsRequiredError,
} from '../../../lambda/shared/errors';
import { expectNoSecretsInOutput } from '../../support/captured-output';
import { asSuperuser, plainServer, rolesLike, tlsServer } from '../../support/database';
import {
  AWSPENDING,
  AWSPREVIOUS,
  createRotationHarness,
  type RotationHarness,
  type RotationHarnessOptions,
} from '../../support/rotation-harness';

const harnesses: RotationHarness[] = [];
const errors: unknown[] = [];

async function harness(
  options: Omit<RotationHarnessOptions, 'prefix'> = {},
): Promise<RotationHarness> {
  const h = await createRotationHarness({ prefix: 'bad', ...options });
  harnesses.push(h);
  return h;
}

async function observable(h: RotationHarness) {
  return {
    versions: h.model.snapshot(h.secretArn),
    roles: [
      ...(await rolesLike(`${h.db.app.username}%`)),
      ...(await rolesLike(h.db.master.username)),
    ],
  };
}

/**
 * Runs `step` (after `before` steps succeeded), expects a typed error, and checks that the secret's
 * versions and the pair's roles are unchanged by the failing step.
 */
async function expectRejected(
  h: RotationHarness,
  step: Step,
  type: new (...args: never[]) => Error,
  message: RegExp,
  options: { before?: Step[]; token?: string } = {},
): Promise<Error> {
  const token = options.token ?? h.begin();
  for (const s of options.before ?? []) await h.step(s, token);
  const before = await observable(h);
  const err = await h.step(step, token).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  errors.push(err);
  expect(err).toBeInstanceOf(type);
  expect(err?.message).toMatch(message);
  expect(await observable(h)).toEqual(before);
  return err!;
}

afterAll(async () => {
  expectNoSecretsInOutput(
    harnesses.flatMap((h) => h.passwords()),
    errors,
  );
});

describe('Rotation: bad input gets a typed error and changes nothing', () => {
  it('malformed secret JSON', async () => {
    const h = await harness({
      rawSecretString: '{"username": "app", "password": "hunter2hunter2",',
    });
    await expectRejected(
      h,
      'createSecret',
      InvalidSecretError,
      /AWSCURRENT secret: SecretString is not valid JSON/,
    );
  });

  it.each(['engine', 'host', 'port', 'username', 'password', 'dbname', 'masterarn'])(
    'required field "%s" missing',
    async (field) => {
      const h = await harness({ secretFields: { [field]: undefined } });
      await expectRejected(
        h,
        'createSecret',
        InvalidSecretError,
        new RegExp(`required field "${field}" is missing`),
      );
    },
  );

  it('wrong engine', async () => {
    const h = await harness({ secretFields: { engine: 'mysql' } });
    await expectRejected(
      h,
      'createSecret',
      InvalidSecretError,
      /field "engine" must be one of postgres, aurora-postgresql/,
    );
  });

  it('username too long for its alternate (PostgreSQL would truncate it silently)', async () => {
    const h = await harness({ appUsername: `long_${'x'.repeat(53)}` }); // 58 bytes; +_clone = 64
    await expectRejected(
      h,
      'createSecret',
      InvalidSecretError,
      /too long for its alternate.*63-byte/,
    );
  });

  it('token that is not a version of the secret', async () => {
    const h = await harness();
    await expectRejected(h, 'createSecret', RotationStateError, /is not a version of secret/, {
      token: randomUUID(),
    });
  });

  it('token without AWSPENDING (the AWSPREVIOUS version)', async () => {
    const h = await harness();
    await h.rotate();
    const previous = Object.entries(h.model.snapshot(h.secretArn)).find(([, v]) =>
      v.stages.includes(AWSPREVIOUS),
    )![0];
    await expectRejected(h, 'setSecret', RotationStateError, /is not staged AWSPENDING/, {
      token: previous,
    });
  });

  it('rotation disabled on the secret', async () => {
    const h = await harness();
    const token = h.begin();
    h.model.configureRotation(h.secretArn, h.lambdaArn, false);
    await expectRejected(h, 'createSecret', RotationStateError, /rotation is not enabled/, {
      token,
    });
  });

  it('an entry-check failure still counts in RotationStepFailures (what the RotationFailed alarm reads)', async () => {
    // Prepare
    const lines: string[] = [];
    const h = await harness({ deps: { writeMetric: (l) => lines.push(l) } });
    const token = h.begin();
    h.model.configureRotation(h.secretArn, h.lambdaArn, false);
    // Act
    await h.step('createSecret', token).catch(() => undefined);
    // Assess
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const name = h.model.describeSecret({ SecretId: h.secretArn }).Name;
    expect(records).toEqual([
      expect.objectContaining({ RotationStepFailures: 1, SecretName: name }),
    ]);
  });

  it('malformed rotation event', async () => {
    const h = await harness();
    const err = await h
      .handler({ Step: 'dropSecret', SecretId: h.secretArn, ClientRequestToken: 't' } as never)
      .catch((e: Error) => e);
    expect(err).toBeInstanceOf(RotationStateError);
    expect((err as Error).message).toMatch(
      /field "Step" must be one of createSecret, setSecret, testSecret, finishSecret/,
    );
  });

  it('master secret missing', async () => {
    const h = await harness({
      secretFields: {
        masterarn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf',
      },
    });
    await expectRejected(
      h,
      'setSecret',
      MasterSecretError,
      /master secret arn:.*gone-AbCdEf was not found/,
      { before: ['createSecret'] },
    );
  });

  it('master secret without a password', async () => {
    const h = await harness({ masterFields: { password: undefined } });
    await expectRejected(
      h,
      'setSecret',
      MasterSecretError,
      /required field "password" is missing/,
      { before: ['createSecret'] },
    );
  });

  it('wrong master password', async () => {
    const h = await harness({ masterFields: { password: 'not-the-master-password' } });
    const err = await expectRejected(
      h,
      'setSecret',
      AuthenticationFailedError,
      /rejected the credential .* as "bad_master_/,
      {
        before: ['createSecret'],
      },
    );
    expect(err.message).not.toContain('not-the-master-password');
  });

  it('database unreachable: fails at the configured connect timeout instead of hanging', async () => {
    // A listener that accepts and never answers: the worst case, a black-holed port.
    const sockets: Socket[] = [];
    const blackhole: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
    const port = (blackhole.address() as { port: number }).port;
    try {
      const h = await harness({
        secretFields: { port },
        env: { CONVERGE_CONNECT_TIMEOUT_MS: '500' },
      });
      await expectRejected(
        h,
        'setSecret',
        DatabaseConnectionError,
        /localhost:\d+\/.* connection timed out/,
        { before: ['createSecret'] },
      );
    } finally {
      sockets.forEach((s) => s.destroy());
      blackhole.close();
    }
  });

  it('server without TLS when verify-full is required: no plaintext fallback', async () => {
    const h = await harness({ secretFields: { port: plainServer().port } });
    await expectRejected(
      h,
      'setSecret',
      TlsRequiredError,
      /does not offer TLS and ssl mode "verify-full" requires it/,
      {
        before: ['createSecret'],
      },
    );
  });

  it('server certificate that the configured CA does not sign', async () => {
    const h = await harness({ env: { CONVERGE_CA_BUNDLE: '' } });
    // With no CA bundle, Node's public trust store cannot verify the local CA.
    expect(h.config.caBundlePath).toBeUndefined();
    await expectRejected(h, 'setSecret', TlsRequiredError, /certificate could not be verified/, {
      before: ['createSecret'],
    });
  });

  it('pending secret for another host (confused deputy)', async () => {
    const h = await harness();
    const token = h.begin();
    await h.step('createSecret', token);
    const pending = JSON.parse(
      h.model.getSecretValue({ SecretId: h.secretArn, VersionStage: AWSPENDING }).SecretString!,
    );
    // Replace the staged value with one that points elsewhere (a new token: versions are immutable).
    const forged = h.begin();
    h.model.putSecretValue({
      SecretId: h.secretArn,
      ClientRequestToken: forged,
      SecretString: JSON.stringify({ ...pending, host: 'other.example' }),
      VersionStages: [AWSPENDING],
    });
    await expectRejected(
      h,
      'setSecret',
      ConfusedDeputyError,
      /field "host" differs from AWSCURRENT/,
      { token: forged },
    );
  });

  it('pending secret with a weaker TLS mode than the current one (confused deputy)', async () => {
    const h = await harness();
    const token = h.begin();
    await h.step('createSecret', token);
    const pending = JSON.parse(
      h.model.getSecretValue({ SecretId: h.secretArn, VersionStage: AWSPENDING }).SecretString!,
    );
    const forged = h.begin();
    h.model.putSecretValue({
      SecretId: h.secretArn,
      ClientRequestToken: forged,
      SecretString: JSON.stringify({ ...pending, ssl: 'require' }),
      VersionStages: [AWSPENDING],
    });
    await expectRejected(
      h,
      'setSecret',
      ConfusedDeputyError,
      /field "ssl" differs from AWSCURRENT/,
      { token: forged },
    );
  });

  it('alternate user that is the master (confused deputy)', async () => {
    const h = await harness();
    const srv = tlsServer();
    // The secret names the master as the explicit alternate: the master's password must not change.
    h.model.putSecretValue({
      SecretId: h.secretArn,
      SecretString: JSON.stringify({
        ...h.current().fields,
        alternateUsername: h.db.master.username,
      }),
    });
    await expectRejected(h, 'setSecret', ConfusedDeputyError, /is the master user/, {
      before: ['createSecret'],
    });
    expect(srv.port).toBeGreaterThan(0);
  });

  it('alternate user with more privileges than the current one (confused deputy)', async () => {
    const h = await harness();
    const powerful = `${h.db.app.username}_clone`;
    await asSuperuser('postgres', (c) =>
      c.query(`CREATE ROLE ${c.escapeIdentifier(powerful)} LOGIN CREATEDB`),
    );
    await expectRejected(
      h,
      'setSecret',
      ConfusedDeputyError,
      /has rolcreatedb which the current user lacks/,
      { before: ['createSecret'] },
    );
  });

  it('throttled GetRandomPassword', async () => {
    const h = await harness();
    const throttled = Object.assign(new Error('Rate exceeded'), {
      name: 'ThrottlingException',
      $metadata: { httpStatusCode: 400 },
    });
    h.sm.on(GetRandomPasswordCommand).rejects(throttled);
    try {
      await expectRejected(
        h,
        'createSecret',
        AwsCallError,
        /GetRandomPassword failed: ThrottlingException \(HTTP 400\)/,
      );
    } finally {
      wireSecretsManager(h.sm, h.model);
    }
  });

  it('PutSecretValue failing with a 5xx', async () => {
    const h = await harness();
    const failure = Object.assign(new Error('We encountered an internal error.'), {
      name: 'InternalServiceError',
      $metadata: { httpStatusCode: 500 },
    });
    h.sm.on(PutSecretValueCommand).rejects(failure);
    try {
      await expectRejected(
        h,
        'createSecret',
        AwsCallError,
        /PutSecretValue failed: InternalServiceError \(HTTP 500\)/,
      );
    } finally {
      wireSecretsManager(h.sm, h.model);
    }
  });
});

describe('Rotation: hostile usernames are quoted, never interpreted', () => {
  it.each([[`o"r'd; DROP TABLE items; --`], ['with space'], ['Ünïcødé-Üser']])(
    'rotates %p three times',
    async (name) => {
      // Prepare
      const h = await harness({ appUsername: name });
      // Act
      for (let i = 0; i < 3; i++) await h.rotate();
      // Assess: exactly the pair exists, the table survived, and the names are byte-exact
      const roles = await asSuperuser(h.db.dbname, async (c) =>
        (
          await c.query<{ rolname: string }>(
            'SELECT rolname FROM pg_roles WHERE rolname IN ($1, $2) ORDER BY 1',
            [name, `${name}_clone`],
          )
        ).rows.map((r) => r.rolname),
      );
      expect(roles.sort()).toEqual([name, `${name}_clone`].sort());
      const items = await asSuperuser(
        h.db.dbname,
        async (c) => (await c.query("SELECT to_regclass('public.items') AS t")).rows[0].t,
      );
      expect(items).toBe('items');
      expect(h.current().username).toBe(`${name}_clone`);
    },
  );
});
