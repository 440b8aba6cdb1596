import { freePort } from '../../cli/local/postgres';
import {
  AuthenticationFailedError,
  DatabaseConnectionError,
  TlsRequiredError,
} from '../../lambda/shared/errors';
import { openClient, withClient } from '../../lambda/shared/pg-connection';
import { asSuperuser, freshDatabase, plainServer, tlsServer } from '../support/database';

describe('Function: openClient', () => {
  it('connects with verify-full over TLS against the local CA', async () => {
    // Prepare
    const db = await freshDatabase('conn');
    const srv = tlsServer();
    // Act
    const c = await openClient(
      { host: 'localhost', port: srv.port, dbname: db.dbname, ssl: 'verify-full' },
      db.app,
      {
        caBundlePath: srv.caBundlePath,
      },
    );
    const r = await c.query<{ ssl: boolean }>(
      'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
    );
    await c.end();
    // Assess
    expect(r.rows[0].ssl).toBe(true);
  });

  it('refuses a server without TLS when verify-full is required (no fallback)', async () => {
    const srv = plainServer();
    await expect(
      openClient(
        { host: srv.host, port: srv.port, dbname: 'postgres', ssl: 'verify-full' },
        srv.superuser,
      ),
    ).rejects.toThrow(TlsRequiredError);
  });

  it('refuses a certificate it cannot verify', async () => {
    const srv = tlsServer();
    await expect(
      openClient(
        { host: 'localhost', port: srv.port, dbname: 'postgres', ssl: 'verify-full' },
        srv.superuser,
        {},
      ),
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
      openClient(
        { host: '127.0.0.1', port, dbname: 'postgres', ssl: 'verify-full' },
        { username: 'x', password: 'y' },
        { connectTimeoutMs: 1000 },
      ),
    ).rejects.toThrow(DatabaseConnectionError);
  });
});

describe('Function: withClient', () => {
  // Found by the model-based test (test/model): a connection dropped in the middle of setSecret or
  // testSecret surfaced as a plain "Connection terminated unexpectedly" Error, untyped.
  it('types a connection that breaks while in use as DatabaseConnectionError naming the target', async () => {
    // Prepare
    const db = await freshDatabase('lost');
    const srv = tlsServer();
    // Act
    const err = await withClient(
      { host: 'localhost', port: srv.port, dbname: db.dbname, ssl: 'verify-full' },
      db.app,
      { caBundlePath: srv.caBundlePath },
      async (c) => {
        (
          c as unknown as { connection: { stream: { destroy(): void } } }
        ).connection.stream.destroy();
        return c.query('SELECT 1');
      },
    ).catch((e: unknown) => e as Error);
    // Assess
    expect(err).toBeInstanceOf(DatabaseConnectionError);
    expect((err as Error).message).toContain(
      `localhost:${srv.port}/${db.dbname} as "${db.app.username}" broke while in use`,
    );
    expect((err as Error).message).not.toContain(db.app.password);
  });

  // Found by the model-based test: the server ending the session (FATAL 57P01, an administrator's
  // command or a failover) in the middle of setSecret or testSecret surfaced as an untyped error.
  it('types the server ending the session while in use (FATAL 57P01) as DatabaseConnectionError', async () => {
    // Prepare
    const db = await freshDatabase('ended');
    const srv = tlsServer();
    // Act
    const err = await withClient(
      { host: 'localhost', port: srv.port, dbname: db.dbname, ssl: 'verify-full' },
      db.app,
      { caBundlePath: srv.caBundlePath },
      async (c) => {
        c.on('error', () => undefined);
        const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
        await asSuperuser(db.dbname, (admin) =>
          admin.query('SELECT pg_terminate_backend($1, 5000)', [pid]),
        );
        return c.query('SELECT 1');
      },
    ).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    // Assess
    expect(err).toBeInstanceOf(DatabaseConnectionError);
    expect(err?.message).toContain('broke while in use');
  });

  it('leaves SQL errors as they are (a statement error is not a broken connection)', async () => {
    const db = await freshDatabase('sqlerr');
    const srv = tlsServer();
    const err = await withClient(
      { host: 'localhost', port: srv.port, dbname: db.dbname, ssl: 'verify-full' },
      db.app,
      { caBundlePath: srv.caBundlePath },
      (c) => c.query('SELECT * FROM no_such_table'),
    ).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err).not.toBeInstanceOf(DatabaseConnectionError);
    expect(err?.code).toBe('42P01');
  });
});
