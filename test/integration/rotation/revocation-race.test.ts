/**
 * The race between the revocation guard's session count and the password change: a client logging
 * in with the old password in between must not end up holding a session the guard never saw. The
 * login is injected exactly there, at the SQL boundary: right after the master session has read
 * pg_stat_activity for the user.
 */
import { Client } from 'pg';
import { AuthenticationFailedError } from '../../../lambda/shared/errors';
import { REVOCATION_WINDOW_MS } from '../../../lambda/shared/metric-contract';
import { canLogin, connectAs, leakCheckedHarnesses, sessionCount } from '../../support/probes';
import { AWSPREVIOUS } from '../../support/rotation-harness';
import { emfRecords } from '../../unit/gates/gate-fixtures';

type Query = (this: Client, ...args: unknown[]) => unknown;

/**
 * Calls `after` once the next time a master session finishes listing sessions of `username`
 * (and before the rotation goes on); returns a function that removes the hook.
 */
function afterSessionCount(username: string, after: () => Promise<void>): () => void {
  const original = Client.prototype.query as unknown as Query;
  let fired = false;
  (Client.prototype as unknown as { query: Query }).query = function (
    this: Client,
    ...args: unknown[]
  ) {
    const result = original.apply(this, args);
    const [text, values] = args as [unknown, unknown];
    const counting =
      typeof text === 'string' &&
      text.includes('pg_stat_activity') &&
      Array.isArray(values) &&
      values[0] === username;
    if (!fired && counting && result instanceof Promise) {
      fired = true;
      return result.then(async (r: unknown) => {
        await after();
        return r;
      });
    }
    return result;
  };
  return () => {
    (Client.prototype as unknown as { query: Query }).query = original;
  };
}

describe('Revocation guard: the window between the session count and the password change', () => {
  const file = leakCheckedHarnesses();
  const errors = file.errors;

  it('refuses a login with the old password that lands after the count, so no session of the old password survives the change', async () => {
    // Prepare: rotation 1; rotation 2 will re-password the original user
    const metrics: string[] = [];
    const h = await file.create({
      prefix: 'race',
      deps: { writeMetric: (l) => metrics.push(l) },
    });
    await h.rotate();
    const previous = h.secret(AWSPREVIOUS);
    let straggler: Client | undefined;
    let refused: unknown;
    const unhook = afterSessionCount(previous.username, async () => {
      straggler = await connectAs(h, previous, 'straggler').catch((e: unknown) => {
        refused = e;
        return undefined;
      });
    });
    try {
      // Act
      await h.rotate();
    } finally {
      unhook();
      await straggler?.end().catch(() => undefined);
    }
    errors.push(refused);
    // Assess: the straggler was refused (LOGIN was off), nothing of the old password is connected,
    // the user logs in again with its new password, and the window was measured
    expect(straggler).toBeUndefined();
    expect(refused).toBeInstanceOf(AuthenticationFailedError);
    expect(await sessionCount(h, previous.username)).toBe(0);
    expect(await canLogin(h, previous.username)).toBe(true);
    const c = await connectAs(h, h.current(), 'after');
    await c.end();
    expect(emfRecords(metrics).filter((r) => REVOCATION_WINDOW_MS in r)).toHaveLength(1);
  });

  it('restores LOGIN when the guard blocks on a session: the previous user keeps working', async () => {
    // Prepare
    const h = await file.create({ prefix: 'racebl' });
    await h.rotate();
    const previous = h.secret(AWSPREVIOUS);
    const holder = await connectAs(h, previous, 'holder');
    holder.on('error', () => undefined);
    try {
      // Act
      const err = await h.rotate().catch((e: unknown) => e);
      errors.push(err);
      // Assess
      expect((err as Error).name).toBe('RevocationBlockedError');
      expect(await canLogin(h, previous.username)).toBe(true);
      const again = await connectAs(h, previous, 'again');
      await again.end();
    } finally {
      await holder.end().catch(() => undefined);
    }
  });

  it('leaves LOGIN off only until the next attempt when the function dies right after taking it away', async () => {
    // Prepare: the session count fails, and so does restoring LOGIN (the invocation "died")
    const h = await file.create({ prefix: 'racedie' });
    await h.rotate();
    const previous = h.secret(AWSPREVIOUS);
    const original = Client.prototype.query as unknown as Query;
    let dead = true;
    (Client.prototype as unknown as { query: Query }).query = function (
      this: Client,
      ...args: unknown[]
    ) {
      const [text] = args as [unknown];
      if (
        dead &&
        typeof text === 'string' &&
        (text.includes('pg_stat_activity') || /WITH LOGIN$/.test(text))
      ) {
        return Promise.reject(
          Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' }),
        );
      }
      return original.apply(this, args);
    };
    let err: unknown;
    try {
      err = await h.rotate().catch((e: unknown) => e);
    } finally {
      (Client.prototype as unknown as { query: Query }).query = original;
    }
    errors.push(err);
    expect(err).toBeDefined();
    expect(await canLogin(h, previous.username)).toBe(false);
    // Act: Secrets Manager retries the rotation with the same token
    dead = false;
    await h.retry();
    // Assess
    expect(h.current().username).toBe(previous.username);
    expect(await canLogin(h, previous.username)).toBe(true);
    const c = await connectAs(h, h.current(), 'after-retry');
    await c.end();
  });
});
