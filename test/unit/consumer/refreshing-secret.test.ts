import { RefreshingSecret } from '../../../consumer/refreshing-secret';
import { SecretFetchTimeoutError, SecretUnavailableError } from '../../../lambda/shared/errors';
import { deferred } from './secret-fixtures';

/** A hand-driven monotonic clock. */
function fakeClock(start = 0) {
  let now = start;
  return {
    now: () => now,
    set: (t: number) => {
      now = t;
    },
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/** A fetch whose results the test scripts; records the clock time of every call. */
function scriptedFetch(clock: { now(): number }) {
  const calls: number[] = [];
  let next: () => Promise<string> = async () => 'v1';
  return {
    calls,
    fetch: async () => {
      calls.push(clock.now());
      return next();
    },
    succeedWith: (value: string) => {
      next = async () => value;
    },
    failWith: (error: Error) => {
      next = async () => {
        throw error;
      };
    },
    hold: () => {
      const d = deferred<string>();
      next = () => d.promise;
      return d;
    },
  };
}

describe('Class: RefreshingSecret', () => {
  describe('Method: get', () => {
    it('loads once and serves the cached value until the TTL ends', async () => {
      // Prepare
      const clock = fakeClock();
      const source = scriptedFetch(clock);
      const secret = new RefreshingSecret({
        fetch: source.fetch,
        ttlMs: 1_000,
        jitter: 0,
        clock: clock.now,
        refreshInBackground: false,
      });
      // Act
      const first = await secret.get();
      source.succeedWith('v2');
      clock.set(999);
      const beforeExpiry = await secret.get();
      clock.set(1_000);
      const afterExpiry = await secret.get();
      // Assess
      expect([first, beforeExpiry, afterExpiry]).toEqual(['v1', 'v1', 'v2']);
      expect(source.calls).toEqual([0, 1_000]);
    });

    it('spreads the TTL with jitter on the injected random source', async () => {
      // Prepare: jitter 0.2 with random 0.5 removes 10% of the TTL
      const clock = fakeClock();
      const source = scriptedFetch(clock);
      const secret = new RefreshingSecret({
        fetch: source.fetch,
        ttlMs: 1_000,
        jitter: 0.2,
        random: () => 0.5,
        clock: clock.now,
        refreshInBackground: false,
      });
      await secret.get();
      // Act
      clock.set(899);
      await secret.get();
      const callsBefore = source.calls.length;
      clock.set(900);
      await secret.get();
      // Assess
      expect(callsBefore).toBe(1);
      expect(source.calls).toEqual([0, 900]);
    });

    it('makes 1,000 concurrent callers at TTL expiry share one fetch and all see its result', async () => {
      // Prepare
      const clock = fakeClock();
      const source = scriptedFetch(clock);
      const secret = new RefreshingSecret({
        fetch: source.fetch,
        ttlMs: 1_000,
        jitter: 0,
        clock: clock.now,
        refreshInBackground: false,
      });
      await secret.get();
      const held = source.hold();
      clock.set(1_000);
      // Act
      const all = Promise.all(Array.from({ length: 1_000 }, () => secret.get()));
      held.resolve('v2');
      const values = await all;
      // Assess
      expect(source.calls).toHaveLength(2);
      expect(new Set(values)).toEqual(new Set(['v2']));
    });

    it('serves the last good value through a long outage, backing off exponentially up to the cap', async () => {
      // Prepare
      const clock = fakeClock();
      const source = scriptedFetch(clock);
      const secret = new RefreshingSecret({
        fetch: source.fetch,
        ttlMs: 1_000,
        jitter: 0,
        backoffBaseMs: 1_000,
        backoffMaxMs: 8_000,
        clock: clock.now,
        refreshInBackground: false,
      });
      await secret.get();
      source.failWith(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
      const served = new Set<string>();
      // Act: a caller every 100 ms for 60 s of outage
      for (let t = 1_000; t <= 60_000; t += 100) {
        clock.set(t);
        served.add(await secret.get());
      }
      // Assess
      const gaps = source.calls.slice(1).map((t, i) => t - source.calls[i]);
      expect(served).toEqual(new Set(['v1']));
      expect(gaps.slice(0, 5)).toEqual([1_000, 1_000, 2_000, 4_000, 8_000]);
      expect(new Set(gaps.slice(5))).toEqual(new Set([8_000]));
      expect(source.calls.length).toBeLessThan(12); // 591 callers after expiry, 11 fetches
      expect(secret.consecutiveFailures).toBe(source.calls.length - 1);
    });

    it('picks up the new value once the store recovers, then returns to the normal TTL', async () => {
      // Prepare
      const clock = fakeClock();
      const source = scriptedFetch(clock);
      const secret = new RefreshingSecret({
        fetch: source.fetch,
        ttlMs: 1_000,
        jitter: 0,
        backoffBaseMs: 4_000,
        clock: clock.now,
        refreshInBackground: false,
      });
      await secret.get();
      source.failWith(new Error('socket hang up'));
      clock.set(1_000);
      await secret.get();
      source.succeedWith('v2');
      // Act
      clock.set(4_999);
      const duringBackoff = await secret.get();
      clock.set(5_000);
      const recovered = await secret.get();
      clock.set(5_999);
      await secret.get();
      // Assess
      expect(duringBackoff).toBe('v1');
      expect(recovered).toBe('v2');
      expect(source.calls).toEqual([0, 1_000, 5_000]);
      expect(secret.consecutiveFailures).toBe(0);
    });

    it('fails with SecretUnavailableError when nothing was ever loaded, and does not retry during the backoff', async () => {
      // Prepare
      const clock = fakeClock();
      const source = scriptedFetch(clock);
      const cause = Object.assign(new Error('Service Unavailable'), { name: 'InternalServiceError' });
      source.failWith(cause);
      const secret = new RefreshingSecret({
        fetch: source.fetch,
        jitter: 0,
        backoffBaseMs: 1_000,
        clock: clock.now,
        refreshInBackground: false,
        label: 'secret "app-db"',
      });
      // Act
      const first = await secret.get().catch((e: unknown) => e);
      clock.set(500);
      const second = await secret.get().catch((e: unknown) => e);
      // Assess
      expect(first).toBeInstanceOf(SecretUnavailableError);
      expect((first as Error).message).toContain('secret "app-db"');
      expect((first as Error).cause).toBe(cause);
      expect(second).toBeInstanceOf(SecretUnavailableError);
      expect(source.calls).toEqual([0]);
    });
  });

  describe('Method: refreshNow', () => {
    it('fetches inside the TTL and shares one fetch among concurrent callers', async () => {
      // Prepare
      const clock = fakeClock();
      const source = scriptedFetch(clock);
      const secret = new RefreshingSecret({ fetch: source.fetch, clock: clock.now, refreshInBackground: false });
      await secret.get();
      source.succeedWith('v2');
      // Act
      const values = await Promise.all([secret.refreshNow(), secret.refreshNow(), secret.refreshNow()]);
      // Assess
      expect(values).toEqual(['v2', 'v2', 'v2']);
      expect(source.calls).toHaveLength(2);
    });

    it('rejects with the fetch error but keeps serving the last good value', async () => {
      // Prepare
      const clock = fakeClock();
      const source = scriptedFetch(clock);
      const secret = new RefreshingSecret({ fetch: source.fetch, clock: clock.now, refreshInBackground: false });
      await secret.get();
      const failure = new Error('AccessDeniedException');
      source.failWith(failure);
      // Act
      const err = await secret.refreshNow().catch((e: unknown) => e);
      // Assess
      expect(err).toBe(failure);
      expect(secret.peek()).toBe('v1');
      expect(await secret.get()).toBe('v1');
    });
  });

  describe('Method: refreshIfStale', () => {
    it('starts one background fetch only once the TTL has ended', async () => {
      // Prepare
      const clock = fakeClock();
      const source = scriptedFetch(clock);
      const secret = new RefreshingSecret({
        fetch: source.fetch,
        ttlMs: 1_000,
        jitter: 0,
        clock: clock.now,
        refreshInBackground: false,
      });
      await secret.get();
      source.succeedWith('v2');
      const reloaded = new Promise<string>((resolve) => secret.once('reload', (v) => resolve(v)));
      // Act
      secret.refreshIfStale();
      clock.set(1_000);
      secret.refreshIfStale();
      secret.refreshIfStale();
      // Assess
      expect(await reloaded).toBe('v2');
      expect(source.calls).toEqual([0, 1_000]);
    });
  });

  describe('Events', () => {
    it('emits reload with whether the value changed, and reloadFailure with the backoff', async () => {
      // Prepare
      const clock = fakeClock();
      const source = scriptedFetch(clock);
      const secret = new RefreshingSecret({
        fetch: source.fetch,
        jitter: 0,
        backoffBaseMs: 2_000,
        clock: clock.now,
        refreshInBackground: false,
      });
      const reloads: { value: string; changed: boolean; previous?: string }[] = [];
      const failures: { message: string; consecutiveFailures: number; retryInMs: number; servingLastGood: boolean }[] = [];
      secret.on('reload', (value, info) => reloads.push({ value, changed: info.changed, previous: info.previous }));
      secret.on('reloadFailure', (error, info) => failures.push({ message: error.message, ...info }));
      // Act
      await secret.get();
      await secret.refreshNow();
      source.succeedWith('v2');
      await secret.refreshNow();
      source.failWith(new Error('boom'));
      await secret.refreshNow().catch(() => undefined);
      // Assess
      expect(reloads).toEqual([
        { value: 'v1', changed: true, previous: undefined },
        { value: 'v1', changed: false, previous: 'v1' },
        { value: 'v2', changed: true, previous: 'v1' },
      ]);
      expect(failures).toEqual([{ message: 'boom', consecutiveFailures: 1, retryInMs: 2_000, servingLastGood: true }]);
    });
  });

  describe('Option: refreshInBackground', () => {
    it('refreshes on its own when the TTL ends, and stops after close()', async () => {
      // Prepare
      let fetches = 0;
      const secret = new RefreshingSecret({
        fetch: async () => `v${++fetches}`,
        ttlMs: 10,
        jitter: 0,
      });
      const thirdLoad = new Promise<void>((resolve) =>
        secret.on('reload', (v) => {
          if (v === 'v3') resolve();
        }),
      );
      // Act
      await secret.get();
      await thirdLoad;
      secret.close();
      const atClose = fetches;
      await new Promise((r) => setTimeout(r, 60));
      // Assess
      expect(atClose).toBe(3);
      expect(fetches).toBe(atClose);
      expect(secret.peek()).toBe('v3');
    });
  });

  describe('Option: subscribe', () => {
    it('fetches on a notification even during a backoff, and once more for notifications during a fetch', async () => {
      // Prepare
      const clock = fakeClock();
      const source = scriptedFetch(clock);
      let notify: () => void = () => undefined;
      const secret = new RefreshingSecret({
        fetch: source.fetch,
        ttlMs: 60_000,
        backoffBaseMs: 60_000,
        clock: clock.now,
        refreshInBackground: false,
        subscribe: (n) => {
          notify = n;
          return () => undefined;
        },
      });
      await secret.get();
      source.failWith(new Error('torn file'));
      await secret.refreshNow().catch(() => undefined);
      const held = source.hold();
      // Act: one notification starts a fetch; two more arrive while it runs
      notify();
      notify();
      notify();
      source.succeedWith('v3');
      const followUp = new Promise<string>((resolve) =>
        secret.on('reload', (v) => {
          if (v === 'v3') resolve(v);
        }),
      );
      held.resolve('v2');
      // Assess
      expect(await followUp).toBe('v3');
      expect(source.calls).toHaveLength(4);
    });
  });

  describe('Option: fetchTimeoutMs', () => {
    it('counts a fetch that never settles as a failure after fetchTimeoutMs, cancels it, and lets the next fetch start', async () => {
      // Prepare: the first fetch answers, the next ones hang until told otherwise
      const clock = fakeClock();
      const signals: AbortSignal[] = [];
      let hang = false;
      const secret = new RefreshingSecret<string>({
        fetch: (_previous, signal) => {
          signals.push(signal);
          return hang ? new Promise<string>(() => undefined) : Promise.resolve(`v${signals.length}`);
        },
        fetchTimeoutMs: 20,
        jitter: 0,
        clock: clock.now,
        refreshInBackground: false,
        label: 'secret "app-db"',
      });
      await secret.get();
      hang = true;
      const failures: { error: Error; servingLastGood: boolean }[] = [];
      secret.on('reloadFailure', (error, info) => failures.push({ error, servingLastGood: info.servingLastGood }));
      // Act
      const first = await secret.refreshNow().catch((e: unknown) => e);
      const second = await secret.refreshNow().catch((e: unknown) => e);
      hang = false;
      const recovered = await secret.refreshNow();
      // Assess
      expect(first).toBeInstanceOf(SecretFetchTimeoutError);
      expect((first as Error).message).toBe(
        'secret "app-db": the fetch did not finish within 20 ms (fetchTimeoutMs); it was cancelled and counts as a failed refresh',
      );
      expect(second).toBeInstanceOf(SecretFetchTimeoutError);
      expect(signals.map((s) => s.aborted)).toEqual([false, true, true, false]);
      expect(signals[1].reason).toBe(first);
      expect(failures).toEqual([
        { error: first, servingLastGood: true },
        { error: second, servingLastGood: true },
      ]);
      expect(recovered).toBe('v4');
      expect(secret.consecutiveFailures).toBe(0);
    });

    it('cancels the fetch in flight on close(), without reporting a failure', async () => {
      // Prepare
      let signal: AbortSignal | undefined;
      const secret = new RefreshingSecret<string>({
        fetch: (_previous, s) => {
          signal = s;
          return new Promise<string>((_, reject) => s.addEventListener('abort', () => reject(new Error('aborted'))));
        },
        refreshInBackground: false,
      });
      const failures: Error[] = [];
      secret.on('reloadFailure', (e) => failures.push(e));
      const loading = secret.get().catch((e: unknown) => e);
      // Act
      secret.close();
      const err = await loading;
      // Assess
      expect(signal?.aborted).toBe(true);
      expect(err).toBeInstanceOf(SecretUnavailableError);
      expect(failures).toEqual([]);
    });
  });

  describe('Constructor', () => {
    it('rejects a TTL or jitter out of range, naming the value received', () => {
      // Prepare
      const fetch = async () => 'v';
      // Act / Assess
      expect(() => new RefreshingSecret({ fetch, ttlMs: 0 })).toThrow(/ttlMs must be a positive number of milliseconds, got 0/);
      expect(() => new RefreshingSecret({ fetch, jitter: 1 })).toThrow(/jitter must be at least 0 and below 1, got 1/);
      expect(() => new RefreshingSecret({ fetch, backoffBaseMs: 10, backoffMaxMs: 5 })).toThrow(/got 5 < 10/);
      expect(() => new RefreshingSecret({ fetch, fetchTimeoutMs: 0 })).toThrow(/fetchTimeoutMs must be a positive number of milliseconds, got 0/);
    });
  });
});
