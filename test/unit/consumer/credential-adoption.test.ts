import { CredentialAdoption } from '../../../consumer/credential-adoption';
import { RefreshingSecret } from '../../../consumer/refreshing-secret';
import { sameSnapshot, type SecretSnapshot, type SecretVersion } from '../../../consumer/secret-source';
import { AuthenticationFailedError } from '../../../lambda/shared/errors';
import { deferred, snapshot, version } from './secret-fixtures';

const C1 = version('v1', { username: 'orders', password: 'pw-one-aaaaaaaa', generation: 1 });
const P2 = version('v2', { username: 'orders_clone', password: 'pw-two-bbbbbbbb', generation: 2 });
const P3 = version('v3', { username: 'orders', password: 'pw-three-cccccc', generation: 3 });

/** A secret whose snapshots the test sets, and a validator that accepts the usernames it is told to. */
function setup(initial: SecretSnapshot) {
  let current = initial;
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
  });
  const adopted: [string, string | undefined][] = [];
  const rejected: string[] = [];
  adoption.on('adopt', (next, previous) => adopted.push([next.versionId, previous?.versionId]));
  adoption.on('pendingRejected', (candidate) => rejected.push(candidate.versionId));
  return {
    secret,
    adoption,
    canLogIn,
    validated,
    adopted,
    rejected,
    set: (s: SecretSnapshot) => {
      current = s;
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
});
