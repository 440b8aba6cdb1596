import { openClient } from '../../../lambda/shared/pg-connection';
import type { DbSecret } from '../../../lambda/shared/secret';
import { expectNoSecretsInOutput } from '../../support/captured-output';
import {
  AWSPREVIOUS,
  createRotationHarness,
  type RotationHarness,
} from '../../support/rotation-harness';

async function canLogIn(h: RotationHarness, s: DbSecret): Promise<string> {
  const c = await openClient({ host: s.host, port: s.port, dbname: s.dbname, ssl: s.ssl }, s, {
    caBundlePath: h.config.caBundlePath,
  });
  try {
    return (await c.query<{ u: string }>('SELECT session_user AS u')).rows[0].u;
  } finally {
    await c.end();
  }
}

/** What the application does: read, insert, update the table the original user owns. */
async function readsAndWrites(h: RotationHarness, s: DbSecret, note: string): Promise<number> {
  const c = await openClient({ host: s.host, port: s.port, dbname: s.dbname, ssl: s.ssl }, s, {
    caBundlePath: h.config.caBundlePath,
  });
  try {
    await c.query('INSERT INTO items (note) VALUES ($1)', [note]);
    await c.query("UPDATE items SET note = note || '!' WHERE note = $1", [note]);
    const r = await c.query<{ n: string }>('SELECT count(*) AS n FROM items');
    return Number(r.rows[0].n);
  } finally {
    await c.end();
  }
}

describe('Rotation: alternating users against real PostgreSQL', () => {
  let h: RotationHarness;
  const errors: unknown[] = [];

  beforeAll(async () => {
    h = await createRotationHarness({ prefix: 'alt' });
  });

  afterAll(() => {
    expectNoSecretsInOutput(h.passwords(), errors);
  });

  it('rotates three times: users alternate, generation +1, current and previous both log in', async () => {
    // Prepare
    const original = h.current();
    let rows = await readsAndWrites(h, original, 'before');
    const seen: string[] = [original.username];
    for (let i = 1; i <= 3; i++) {
      const before = h.current();
      // Act
      await h.rotate();
      // Assess
      const current = h.current();
      const previous = h.secret(AWSPREVIOUS);
      expect(current.generation).toBe(before.generation + 1);
      expect(current.username).toBe(i % 2 === 1 ? `${original.username}_clone` : original.username);
      expect(previous.username).toBe(before.username);
      expect(previous.password).toBe(before.password);
      expect(await canLogIn(h, current)).toBe(current.username);
      expect(await canLogIn(h, previous)).toBe(previous.username);
      const after = await readsAndWrites(h, current, `rotation-${i}`);
      expect(after).toBe(rows + 1);
      rows = after;
      seen.push(current.username);
    }
    expect(seen).toEqual([
      original.username,
      `${original.username}_clone`,
      original.username,
      `${original.username}_clone`,
    ]);
  });

  it('keeps unknown fields of the secret across rotations', async () => {
    // Prepare
    const withExtra = await createRotationHarness({
      prefix: 'extra',
      secretFields: { proxyEndpoint: 'proxy.internal', team: 'orders' },
    });
    // Act
    await withExtra.rotate();
    // Assess
    expect(withExtra.current().fields).toMatchObject({
      proxyEndpoint: 'proxy.internal',
      team: 'orders',
    });
    errors.push(...[]);
    expectNoSecretsInOutput(withExtra.passwords());
  });

  it('never sends the plaintext password in SQL: the role stores a SCRAM verifier', async () => {
    // Act
    const current = h.current();
    const { asSuperuser } = await import('../../support/database');
    const stored = await asSuperuser(
      h.db.dbname,
      async (c) =>
        (
          await c.query<{ p: string }>(
            'SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1',
            [current.username],
          )
        ).rows[0].p,
    );
    // Assess
    expect(stored).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(stored).not.toContain(current.password);
  });
});

describe('Rotation: enabling rotation without rotating now (RotateImmediately=false)', () => {
  it('passes the configuration test that Secrets Manager runs with an empty AWSPENDING, changing nothing', async () => {
    // Prepare
    const h = await createRotationHarness({ prefix: 'cfg' });
    const before = h.current();
    // Act: what `rotateImmediatelyOnUpdate: false` makes Secrets Manager do
    h.model.rotateSecret({
      SecretId: h.secretArn,
      RotationLambdaARN: h.lambdaArn,
      RotateImmediately: false,
    });
    const record = await h.model.rotationSettled(h.secretArn);
    // Assess
    expect(record?.error).toBeUndefined();
    expect(record?.steps.map((s) => s.step)).toEqual(['testSecret']);
    expect(h.current()).toEqual(before);
    expect(
      Object.values(h.model.snapshot(h.secretArn)).some((v) => v.stages.includes('AWSPENDING')),
    ).toBe(false);
  });

  it('fails the configuration test with a typed error when the master secret is unusable', async () => {
    // Prepare
    const h = await createRotationHarness({
      prefix: 'cfgbad',
      masterFields: { password: undefined },
    });
    // Act
    h.model.rotateSecret({
      SecretId: h.secretArn,
      RotationLambdaARN: h.lambdaArn,
      RotateImmediately: false,
    });
    const record = await h.model.rotationSettled(h.secretArn);
    // Assess
    expect(record?.error?.name).toBe('MasterSecretError');
  });
});
