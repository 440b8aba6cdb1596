import { withAdmin } from '../../../cli/local/postgres';
import { withClient } from '../../../lambda/shared/pg-connection';
import type { DbSecret } from '../../../lambda/shared/secret';
import { expectNoSecretsInOutput } from '../../support/captured-output';
import { asSuperuser, uniqueTag } from '../../support/database';
import { AWSPREVIOUS, createRotationHarness, type RotationHarness } from '../../support/rotation-harness';

function as<T>(h: RotationHarness, s: DbSecret, fn: (q: (sql: string, p?: unknown[]) => Promise<unknown[]>) => Promise<T>): Promise<T> {
  return withClient({ host: s.host, port: s.port, dbname: s.dbname, ssl: s.ssl }, s, { caBundlePath: h.config.caBundlePath }, (c) =>
    fn(async (sql, p) => (await c.query(sql, p)).rows),
  );
}

describe('Rotation: ownerRole (objects usable by both login roles)', () => {
  let h: RotationHarness;
  let owner: string;

  beforeAll(async () => {
    owner = `orders_owner_${uniqueTag()}`;
    h = await createRotationHarness({ prefix: 'own', secretFields: { ownerRole: owner } });
    // The operator's part (README, ownerRole): the owner role holds the schema privileges.
    await withAdmin(h.db.server, h.db.dbname, h.db.master, async (c) => {
      await c.query(`CREATE ROLE ${c.escapeIdentifier(owner)} NOLOGIN`);
      await c.query(`GRANT CREATE, USAGE ON SCHEMA public TO ${c.escapeIdentifier(owner)}`);
    });
  });

  afterAll(() => expectNoSecretsInOutput(h.passwords()));

  it('a table created by the clone is usable by the original user, and the reverse', async () => {
    // Prepare: first rotation creates the clone; both users now log in
    await h.rotate();
    const clone = h.current();
    const original = h.secret(AWSPREVIOUS);
    // Act: each login role creates a table and the other one writes to it
    await as(h, clone, (q) => q("CREATE TABLE made_by_clone (v text); INSERT INTO made_by_clone VALUES ('c')"));
    await as(h, original, (q) => q("CREATE TABLE made_by_original (v text); INSERT INTO made_by_original VALUES ('o')"));
    const seenByOriginal = await as(h, original, async (q) => {
      await q("INSERT INTO made_by_clone VALUES ('o')");
      return q('SELECT v FROM made_by_clone ORDER BY v');
    });
    const seenByClone = await as(h, clone, async (q) => {
      await q("INSERT INTO made_by_original VALUES ('c')");
      return q('SELECT v FROM made_by_original ORDER BY v');
    });
    // Assess
    expect(seenByOriginal).toEqual([{ v: 'c' }, { v: 'o' }]);
    expect(seenByClone).toEqual([{ v: 'c' }, { v: 'o' }]);
    const owners = await asSuperuser(h.db.dbname, async (c) =>
      (await c.query("SELECT tablename, tableowner FROM pg_tables WHERE tablename LIKE 'made_by_%' ORDER BY 1")).rows,
    );
    expect(owners).toEqual([
      { tablename: 'made_by_clone', tableowner: owner },
      { tablename: 'made_by_original', tableowner: owner },
    ]);
  });

  it('the owner role cannot log in and survives the next rotation', async () => {
    // Act
    await h.rotate();
    // Assess
    const row = await asSuperuser(h.db.dbname, async (c) =>
      (await c.query('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [owner])).rows[0],
    );
    expect(row).toEqual({ rolcanlogin: false });
    const still = await as(h, h.current(), (q) => q('SELECT count(*)::int AS n FROM made_by_clone'));
    expect(still).toEqual([{ n: 2 }]);
  });
});

describe('Rotation: per-role settings are copied to the alternate user', () => {
  it('copies search_path (list-valued) exactly', async () => {
    // Prepare
    const h = await createRotationHarness({ prefix: 'set' });
    await asSuperuser(h.db.dbname, (c) =>
      c.query(`ALTER ROLE ${c.escapeIdentifier(h.db.app.username)} SET search_path = app, public`),
    );
    // Act
    await h.rotate();
    // Assess
    const clone = h.current();
    const path = await as(h, clone, (q) => q('SHOW search_path'));
    expect(path).toEqual([{ search_path: 'app, public' }]);
  });
});
