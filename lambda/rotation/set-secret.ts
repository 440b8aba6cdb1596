/**
 * setSecret: make the pending credential work in the database, as the master role. Creates the
 * alternate role on first use; otherwise, once the revocation guard agrees that nothing still uses
 * it, changes its password.
 *
 * Before anything changes: the pending secret must be the alternate of the current one on the same
 * database, master and TLS mode; an existing alternate role must be no more privileged than the
 * current user, not the master, and provably converge's pair of the current user; with `ownerRole`,
 * the owner role must exist and reach what the login users can. The current user itself is never
 * changed.
 */
import { AuthenticationFailedError, DatabaseOperationError } from '../shared/errors';
import { openClient, targetOf } from '../shared/pg-connection';
import type { DbSecret } from '../shared/secret';
import { connectionOptions, withMasterSession } from './connections';
import type { StepContext } from './context';
import { sessionScopeFor } from './gates/session-scope';
import { loadMaster } from './master-secret';
import { checkOwnerRole } from './owner-role';
import { revocationGuard } from './revocation-guard';
import {
  assertNotMorePrivileged,
  assertPairEvidence,
  createAlternateRole,
  findRole,
  setRolePassword,
} from './roles';
import { assertAlternateOf, readCurrent, readPending } from './secrets';

export async function setSecret(ctx: StepContext): Promise<void> {
  const current = await readCurrent(ctx);
  const pending = await readPending(ctx);
  assertAlternateOf(current, pending, 'AWSPENDING');
  if (await logsIn(ctx, pending)) {
    ctx.logger.info('setSecret: the pending credential already logs in; nothing to do', {
      username: pending.username,
    });
    return;
  }
  const master = await loadMaster(ctx, current);
  await withMasterSession(ctx, master, async (c) => {
    const currentRole = await findRole(c, current.username);
    if (!currentRole) {
      throw new DatabaseOperationError(
        `the current user "${current.username}" does not exist in the database; nothing was changed`,
      );
    }
    const existing = await findRole(c, pending.username);
    if (existing) {
      assertNotMorePrivileged(existing, currentRole, master.credential.username);
      await assertPairEvidence(c, {
        alternate: existing,
        current: currentRole,
        explicitPair: current.alternateUsername !== undefined,
      });
    }
    if (pending.ownerRole) {
      await checkOwnerRole(c, {
        owner: pending.ownerRole,
        current: currentRole,
        alternate: existing,
        master: master.credential.username,
      });
    }
    if (!existing) {
      const { skippedSettings } = await createAlternateRole(c, {
        alternate: pending.username,
        current: current.username,
        password: pending.password,
        ownerRole: pending.ownerRole,
      });
      if (skippedSettings.length > 0) {
        ctx.logger.warn(
          'setSecret: per-role settings the master may not set were not copied to the alternate user; a superuser must copy them',
          {
            username: pending.username,
            from: current.username,
            settings: skippedSettings,
          },
        );
      }
      ctx.logger.info('setSecret: created the alternate user', {
        username: pending.username,
        generation: pending.generation,
      });
      return;
    }
    const sessions = await sessionScopeFor(ctx, c, master, current);
    await revocationGuard(
      ctx,
      { username: pending.username, current, pending, master: c, sessions },
      () =>
        setRolePassword(c, {
          role: existing,
          password: pending.password,
          ownerRole: pending.ownerRole,
          current: current.username,
        }),
    );
    ctx.logger.info('setSecret: changed the password of the alternate user', {
      username: pending.username,
      generation: pending.generation,
    });
  });
}

async function logsIn(ctx: StepContext, secret: DbSecret): Promise<boolean> {
  try {
    const c = await openClient(targetOf(secret), secret, connectionOptions(ctx));
    await c.end().catch(() => undefined);
    return true;
  } catch (err) {
    if (err instanceof AuthenticationFailedError) return false;
    throw err;
  }
}
