import { freePort } from '../../cli/local/postgres';
import { AuthenticationFailedError, DatabaseConnectionError, TlsRequiredError } from '../../lambda/shared/errors';
import { openClient } from '../../lambda/shared/pg-connection';
import { freshDatabase, plainServer, tlsServer } from '../support/database';

describe('Function: openClient', () => {
  it('connects with verify-full over TLS against the local CA', async () => {
    // Prepare
    const db = await freshDatabase('conn');
    const srv = tlsServer();
    // Act
    const c = await openClient({ host: 'localhost', port: srv.port, dbname: db.dbname, ssl: 'verify-full' }, db.app, {
      caBundlePath: srv.caBundlePath,
    });
    const r = await c.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    await c.end();
    // Assess
    expect(r.rows[0].ssl).toBe(true);
  });

  it('refuses a server without TLS when verify-full is required (no fallback)', async () => {
    const srv = plainServer();
    await expect(
      openClient({ host: srv.host, port: srv.port, dbname: 'postgres', ssl: 'verify-full' }, srv.superuser),
    ).rejects.toThrow(TlsRequiredError);
  });

  it('refuses a certificate it cannot verify', async () => {
    const srv = tlsServer();
    await expect(
      openClient({ host: 'localhost', port: srv.port, dbname: 'postgres', ssl: 'verify-full' }, srv.superuser, {}),
    ).rejects.toThrow(/could not be verified/);
  });

  it('types a wrong password as AuthenticationFailedError without printing it', async () => {
    const srv = tlsServer();
    const password = 'definitely-wrong-password';
    const err = await openClient(
      { host: 'localhost', port: srv.port, dbname: 'postgres', ssl: 'verify-full' },
      { username: 'postgres', password },
      { caBundlePath: srv.caBundlePath },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthenticationFailedError);
    expect(String((err as Error).message)).not.toContain(password);
  });

  it('fails fast on a port nobody listens on', async () => {
    const port = await freePort();
    await expect(
      openClient({ host: '127.0.0.1', port, dbname: 'postgres', ssl: 'verify-full' }, { username: 'x', password: 'y' }, { connectTimeoutMs: 1000 }),
    ).rejects.toThrow(DatabaseConnectionError);
  });
});
