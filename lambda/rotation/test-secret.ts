/**
 * testSecret: log in as the pending user over TLS, run a query, and check it can use every role
 * the current user can.
 */
import { PrivilegeMismatchError } from '../shared/errors';
import { withClient } from '../shared/pg-connection';
import type { StepContext } from './context';
import { missingMemberships } from './roles';
import { readCurrent, readPending, targetOf } from './secrets';
import { connectionOptions } from './set-secret';

export async function testSecret(ctx: StepContext): Promise<void> {
  const current = await readCurrent(ctx);
  const pending = await readPending(ctx);
  const missing = await withClient(targetOf(pending), pending, connectionOptions(ctx), async (c) => {
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
