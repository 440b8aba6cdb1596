import { CredentialAdoption, type PendingRetryOptions } from '../../../consumer/credential-adoption';
import { RefreshingSecret } from '../../../consumer/refreshing-secret';
import { sameSnapshot, type SecretSnapshot, type SecretVersion } from '../../../consumer/secret-source';
import { AuthenticationFailedError, ConvergeError } from '../../../lambda/shared/errors';
import { deferred, snapshot, version } from './secret-fixtures';

const C1 = version('v1', { username: 'orders', password: 'pw-one-aaaaaaaa', generation: 1 });
const P2 = version('v2', { username: 'orders_clone', password: 'pw-two-bbbbbbbb', generation: 2 });
const P3 = version('v3', { username: 'orders', password: 'pw-three-cccccc', generation: 3 });

/**
 * A secret whose snapshots the test sets, a validator that accepts the version ids it is told to,
 * and a hand-moved clock for the back-off.
 */
function setup(initial: SecretSnapshot, pendingRetry?: PendingRetryOptions) {
  let current = initial;
  let now = 1_000_000;
  const secret = new RefreshingSecret<SecretSnapshot>({
    fetch: async () => current,
    isSame: sameSnapshot,
    refreshInBackground: false,
  });
  const canLogIn = new Set<string>();
  const validated: string[] = [];
  const adoption = new CredentialAdoption({
    secret,
    validate: async (candidate) => {
      validated.push(candidate.versionId);
      if (!canLogIn.has(candidate.versionId)) {
        throw new AuthenticationFailedError(`PostgreSQL rejected the credential as "${candidate.username}"`, { code: '28P01' });
      }
    },
    pendingRetry,
    clock: () => now,
  });
  const adopted: [string, string | undefined][] = [];
  const rejected: string[] = [];
  const retryInMs: number[] = [];
  adoption.on('adopt', (next, previous) => adopted.push([next.versionId, previous?.versionId]));
  adoption.on('pendingRejected', (candidate, _err, info) => {
    rejected.push(candidate.versionId);
    retryInMs.push(info.retryInMs);
  });
  return {
    secret,
    adoption,
    canLogIn,
    validated,
    adopted,
    rejected,
    retryInMs,
    set: (s: SecretSnapshot) => {
      current = s;
    },
    advance: (ms: number) => {
      now += ms;
    },
    /** What the TTL timer does: one fetch of the secret, then the adoption's evaluation of it. */
    refresh: async () => {
      await secret.refreshNow();
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

describe('Class: CredentialAdoption', () => {
  describe('Method: ready', () => {
    it('adopts AWSCURRENT when no rotation is in progress, without a validation round trip', async () => {
      // Prepare
      const t = setup(snapshot(C1));
      // Act
      const credential = await t.adoption.ready();
      // Assess
      expect(credential.versionId).toBe('v1');
      expect(t.validated).toEqual([]);
      expect(t.adopted).toEqual([['v1', undefined]]);
    });

    it('adopts a pending credential at startup when it already logs in', async () => {
      // Prepare
      const t = setup(snapshot(C1, P2));
      t.canLogIn.add('v2');
      // Act
      const credential = await t.adoption.ready();
      // Assess
      expect(credential.versionId).toBe('v2');
      expect(t.adopted).toEqual([['v2', undefined]]);
    });
  });

  describe('Adoption rule', () => {
    it('keeps the current credential while the pending one cannot log in, and adopts it once it can', async () => {
      // Prepare
      const t = setup(snapshot(C1));
      await t.adoption.ready();
      t.set(snapshot(C1, P2));
      // Act: createSecret wrote the pending version, setSecret has not run yet
      await t.adoption.refreshNow();
      const beforeSetSecret = t.adoption.credential?.versionId;
      t.canLogIn.add('v2');
      await t.adoption.refreshNow();
      // Assess
      expect(beforeSetSecret).toBe('v1');
      expect(t.rejected).toEqual(['v2']);
      expect(t.adoption.credential?.versionId).toBe('v2');
      expect(t.adopted).toEqual([
        ['v1', undefined],
        ['v2', 'v1'],
      ]);
    });

    it('keeps an adopted pending credential, without validating again, when finishSecret promotes it', async () => {
      // Prepare
      const t = setup(snapshot(C1, P2));
      t.canLogIn.add('v2');
      await t.adoption.ready();
      t.set(snapshot(P2));
      // Act
      await t.adoption.refreshNow();
      // Assess
      expect(t.adoption.credential?.versionId).toBe('v2');
      expect(t.validated).toEqual(['v2']);
      expect(t.adopted).toEqual([['v2', undefined]]);
    });

    it('falls back to AWSCURRENT when the pending version disappears (aborted rotation)', async () => {
      // Prepare
      const t = setup(snapshot(C1, P2));
      t.canLogIn.add('v2');
      await t.adoption.ready();
      t.set(snapshot(C1));
      // Act
      await t.adoption.refreshNow();
      // Assess
      expect(t.adoption.credential?.versionId).toBe('v1');
      expect(t.adopted).toEqual([
        ['v2', undefined],
        ['v1', 'v2'],
      ]);
    });

    it('drops a credential that is neither current nor pending for AWSCURRENT, even when the new pending cannot log in', async () => {
      // Prepare: adopted v2 as pending; the rotation was aborted and a new one (v3) started before we looked again
      const t = setup(snapshot(C1, P2));
      t.canLogIn.add('v2');
      await t.adoption.ready();
      t.set(snapshot(C1, P3));
      // Act
      await t.adoption.refreshNow();
      // Assess
      expect(t.adoption.credential?.versionId).toBe('v1');
      expect(t.rejected).toEqual(['v3']);
    });

    it('evaluates only the newest snapshot when several arrive during one validation', async () => {
      // Prepare
      let current = snapshot(C1);
      const secret = new RefreshingSecret<SecretSnapshot>({
        fetch: async () => current,
        isSame: sameSnapshot,
        refreshInBackground: false,
      });
      const gate = deferred<void>();
      const validated: SecretVersion[] = [];
      const adoption = new CredentialAdoption({
        secret,
        validate: async (candidate) => {
          validated.push(candidate);
          await gate.promise;
        },
      });
      await adoption.ready();
      current = snapshot(C1, P2);
      const first = adoption.refreshNow();
      // Act: while v2 is being validated, the rotation finishes and the next one starts
      current = snapshot(P2);
      await secret.refreshNow();
      current = snapshot(P2, P3);
      const last = secret.refreshNow();
      gate.resolve();
      await Promise.all([first, last]);
      await adoption.refreshNow();
      // Assess
      expect(validated.map((v) => v.versionId)).toEqual(['v2', 'v3']);
      expect(adoption.credential?.versionId).toBe('v3');
    });
  });

  describe('Back-off after a rejected pending credential', () => {
    it('validates a rejected pending version once, not on every refresh, while its back-off runs', async () => {
      // Prepare: createSecret staged v2; setSecret is held (the revocation guard waits), so v2 cannot log in
      const t = setup(snapshot(C1));
      await t.adoption.ready();
      t.set(snapshot(C1, P2));
      // Act: ten refreshes within the first back-off (1 s by default)
      for (let i = 0; i < 10; i++) {
        await t.refresh();
        t.advance(90);
      }
      // Assess: one failed login, not ten; the current credential stands
      expect(t.validated).toEqual(['v2']);
      expect(t.rejected).toEqual(['v2']);
      expect(t.adoption.credential?.versionId).toBe('v1');
    });

    it('validates the same version again once the back-off has passed, doubling it up to the cap, and adopts it when it logs in', async () => {
      // Prepare
      const t = setup(snapshot(C1), { baseMs: 1_000, maxMs: 4_000 });
      await t.adoption.ready();
      t.set(snapshot(C1, P2));
      await t.refresh();
      // Act: refresh every 100 ms for 12 s; setSecret makes v2 work at 10 s
      const triedAt: number[] = [];
      for (let elapsed = 100; elapsed <= 12_000; elapsed += 100) {
        t.advance(100);
        if (elapsed === 10_000) t.canLogIn.add('v2');
        const before = t.validated.length;
        await t.refresh();
        if (t.validated.length > before) triedAt.push(elapsed);
      }
      // Assess: tried after 1, 2 and 4 s, then every 4 s (the cap); adopted at the first try after 10 s
      expect(t.retryInMs).toEqual([1_000, 2_000, 4_000, 4_000]);
      expect(triedAt).toEqual([1_000, 3_000, 7_000, 11_000]);
      expect(t.adoption.credential?.versionId).toBe('v2');
      expect(t.adopted).toEqual([
        ['v1', undefined],
        ['v2', 'v1'],
      ]);
    });

    it('validates a new pending version at once, even while the previous one is backing off', async () => {
      // Prepare: v2 rejected; the rotation is aborted and the next one stages v3
      const t = setup(snapshot(C1));
      await t.adoption.ready();
      t.set(snapshot(C1, P2));
      await t.refresh();
      t.canLogIn.add('v3');
      t.set(snapshot(C1, P3));
      // Act
      await t.refresh();
      // Assess
      expect(t.validated).toEqual(['v2', 'v3']);
      expect(t.adoption.credential?.versionId).toBe('v3');
    });

    it('starts the back-off of the next rotation\'s version from the base delay again', async () => {
      // Prepare: v2 rejected twice, then adopted and promoted; the next rotation stages v3, which fails
      const t = setup(snapshot(C1), { baseMs: 1_000, maxMs: 60_000 });
      await t.adoption.ready();
      t.set(snapshot(C1, P2));
      await t.refresh();
      t.advance(1_000);
      await t.refresh();
      t.canLogIn.add('v2');
      t.advance(2_000);
      await t.refresh();
      t.set(snapshot(P2, P3));
      // Act
      await t.refresh();
      // Assess
      expect(t.retryInMs).toEqual([1_000, 2_000, 1_000]);
      expect(t.adoption.credential?.versionId).toBe('v2');
    });

    it('retries a rejected pending version at once on an explicit refreshNow, and not when told to keep the back-off', async () => {
      // Prepare
      const t = setup(snapshot(C1));
      await t.adoption.ready();
      t.set(snapshot(C1, P2));
      await t.refresh();
      // Act
      await t.adoption.refreshNow({ retryRejectedPending: false });
      const afterKeptBackOff = [...t.validated];
      t.canLogIn.add('v2');
      await t.adoption.refreshNow();
      // Assess
      expect(afterKeptBackOff).toEqual(['v2']);
      expect(t.validated).toEqual(['v2', 'v2']);
      expect(t.adoption.credential?.versionId).toBe('v2');
    });

    it.each([
      [{ baseMs: 0 }, /pendingRetry.baseMs must be a positive number/],
      [{ baseMs: 5_000, maxMs: 1_000 }, /pendingRetry.maxMs must not be smaller than pendingRetry.baseMs/],
    ])('rejects back-off options %j', (pendingRetry, message) => {
      // Act / Assess
      expect(() => setup(snapshot(C1), pendingRetry)).toThrow(ConvergeError);
      expect(() => setup(snapshot(C1), pendingRetry)).toThrow(message);
    });
  });
});
