/**
 * testSecret: log in as the pending user over TLS, run a query, and check it can use every role
 * the current user can.
 *
 * When Secrets Manager enables rotation without rotating immediately, it tests the configuration
 * by staging an empty AWSPENDING version and running this step alone. With no pending value to
 * test, the step then checks what a rotation will need: AWSCURRENT parses, the master secret is
 * readable and belongs to the same database, and the current user logs in over TLS.
 */
import { PrivilegeMismatchError } from '../shared/errors';
import { targetOf, withClient } from '../shared/pg-connection';
import { connectionOptions, pinnedConnectionOptions } from './connections';
import type { StepContext } from './context';
import { loadMaster } from './master-secret';
import { missingMemberships } from './roles';
import { readCurrent, readPendingIfAny } from './secrets';

export async function testSecret(ctx: StepContext): Promise<void> {
  const current = await readCurrent(ctx);
  const pending = await readPendingIfAny(ctx);
  if (!pending) {
    await loadMaster(ctx, current);
    await withClient(targetOf(current), current, connectionOptions(ctx), (c) => c.query('SELECT 1'));
    ctx.logger.info('testSecret: configuration test passed (no pending value: rotation enabled without rotating now)', {
      username: current.username,
      generation: current.generation,
    });
    return;
  }
  // The pending user's session gets the pinned search path too: the membership check below must
  // read the catalog, not a look-alike function the user created.
  const missing = await withClient(targetOf(pending), pending, pinnedConnectionOptions(ctx), async (c) => {
    await c.query('SELECT 1');
    return missingMemberships(c, current.username);
  });
  if (missing.length > 0) {
    throw new PrivilegeMismatchError(
      `pending user "${pending.username}" cannot use role(s) that "${current.username}" can: ${missing.join(', ')}`,
    );
  }
  ctx.logger.info('testSecret: the pending credential logs in and matches the current role', {
    username: pending.username,
    generation: pending.generation,
  });
}
