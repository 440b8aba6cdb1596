/**
 * Taking over from AWS's hosted multi-user rotation function for PostgreSQL
 * (SecretsManagerRDSPostgreSQLRotationMultiUser, what aws-cdk-lib's `addRotationMultiUser` and
 * `HostedRotation.postgreSqlMultiUser` deploy), and handing back to it (docs/migrating.md).
 *
 * {@link hostedRotation} plays that function in these tests by its published behaviour: the secret
 * holds `engine`, `host`, `port`, `username`, `password`, `dbname` and `masterarn`; the alternate user
 * is `<username>_clone` (or the name without `_clone`); as the master it creates a missing alternate
 * with `CREATE ROLE <alternate> WITH LOGIN PASSWORD …` and `GRANT <current> TO <alternate>`, and later
 * only changes the alternate's password. It is not converge code: it keeps no marker, generation or tag.
 */
import {
  DescribeSecretCommand,
  GetRandomPasswordCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import type { Client } from 'pg';
import { withAdmin } from '../../../cli/local/postgres';
import type { RotationFunction } from '../../../cli/local/secrets-manager-model';
import { PAIR_MARKER_PREFIX } from '../../../lambda/rotation/roles';
import {
  AuthenticationFailedError,
  ConfusedDeputyError,
  MasterPrivilegeError,
} from '../../../lambda/shared/errors';
import type { DbSecret } from '../../../lambda/shared/secret';
import { asSuperuser, roleComment, rolesLike } from '../../support/database';
import { leakCheckedHarnesses, logIn, serverMajor } from '../../support/probes';
import { AWSCURRENT, AWSPREVIOUS, type RotationHarness } from '../../support/rotation-harness';

/** The fields the hosted function's secret holds (the harness writes exactly these). */
const HOSTED_FIELDS = ['dbname', 'engine', 'host', 'masterarn', 'password', 'port', 'username'];

type Dict = Record<string, unknown>;
type Credential = { username: string; password: string };

/**
 * A rotation function that behaves as AWS's hosted PostgreSQL multi-user function does, against the
 * harness's database and Secrets Manager model. `master` replaces the credentials read from
 * `masterarn` (a self-managed server where that function ran as a superuser).
 */
function hostedRotation(h: RotationHarness, master?: Credential): RotationFunction {
  const sm = new SecretsManagerClient({});
  const read = async (stage: string, token?: string, id = h.secretArn): Promise<Dict> => {
    const out = await sm.send(
      new GetSecretValueCommand({ SecretId: id, VersionStage: stage, VersionId: token }),
    );
    return hostedContract(JSON.parse(out.SecretString ?? ''));
  };
  const connect = <T>(dict: Dict, who: Credential, fn: (c: Client) => Promise<T>) =>
    withAdmin(
      { ...h.db.server, host: String(dict.host), port: hostedPort(dict) },
      String(dict.dbname ?? 'postgres'),
      who,
      fn,
    );
  const logsIn = (dict: Dict) =>
    connect(dict, credentialOf(dict), (c) => c.query('SELECT now()')).then(
      () => true,
      () => false,
    );
  return async ({ Step, ClientRequestToken: token }) => {
    const described = await sm.send(new DescribeSecretCommand({ SecretId: h.secretArn }));
    const stages = described.VersionIdsToStages?.[token] ?? [];
    if (stages.includes(AWSCURRENT)) return;
    if (!stages.includes('AWSPENDING')) throw new Error(`version ${token} is not AWSPENDING`);
    const current = await read(AWSCURRENT);
    if (Step === 'createSecret') {
      try {
        await read('AWSPENDING', token);
      } catch (err) {
        if (!(err instanceof ResourceNotFoundException)) throw err;
        const { RandomPassword } = await sm.send(
          new GetRandomPasswordCommand({ ExcludeCharacters: ':/@"\'\\', PasswordLength: 32 }),
        );
        const next = { ...current, username: toggled(current.username), password: RandomPassword };
        await sm.send(
          new PutSecretValueCommand({
            SecretId: h.secretArn,
            ClientRequestToken: token,
            SecretString: JSON.stringify(next),
            VersionStages: ['AWSPENDING'],
          }),
        );
      }
    } else if (Step === 'setSecret') {
      const pending = await read('AWSPENDING', token);
      if (await logsIn(pending)) return;
      if (pending.username !== toggled(current.username) || pending.host !== current.host) {
        throw new Error('the pending secret is not the alternate of the current one');
      }
      if (!(await logsIn(current))) throw new Error('the current credential does not log in');
      const masterDict = await read(AWSCURRENT, undefined, String(current.masterarn));
      await connect(
        { ...masterDict, dbname: current.dbname },
        master ?? credentialOf(masterDict),
        async (c) => {
          const alt = c.escapeIdentifier(String(pending.username));
          const password = c.escapeLiteral(String(pending.password));
          await c.query('BEGIN');
          const exists = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [
            pending.username,
          ]);
          if (exists.rowCount === 0) {
            await c.query(`CREATE ROLE ${alt} WITH LOGIN PASSWORD ${password}`);
            await c.query(`GRANT ${c.escapeIdentifier(String(current.username))} TO ${alt}`);
          } else {
            await c.query(`ALTER USER ${alt} WITH PASSWORD ${password}`);
          }
          await c.query('COMMIT');
        },
      );
    } else if (Step === 'testSecret') {
      if (!(await logsIn(await read('AWSPENDING', token)))) {
        throw new Error('the pending credential does not log in');
      }
    } else {
      const from = Object.entries(described.VersionIdsToStages ?? {}).find(([, s]) =>
        s.includes(AWSCURRENT),
      )?.[0];
      await sm.send(
        new UpdateSecretVersionStageCommand({
          SecretId: h.secretArn,
          VersionStage: AWSCURRENT,
          MoveToVersionId: token,
          RemoveFromVersionId: from,
        }),
      );
    }
  };
}

/** What the hosted function requires of a secret it reads; throws naming the field. */
function hostedContract(dict: Dict): Dict {
  for (const field of ['host', 'username', 'password', 'engine']) {
    if (!(field in dict)) throw new Error(`${field} key is missing from secret JSON`);
  }
  if (!['postgres', 'aurora-postgresql'].includes(String(dict.engine))) {
    throw new Error('engine must be postgres or aurora-postgresql');
  }
  hostedPort(dict);
  return dict;
}

/** The port as the hosted function reads it: an integer or a string of digits, 5432 when absent. */
function hostedPort(dict: Dict): number {
  if (dict.port === undefined) return 5432;
  const port =
    typeof dict.port === 'string' && /^\d+$/.test(dict.port) ? Number(dict.port) : dict.port;
  if (typeof port !== 'number' || !Number.isInteger(port))
    throw new Error('port is not an integer');
  return port;
}

function credentialOf(dict: Dict): Credential {
  return { username: String(dict.username), password: String(dict.password) };
}

function toggled(username: unknown): string {
  const name = String(username);
  return name.endsWith('_clone') ? name.slice(0, -'_clone'.length) : `${name}_clone`;
}

/** Points the secret's rotation at the hosted function (registered once per harness). */
function useHosted(h: RotationHarness, master?: Credential): void {
  const arn = `${h.lambdaArn}-hosted`;
  h.model.registerRotationFunction(arn, hostedRotation(h, master));
  h.model.configureRotation(h.secretArn, arn);
}

/** Points the secret's rotation at converge's function. */
function useConverge(h: RotationHarness): void {
  h.model.configureRotation(h.secretArn, h.lambdaArn);
}

function rawCurrent(h: RotationHarness): Dict {
  return JSON.parse(
    h.model.getSecretValue({ SecretId: h.secretArn, VersionStage: AWSCURRENT }).SecretString ?? '',
  ) as Dict;
}

/** What the application does with a credential: insert, update and count rows of its table. */
async function readsAndWrites(h: RotationHarness, s: DbSecret, note: string): Promise<number> {
  return withAdmin({ ...h.db.server, host: s.host, port: s.port }, s.dbname, s, async (c) => {
    await c.query('INSERT INTO items (note) VALUES ($1)', [note]);
    await c.query("UPDATE items SET note = note || '!' WHERE note = $1", [note]);
    return Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM items')).rows[0].n);
  });
}

/**
 * Everything that decides what the pair of roles may do: their attributes and settings, every
 * membership either takes part in, and the grants on the table, the schema and the database.
 */
async function authority(h: RotationHarness, roles: string[]) {
  return asSuperuser(h.db.dbname, async (c) => ({
    attributes: (
      await c.query(
        `SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
                rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil, rolconfig
           FROM pg_roles WHERE rolname = ANY($1::text[]) ORDER BY rolname`,
        [roles],
      )
    ).rows,
    memberships: (
      await c.query(
        `SELECT r.rolname AS role, m.rolname AS member, a.admin_option
           FROM pg_auth_members a
           JOIN pg_roles r ON r.oid = a.roleid
           JOIN pg_roles m ON m.oid = a.member
          WHERE r.rolname = ANY($1::text[]) OR m.rolname = ANY($1::text[])
          ORDER BY 1, 2, 3`,
        [roles],
      )
    ).rows,
    grants: (
      await c.query(
        `SELECT (SELECT relacl::text FROM pg_class WHERE oid = 'public.items'::regclass) AS items,
                (SELECT nspacl::text FROM pg_namespace WHERE nspname = 'public') AS schema,
                (SELECT datacl::text FROM pg_database WHERE datname = current_database()) AS database`,
      )
    ).rows[0],
  }));
}

describe('Migration from the hosted multi-user rotation: converge takes over the <user>_clone the AWS function created', () => {
  const file = leakCheckedHarnesses();
  const errors = file.errors;

  it.each([
    { hostedRotations: 1, currentIs: 'the clone' },
    { hostedRotations: 2, currentIs: 'the original user' },
  ])(
    'after $hostedRotations hosted rotation(s) (AWSCURRENT is $currentIs) converge rotates both ways: users alternate, both credentials work, nothing gains privileges, the AWS fields stay',
    async ({ hostedRotations }) => {
      // Prepare: the hosted function rotates the secret (it creates the clone as the master)
      const h = await file.create({ prefix: `mig${hostedRotations}` });
      const base = h.db.app.username;
      const clone = `${base}_clone`;
      useHosted(h);
      for (let i = 0; i < hostedRotations; i++) await h.rotate();
      expect(h.current().username).toBe(hostedRotations % 2 === 1 ? clone : base);
      expect(Object.keys(rawCurrent(h)).sort()).toEqual(HOSTED_FIELDS);
      const hostedSecret = rawCurrent(h);
      const before = await authority(h, [base, clone]);
      let rows = await readsAndWrites(h, h.current(), 'hosted');
      useConverge(h);
      for (let generation = 1; generation <= 2; generation++) {
        const was = h.current();
        const overwritten = h.secret(AWSPREVIOUS);
        // Act
        await h.rotate();
        // Assess: the other user, the next generation; the previous credential still works, the
        // password it replaced does not
        const now = h.current();
        expect(now.username).toBe(was.username === base ? clone : base);
        expect(now.generation).toBe(generation);
        expect(h.secret(AWSPREVIOUS)).toMatchObject({
          username: was.username,
          password: was.password,
        });
        expect(overwritten.username).toBe(now.username);
        await expect(logIn(h, overwritten)).rejects.toBeInstanceOf(AuthenticationFailedError);
        expect(await logIn(h, now)).toBe(now.username);
        expect(await logIn(h, was)).toBe(was.username);
        expect(await readsAndWrites(h, now, `converge-${generation}`)).toBe(rows + 1);
        expect(await readsAndWrites(h, was, `previous-${generation}`)).toBe(rows + 2);
        rows += 2;
        // the AWS fields are kept as they were; converge adds only `generation`
        expect(rawCurrent(h)).toEqual({
          ...hostedSecret,
          username: now.username,
          password: now.password,
          generation,
        });
      }
      // Assess: no attribute, membership or grant changed; the clone is still just a member of
      // the original user with the same attributes; only converge's markers were added
      expect(await authority(h, [base, clone])).toEqual(before);
      const [baseRole, cloneRole] = before.attributes as Dict[];
      expect({ ...cloneRole, rolname: base }).toEqual(baseRole);
      expect(before.memberships.filter((m) => m.member === clone)).toEqual([
        { role: base, member: clone, admin_option: false },
      ]);
      expect(await roleComment(h.db.dbname, base)).toBe(`${PAIR_MARKER_PREFIX}"${clone}"`);
      expect(await roleComment(h.db.dbname, clone)).toBe(`${PAIR_MARKER_PREFIX}"${base}"`);
    },
  );

  it('accepts a clone a superuser created (grantor: the bootstrap superuser); on 16 and later the master then needs ADMIN OPTION on it, and the error names the GRANT', async () => {
    // Prepare: a self-managed server where the hosted function's master was a superuser
    const h = await file.create({ prefix: 'migsu' });
    const base = h.db.app.username;
    const clone = `${base}_clone`;
    useHosted(h, h.db.server.superuser);
    await h.rotate();
    useConverge(h);
    // Act: back to the original user (the master created it: it may change it on every major)
    await h.rotate();
    expect(h.current()).toMatchObject({ username: base, generation: 1 });
    // Act: to the clone the superuser created
    const second = await h.rotate().then(
      () => undefined,
      (e: unknown) => e,
    );
    errors.push(second);
    // Assess
    if ((await serverMajor(h)) >= 16) {
      expect(second).toBeInstanceOf(MasterPrivilegeError);
      expect((second as Error).message).toContain(
        `GRANT "${clone}" TO <master user> WITH ADMIN OPTION`,
      );
      await asSuperuser(h.db.dbname, (c) =>
        c.query(
          `GRANT ${c.escapeIdentifier(clone)} TO ${c.escapeIdentifier(h.db.master.username)} WITH ADMIN OPTION`,
        ),
      );
      await h.retry();
    } else {
      expect(second).toBeUndefined();
    }
    expect(h.current()).toMatchObject({ username: clone, generation: 2 });
    expect(await logIn(h, h.current())).toBe(clone);
  });
});

describe('Rollback to the hosted multi-user rotation after converge rotated', () => {
  const file = leakCheckedHarnesses();

  it('leaves a secret the hosted function accepts; its next rotation works, and converge takes over again after it', async () => {
    // Prepare: hosted rotation, then converge
    const h = await file.create({ prefix: 'migback' });
    const base = h.db.app.username;
    const clone = `${base}_clone`;
    useHosted(h);
    await h.rotate();
    useConverge(h);
    await h.rotate();
    // Assess: the hosted function's fields, with the types it expects; converge's one addition
    const raw = rawCurrent(h);
    expect(raw).toEqual({
      engine: 'postgres',
      host: 'localhost',
      port: h.db.server.port,
      username: base,
      password: expect.any(String),
      dbname: h.db.dbname,
      masterarn: h.masterArn,
      generation: 1,
    });
    expect(() => hostedContract(raw)).not.toThrow();
    // what else converge left: tags of non-secret records on the secret, markers on the roles
    const tags = h.model.describeSecret({ SecretId: h.secretArn }).Tags ?? [];
    expect(tags.every((t) => t.Key?.startsWith('converge:'))).toBe(true);
    expect(tags.map((t) => t.Key)).toContain('converge:generation');
    expect(await roleComment(h.db.dbname, base)).toBe(`${PAIR_MARKER_PREFIX}"${clone}"`);
    // Act: roll back
    useHosted(h);
    await h.rotate();
    // Assess: the hosted function rotated to the clone, carrying converge's fields unchanged
    const rolledBack = h.current();
    expect(rolledBack).toMatchObject({ username: clone, generation: 1 });
    expect(await logIn(h, rolledBack)).toBe(clone);
    expect(await logIn(h, h.secret(AWSPREVIOUS))).toBe(base);
    expect(await readsAndWrites(h, rolledBack, 'rolled-back')).toBeGreaterThan(1);
    // Act: and forward again
    useConverge(h);
    await h.rotate();
    // Assess
    expect(h.current()).toMatchObject({ username: base, generation: 2 });
    expect(await logIn(h, h.current())).toBe(base);
  });
});

describe('Migration attacks: a <user>_clone is not taken over on its name alone', () => {
  const file = leakCheckedHarnesses();
  const errors = file.errors;

  // A clone someone else created, or one the application user granted itself to, is refused in
  // pair-evidence.test.ts; these are the cases specific to a migration.

  it('refuses a clone the application user created itself, with the membership it could grant (a CREATEROLE application user)', async () => {
    // Prepare
    const h = await file.create({ prefix: 'migown' });
    const base = h.db.app.username;
    const clone = `${base}_clone`;
    await asSuperuser(h.db.dbname, (c) =>
      c.query(`ALTER ROLE ${c.escapeIdentifier(base)} CREATEROLE`),
    );
    await withAdmin(h.db.server, h.db.dbname, h.db.app, async (c) => {
      await c.query(
        `CREATE ROLE ${c.escapeIdentifier(clone)} WITH LOGIN PASSWORD 'tenant-made-password-1'`,
      );
      // before 16 a role may grant itself; from 16 on it may grant only the role it created
      await c
        .query(`GRANT ${c.escapeIdentifier(base)} TO ${c.escapeIdentifier(clone)}`)
        .catch(() => c.query(`GRANT ${c.escapeIdentifier(clone)} TO ${c.escapeIdentifier(base)}`));
    });
    const before = await rolesLike(`${base}%`);
    // Act
    const err = await h.rotate().catch((e: unknown) => e);
    errors.push(err);
    // Assess: from 16 on PostgreSQL made the application user an ADMIN of the role it created
    // (recorded as granted by the bootstrap superuser); before 16 its own grant is no evidence
    expect(err).toBeInstanceOf(ConfusedDeputyError);
    expect((err as Error).message).toContain(
      (await serverMajor(h)) >= 16
        ? `role "${base}" can administer "${clone}"`
        : `role "${clone}" exists but nothing shows it is the alternate of "${base}"`,
    );
    expect(await rolesLike(`${base}%`)).toEqual(before);
    expect(h.current()).toMatchObject({ username: base, generation: 0 });
  });

  it('refuses a clone made as the hosted function does (a member of the current user) that has CREATEDB the current user lacks', async () => {
    // Prepare
    const h = await file.create({ prefix: 'migcdb' });
    const base = h.db.app.username;
    const clone = `${base}_clone`;
    useHosted(h);
    await h.rotate();
    await h.rotate();
    await asSuperuser(h.db.dbname, (c) =>
      c.query(`ALTER ROLE ${c.escapeIdentifier(clone)} CREATEDB`),
    );
    useConverge(h);
    const before = await rolesLike(`${base}%`);
    // Act
    const err = await h.rotate().catch((e: unknown) => e);
    errors.push(err);
    // Assess
    expect(err).toBeInstanceOf(ConfusedDeputyError);
    expect((err as Error).message).toContain(
      `alternate user "${clone}" has rolcreatedb which the current user lacks`,
    );
    expect(await rolesLike(`${base}%`)).toEqual(before);
    expect(h.current()).toMatchObject({ username: base, generation: 0 });
  });
});
