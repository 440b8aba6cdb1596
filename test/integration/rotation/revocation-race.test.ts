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
 * Calls `after` once, when a master session finishes listing sessions of `username` for the
 * `nth` time (the guard counts before taking LOGIN away, and again after), before the rotation
 * goes on; returns a function that removes the hook.
 */
function afterSessionCount(username: string, nth: 1 | 2, after: () => Promise<void>): () => void {
  const original = Client.prototype.query as unknown as Query;
  let fired = false;
  let seen = 0;
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
    if (counting) seen++;
    if (!fired && counting && seen === nth && result instanceof Promise) {
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

/**
 * Runs `fn` while every statement for which `dies(text, values)` holds fails as a dropped
 * connection would (the invocation "died" there); `seen` receives every statement's text.
 */
async function dyingAt<T>(
  dies: (text: string, values: unknown) => boolean,
  fn: () => Promise<T>,
  seen: string[] = [],
): Promise<T> {
  const original = Client.prototype.query as unknown as Query;
  (Client.prototype as unknown as { query: Query }).query = function (
    this: Client,
    ...args: unknown[]
  ) {
    const [text, values] = args as [unknown, unknown];
    if (typeof text === 'string') {
      seen.push(text);
      if (dies(text, values)) {
        return Promise.reject(
          Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' }),
        );
      }
    }
    return original.apply(this, args);
  };
  try {
    return await fn();
  } finally {
    (Client.prototype as unknown as { query: Query }).query = original;
  }
}

/** The statement that gives LOGIN back (with or without a new password). */
const restoresLogin = (text: string) => /WITH LOGIN$/.test(text);

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
    const unhook = afterSessionCount(previous.username, 2, async () => {
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

  it('catches a login with the old password that lands between the first count and LOGIN going away: the rotation blocks', async () => {
    // Prepare
    const h = await file.create({ prefix: 'racefirst' });
    await h.rotate();
    const previous = h.secret(AWSPREVIOUS);
    let straggler: Client | undefined;
    const unhook = afterSessionCount(previous.username, 1, async () => {
      straggler = await connectAs(h, previous, 'straggler');
      straggler.on('error', () => undefined);
    });
    let err: unknown;
    try {
      // Act
      err = await h.rotate().catch((e: unknown) => e);
    } finally {
      unhook();
    }
    errors.push(err);
    try {
      // Assess: the second count saw it; LOGIN is back, and the straggler keeps working
      expect((err as Error).name).toBe('RevocationBlockedError');
      expect(await canLogin(h, previous.username)).toBe(true);
      expect((await straggler!.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await straggler?.end().catch(() => undefined);
    }
  });

  it('blocks on an open session without taking LOGIN away: the previous user keeps working', async () => {
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

  it('blocks on an open session before taking LOGIN away: a guard that dies while counting leaves the previous user working', async () => {
    // Prepare: a process still holds a session of the previous user (a consumer whose reports say
    // nothing, e.g. one that hung), and the invocation dies at the session count
    const h = await file.create({ prefix: 'racesess' });
    await h.rotate();
    const previous = h.secret(AWSPREVIOUS);
    const holder = await connectAs(h, previous, 'holder');
    holder.on('error', () => undefined);
    const statements: string[] = [];
    const counting = (text: string, values: unknown) =>
      text.includes('pg_stat_activity') && Array.isArray(values) && values[0] === previous.username;
    // Act
    const err = await dyingAt(
      (text, values) => counting(text, values) || restoresLogin(text),
      () => h.rotate().catch((e: unknown) => e),
      statements,
    );
    errors.push(err);
    try {
      // Assess: nothing touched the previous user's LOGIN, and it still logs in
      expect(err).toBeDefined();
      expect(statements.filter((t) => /NOLOGIN$/.test(t))).toEqual([]);
      expect(await canLogin(h, previous.username)).toBe(true);
      const again = await connectAs(h, previous, 'again');
      await again.end();
    } finally {
      await holder.end().catch(() => undefined);
    }
  });

  it('leaves LOGIN off only until the next attempt when the function dies right after taking it away', async () => {
    // Prepare: once LOGIN is off, the session count fails, and so does restoring LOGIN (the
    // invocation "died")
    const h = await file.create({ prefix: 'racedie' });
    await h.rotate();
    const previous = h.secret(AWSPREVIOUS);
    const statements: string[] = [];
    const loginOff = () => statements.some((t) => /NOLOGIN$/.test(t));
    const err = await dyingAt(
      (text) => loginOff() && (text.includes('pg_stat_activity') || restoresLogin(text)),
      () => h.rotate().catch((e: unknown) => e),
      statements,
    );
    errors.push(err);
    expect(err).toBeDefined();
    expect(loginOff()).toBe(true);
    expect(await canLogin(h, previous.username)).toBe(false);
    // Act: Secrets Manager retries the rotation with the same token
    await h.retry();
    // Assess
    expect(h.current().username).toBe(previous.username);
    expect(await canLogin(h, previous.username)).toBe(true);
    const c = await connectAs(h, h.current(), 'after-retry');
    await c.end();
  });
});
