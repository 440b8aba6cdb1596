/**
 * Secret values for the consumer tests.
 */
import type { SecretSnapshot, SecretVersion } from '../../../consumer/secret-source';
import { parseSecret } from '../../../lambda/shared/secret';

export interface SecretFields {
  readonly username: string;
  readonly password: string;
  readonly generation: number;
  readonly host?: string;
  readonly port?: number;
  readonly dbname?: string;
}

/** The JSON of a database secret. */
export function secretJson(f: SecretFields): string {
  return JSON.stringify({
    engine: 'postgres',
    host: f.host ?? 'localhost',
    port: f.port ?? 5432,
    username: f.username,
    password: f.password,
    dbname: f.dbname ?? 'app',
    masterarn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf',
    ssl: 'verify-full',
    generation: f.generation,
    team: 'payments',
  });
}

/** A parsed version. */
export function version(versionId: string, f: SecretFields): SecretVersion {
  return { ...parseSecret(secretJson(f)), versionId };
}

/** A snapshot from versions. */
export function snapshot(current: SecretVersion, pending?: SecretVersion): SecretSnapshot {
  return pending ? { current, pending } : { current };
}

/** A promise with its resolve/reject exposed. */
export function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves at the next emission of `event`, with its arguments. */
export function nextEvent<A extends unknown[]>(
  emitter: { once(event: string, listener: (...args: A) => void): unknown },
  event: string,
): Promise<A> {
  return new Promise<A>((resolve) => emitter.once(event, (...args: A) => resolve(args)));
}
