/**
 * A throw-away certificate authority and a server certificate for `localhost` / `127.0.0.1`, so the
 * local PostgreSQL speaks TLS that `verify-full` can really verify.
 */
import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

export interface LocalTlsMaterial {
  /** PEM of the CA certificate: what clients trust. */
  readonly caPem: string;
  /** PEM of the server certificate, signed by the CA. */
  readonly certPem: string;
  /** PEM (PKCS#8) of the server's private key. */
  readonly keyPem: string;
}

/**
 * Generates a CA and a server certificate valid for `localhost` and `127.0.0.1` for one day.
 *
 * @example
 * const { caPem, certPem, keyPem } = await generateLocalTls();
 */
export async function generateLocalTls(hosts: readonly string[] = ['localhost', '127.0.0.1']): Promise<LocalTlsMaterial> {
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 24 * 3600_000);
  const caKeys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    // A name of its own per CA: bundles that hold several local CAs (one per server) must not have
    // two issuers with the same name, or the verifier may try the wrong key.
    name: `CN=converge local CA ${randomBytes(6).toString('hex')}`,
    keys: caKeys,
    notBefore,
    notAfter,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const serverKeys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const server = await x509.X509CertificateGenerator.create({
    subject: `CN=${hosts[0]}`,
    issuer: ca.subject,
    notBefore,
    notAfter,
    signingKey: caKeys.privateKey,
    publicKey: serverKeys.publicKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        hosts.map((h) => ({ type: /^[\d.]+$/.test(h) ? ('ip' as const) : ('dns' as const), value: h })),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', serverKeys.privateKey);
  const keyPem = x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
  return { caPem: ca.toString('pem'), certPem: server.toString('pem'), keyPem };
}
