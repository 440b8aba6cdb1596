/**
 * Starts the PostgreSQL servers every test file shares: one with TLS (the default everywhere) and one
 * without (to prove verify-full refuses it). Connection facts reach the workers as environment
 * variables; each test file provisions its own database and roles (see ./database.ts).
 */
import { startLocalPostgres, type LocalPostgres } from '../../cli/local/postgres';

export default async function globalSetup(): Promise<void> {
  const [tls, plain] = await Promise.all([startLocalPostgres({ tls: true }), startLocalPostgres({ tls: false })]);
  (globalThis as { __convergePg?: LocalPostgres[] }).__convergePg = [tls, plain];
  process.env.CONVERGE_TEST_PG = JSON.stringify(describe(tls));
  process.env.CONVERGE_TEST_PG_PLAIN = JSON.stringify(describe(plain));
}

function describe(pg: LocalPostgres) {
  return { host: pg.host, port: pg.port, superuser: pg.superuser, caBundlePath: pg.caBundlePath, tls: pg.tls };
}
