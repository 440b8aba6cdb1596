/**
 * setSecret: make the pending credential work in the database, as the master role. Creates the
 * alternate role on first use, otherwise changes its password after the revocation guard agrees
 * that nothing still uses it.
 */
import { AuthenticationFailedError, ConfusedDeputyError } from '../shared/errors';
import { openClient, withClient } from '../shared/pg-connection';
import { alternateUsername, type DbSecret } from '../shared/secret';
import type { StepContext } from './context';
import { terminateSessions } from './gates/sessions';
import { loadMaster } from './master-secret';
import { revocationGuard } from './revocation-guard';
import { assertNotMorePrivileged, createAlternateRole, findRole, setRolePassword } from './roles';
import { readCurrent, readPending, targetOf } from './secrets';

export async function setSecret(ctx: StepContext): Promise<void> {
  const current = await readCurrent(ctx);
  const pending = await readPending(ctx);
  assertSameIdentityPair(current, pending);
  if (await logsIn(ctx, pending)) {
    ctx.logger.info('setSecret: the pending credential already logs in; nothing to do', { username: pending.username });
    return;
  }
  const master = await loadMaster(ctx, current);
  await withClient(master.target, master.credential, connectionOptions(ctx), async (c) => {
    const existing = await findRole(c, pending.username);
    if (existing) {
      assertNotMorePrivileged(existing, await findRole(c, current.username), master.credential.username);
      await revocationGuard(ctx, { username: pending.username, current, master: c });
      await setRolePassword(c, { role: pending.username, password: pending.password, ownerRole: pending.ownerRole, current: current.username });
      if (ctx.overrides.emergency) {
        // A new password does not end sessions opened with the old one; a client that reconnected
        // between the guard's termination and the ALTER would otherwise keep the suspect credential.
        const late = await terminateSessions(c, pending.username);
        if (late.length > 0) {
          ctx.logger.warn('EMERGENCY: terminated sessions opened with the old password during the change', {
            username: pending.username,
            sessions: late.map((x) => ({ pid: x.pid, applicationName: x.applicationName, clientAddr: x.clientAddr })),
          });
        }
      }
      ctx.logger.info('setSecret: changed the password of the alternate user', { username: pending.username, generation: pending.generation });
    } else {
      await createAlternateRole(c, {
        alternate: pending.username,
        current: current.username,
        password: pending.password,
        dbname: current.dbname,
        ownerRole: pending.ownerRole,
      });
      ctx.logger.info('setSecret: created the alternate user', { username: pending.username, generation: pending.generation });
    }
  });
}

/**
 * The pending secret must describe the alternate user of the current one on the same database,
 * with the same master; anything else could make the master change an unrelated role.
 */
function assertSameIdentityPair(current: DbSecret, pending: DbSecret): void {
  const expected = alternateUsername(current);
  if (pending.username !== expected) {
    throw new ConfusedDeputyError(
      `AWSPENDING user "${pending.username}" is not the alternate of AWSCURRENT user "${current.username}" (expected "${expected}")`,
    );
  }
  for (const field of ['host', 'port', 'dbname', 'masterarn'] as const) {
    if (pending[field] !== current[field]) {
      throw new ConfusedDeputyError(`AWSPENDING field "${field}" differs from AWSCURRENT; refusing to act on another database`);
    }
  }
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

export function connectionOptions(ctx: StepContext) {
  return {
    caBundlePath: ctx.config.caBundlePath,
    connectTimeoutMs: ctx.config.connectTimeoutMs,
    statementTimeoutMs: ctx.config.statementTimeoutMs,
    applicationName: 'converge-rotation',
  };
}
