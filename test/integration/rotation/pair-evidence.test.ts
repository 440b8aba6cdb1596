/**
 * An existing `<user>_clone` is taken over only with evidence that it is converge's pair of the
 * current user; and a master that PostgreSQL 16's CREATEROLE rules leave without ADMIN OPTION on the
 * application user gets a typed error with the GRANT to run, changing nothing.
 */
import { withAdmin } from '../../../cli/local/postgres';
import { PAIR_MARKER_PREFIX } from '../../../lambda/rotation/roles';
import { ConfusedDeputyError, MasterPrivilegeError } from '../../../lambda/shared/errors';
import { asSuperuser, roleComment, rolesLike } from '../../support/database';
import { leakCheckedHarnesses, serverMajor } from '../../support/probes';
import type { RotationHarnessOptions } from '../../support/rotation-harness';

describe('Pair evidence: an existing alternate role is taken over only when it is provably the pair', () => {
  const file = leakCheckedHarnesses();
  const errors = file.errors;

  const harness = (prefix: string, options: Partial<RotationHarnessOptions> = {}) =>
    file.create({ prefix, ...options });

  it('refuses an unrelated existing <user>_clone, leaving its password and everything else unchanged', async () => {
    // Prepare: someone else's role happens to have the name
    const h = await harness('pairx');
    const clone = `${h.db.app.username}_clone`;
    await asSuperuser(h.db.dbname, (c) =>
      c.query(`CREATE ROLE ${c.escapeIdentifier(clone)} LOGIN PASSWORD 'someone-elses-password-1'`),
    );
    const before = await rolesLike(`${h.db.app.username}%`);
    // Act
    const err = await h.rotate().catch((e: unknown) => e);
    errors.push(err);
    // Assess
    expect(err).toBeInstanceOf(ConfusedDeputyError);
    expect((err as Error).message).toContain(
      `role "${clone}" exists but nothing shows it is the alternate of "${h.db.app.username}"`,
    );
    expect(await rolesLike(`${h.db.app.username}%`)).toEqual(before);
  });

  it('refuses it even when the application user granted itself to it (possible before PostgreSQL 16)', async () => {
    // Prepare
    const h = await harness('pairself');
    const clone = `${h.db.app.username}_clone`;
    await asSuperuser(h.db.dbname, (c) =>
      c.query(`CREATE ROLE ${c.escapeIdentifier(clone)} LOGIN PASSWORD 'someone-elses-password-2'`),
    );
    await withAdmin(h.db.server, h.db.dbname, h.db.app, (c) =>
      c
        .query(`GRANT ${c.escapeIdentifier(h.db.app.username)} TO ${c.escapeIdentifier(clone)}`)
        .catch(() => undefined),
    );
    const before = await rolesLike(`${h.db.app.username}%`);
    // Act
    const err = await h.rotate().catch((e: unknown) => e);
    errors.push(err);
    // Assess
    expect(err).toBeInstanceOf(ConfusedDeputyError);
    expect(await rolesLike(`${h.db.app.username}%`)).toEqual(before);
  });

  it('takes over an explicitly named pair the operator created (alternateUsername), and marks it', async () => {
    // Prepare
    const h = await harness('pairexp', { secretFields: {} });
    const blue = h.db.app.username;
    const green = `${blue}_green`;
    await withAdmin(h.db.server, h.db.dbname, h.db.master, async (c) => {
      await c.query(
        `CREATE ROLE ${c.escapeIdentifier(green)} LOGIN PASSWORD 'operator-made-password-3'`,
      );
      await c.query(`GRANT ${c.escapeIdentifier(blue)} TO ${c.escapeIdentifier(green)}`);
    });
    h.model.putSecretValue({
      SecretId: h.secretArn,
      SecretString: JSON.stringify({ ...h.current().fields, alternateUsername: green }),
      VersionStages: ['AWSCURRENT'],
    });
    // Act
    await h.rotate();
    // Assess
    expect(h.current().username).toBe(green);
    expect(await roleComment(h.db.dbname, green)).toBe(`${PAIR_MARKER_PREFIX}"${blue}"`);
  });

  it('refuses an explicitly named pair when the current user can administer the alternate (ADMIN OPTION), changing nothing', async () => {
    // Prepare: the operator names the pair, but the application user holds ADMIN OPTION on it, so it
    // could change that role's password or memberships behind converge's back
    const h = await harness('pairadm', { secretFields: {} });
    const blue = h.db.app.username;
    const green = `${blue}_green`;
    await withAdmin(h.db.server, h.db.dbname, h.db.master, (c) =>
      c.query(`CREATE ROLE ${c.escapeIdentifier(green)} LOGIN PASSWORD 'operator-made-password-4'`),
    );
    await asSuperuser(h.db.dbname, (c) =>
      c.query(
        `GRANT ${c.escapeIdentifier(green)} TO ${c.escapeIdentifier(blue)} WITH ADMIN OPTION`,
      ),
    );
    h.model.putSecretValue({
      SecretId: h.secretArn,
      SecretString: JSON.stringify({ ...h.current().fields, alternateUsername: green }),
      VersionStages: ['AWSCURRENT'],
    });
    const before = await rolesLike(`${blue}%`);
    // Act
    const err = await h.rotate().catch((e: unknown) => e);
    errors.push(err);
    // Assess
    expect(err).toBeInstanceOf(ConfusedDeputyError);
    expect((err as Error).message).toContain(`role "${blue}" can administer "${green}"`);
    expect(await rolesLike(`${blue}%`)).toEqual(before);
    expect(h.current().username).toBe(blue);
  });

  it('marks the alternate user it creates, and on the next rotation takes over the original user on that evidence', async () => {
    // Prepare
    const h = await harness('pairmark');
    await h.rotate();
    // Assess: the clone names its pair
    expect(await roleComment(h.db.dbname, `${h.db.app.username}_clone`)).toBe(
      `${PAIR_MARKER_PREFIX}"${h.db.app.username}"`,
    );
    // Act
    await h.rotate();
    // Assess
    expect(h.current()).toMatchObject({ username: h.db.app.username, generation: 2 });
  });
});

describe('Master privileges: an application user the master did not create (PostgreSQL 16 CREATEROLE rules)', () => {
  const file = leakCheckedHarnesses();
  const errors = file.errors;

  it('on 16 and later refuses with the GRANT to run and changes nothing; after the grant (and on 14/15 at once) rotations work', async () => {
    // Prepare
    const h = await file.create({ prefix: 'mpriv', appCreatedBy: 'superuser' });
    const major = await serverMajor(h);
    const before = await rolesLike(`${h.db.app.username}%`);
    // Act
    const first = await h.rotate().then(
      () => undefined,
      (e: unknown) => e,
    );
    errors.push(first);
    // Assess
    if (major >= 16) {
      expect(first).toBeInstanceOf(MasterPrivilegeError);
      expect((first as Error).message).toContain(
        `GRANT "${h.db.app.username}" TO <master user> WITH ADMIN OPTION`,
      );
      expect(await rolesLike(`${h.db.app.username}%`)).toEqual(before);
      // Act: a superuser runs the GRANT the error names; the rotation is retried
      await asSuperuser(h.db.dbname, (c) =>
        c.query(
          `GRANT ${c.escapeIdentifier(h.db.app.username)} TO ${c.escapeIdentifier(h.db.master.username)} WITH ADMIN OPTION`,
        ),
      );
      await h.retry();
    } else {
      expect(first).toBeUndefined();
    }
    // Act: the next rotation changes the original user's password
    await h.rotate();
    // Assess
    expect(h.current()).toMatchObject({ username: h.db.app.username, generation: 2 });
  });
});
