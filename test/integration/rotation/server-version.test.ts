import {
  withAdmin,
  type LocalPostgres,
  type ProvisionedDatabase,
} from '../../../cli/local/postgres';
import {
  freshDatabase,
  plainServer,
  projectMajor,
  tlsServer,
  uniqueTag,
} from '../../support/database';

/** The major this file's jest project claims, straight from its config (`globals`, see jest.config.js). */
function claimedMajor(): number {
  const claimed = (globalThis as { __CONVERGE_PG_MAJOR__?: unknown }).__CONVERGE_PG_MAJOR__;
  if (claimed === undefined)
    throw new Error('this jest project sets no globals.__CONVERGE_PG_MAJOR__ (see jest.config.js)');
  return Number(claimed);
}

async function reportedMajor(srv: LocalPostgres): Promise<{ major: number; version: string }> {
  return withAdmin(srv, 'postgres', srv.superuser, async (c) => {
    const r = await c.query<{ num: string; version: string }>(
      "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version",
    );
    return { major: Math.floor(Number(r.rows[0].num) / 10000), version: r.rows[0].version };
  });
}

/** The SQLSTATE of what `sql` raises as the master, or 'ok'. */
async function asMaster(
  db: ProvisionedDatabase & { server: LocalPostgres },
  sql: string,
): Promise<string> {
  return withAdmin(db.server, db.dbname, db.master, async (c) => {
    try {
      await c.query(sql);
      return 'ok';
    } catch (err) {
      return (err as { code?: string }).code ?? String(err);
    }
  });
}

/** Whether the master holds ADMIN OPTION on the application role (pg_auth_members, any grantor). */
async function masterAdminsApp(
  db: ProvisionedDatabase & { server: LocalPostgres },
): Promise<boolean> {
  return withAdmin(db.server, db.dbname, db.server.superuser, async (c) => {
    const r = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_auth_members m
         JOIN pg_roles granted ON granted.oid = m.roleid
         JOIN pg_roles member ON member.oid = m.member
        WHERE granted.rolname = $1 AND member.rolname = $2 AND m.admin_option`,
      [db.app.username, db.master.username],
    );
    return r.rows[0].n > 0;
  });
}

describe('Test fixture: the PostgreSQL major of this jest project', () => {
  it('the shared TLS server is the major the project claims', async () => {
    // Prepare
    const claimed = claimedMajor();
    // Act
    const reported = await reportedMajor(tlsServer());
    // Assess: a fixture that silently ran 18 everywhere fails here on pg14-pg17
    expect(reported.major).toBe(claimed);
    expect(projectMajor()).toBe(claimed);
    expect(tlsServer().major).toBe(claimed);
    expect(tlsServer().version).toBe(reported.version);
  });

  it('the shared plain server is the same major', async () => {
    const reported = await reportedMajor(plainServer());
    expect(reported.major).toBe(claimedMajor());
  });
});

describe('Function: provisionDatabase (appCreatedBy), the CREATEROLE rules rotation runs under', () => {
  const pg16Rules = () => claimedMajor() >= 16;

  it('appCreatedBy master: the master may grant the application role and change its password on every major', async () => {
    // Prepare
    const db = await freshDatabase('pvm');
    const probe = `pvm_probe_${uniqueTag()}`;
    // Act
    const created = await asMaster(db, `CREATE ROLE ${probe} NOLOGIN`);
    const granted = await asMaster(db, `GRANT ${db.app.username} TO ${probe}`);
    const altered = await asMaster(
      db,
      `ALTER ROLE ${db.app.username} PASSWORD 'pw-rotated-by-master-1'`,
    );
    // Assess: from 16 on the creator holds ADMIN OPTION; on 14 and 15 CREATEROLE alone suffices
    expect({ created, granted, altered }).toEqual({ created: 'ok', granted: 'ok', altered: 'ok' });
    expect(await masterAdminsApp(db)).toBe(pg16Rules());
  });

  it('appCreatedBy superuser: the master lacks ADMIN OPTION; from 16 on it may neither grant the role nor change its password (42501)', async () => {
    // Prepare
    const db = await freshDatabase('pvs', { appCreatedBy: 'superuser' });
    const probe = `pvs_probe_${uniqueTag()}`;
    // Act
    const created = await asMaster(db, `CREATE ROLE ${probe} NOLOGIN`);
    const granted = await asMaster(db, `GRANT ${db.app.username} TO ${probe}`);
    const altered = await asMaster(
      db,
      `ALTER ROLE ${db.app.username} PASSWORD 'pw-rotated-by-master-2'`,
    );
    // Assess
    expect(await masterAdminsApp(db)).toBe(false);
    expect(created).toBe('ok');
    if (pg16Rules()) {
      expect({ granted, altered }).toEqual({ granted: '42501', altered: '42501' });
    } else {
      expect({ granted, altered }).toEqual({ granted: 'ok', altered: 'ok' });
    }
  });

  it('appCreatedBy superuser: the application role still logs in and owns its table', async () => {
    const db = await freshDatabase('pvo', { appCreatedBy: 'superuser' });
    const owner = await withAdmin(db.server, db.dbname, db.app, async (c) => {
      const r = await c.query<{ owner: string; n: number }>(
        "SELECT tableowner AS owner, (SELECT count(*)::int FROM items) AS n FROM pg_tables WHERE tablename = 'items'",
      );
      return r.rows[0];
    });
    expect(owner).toEqual({ owner: db.app.username, n: 1 });
  });

  it('rejects an unknown appCreatedBy', async () => {
    await expect(freshDatabase('pvx', { appCreatedBy: 'nobody' as 'master' })).rejects.toThrow(
      /appCreatedBy must be/,
    );
  });
});
