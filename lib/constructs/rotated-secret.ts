/**
 * What ConvergeRotation must know about the secrets it is given, at synth: the rotated secret's
 * name as Secrets Manager reports it (the `SecretName` dimension of every converge metric), which
 * secret a given `ISecret` really is (to refuse one secret rotated twice, or used as its own
 * master), and whether a secret's `encryptionKey` is a key IAM statements can name.
 *
 * Internal to the constructs; not exported from `lib/index.ts`.
 */
import { ArnFormat, Stack, Token } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { IConstruct } from 'constructs';
import { ConfigurationError } from '../../lambda/shared/errors';
import { secretNameDimension } from '../../lambda/shared/metric-contract';
import { secretNameProblem } from '../../lambda/shared/report-document';

/** `arn:<partition>:secretsmanager:<region>:<account>:secret:<resource name>`. */
const SECRET_ARN = /^arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:(.+)$/;

/**
 * The secret a construct stands for: the `secretsmanager.Secret` itself for an owned secret and
 * for an attachment made with `secret.attach(...)` (an `rds.DatabaseInstance`'s `secret`, for
 * one), otherwise the given object.
 */
function underlying(secret: secretsmanager.ISecret): IConstruct {
  const owner = ownedSecret(secret);
  return owner ?? secret;
}

/** The `Secret` this stack (or app) creates behind `secret`, when there is one. */
function ownedSecret(secret: secretsmanager.ISecret): secretsmanager.Secret | undefined {
  if (secretsmanager.Secret.isSecret(secret)) return secret;
  // attach() and addTargetAttachment() create the attachment as a child of the secret.
  const scope = secret.node.scope;
  if (
    secret instanceof secretsmanager.SecretTargetAttachment &&
    secretsmanager.Secret.isSecret(scope)
  ) {
    return scope;
  }
  return undefined;
}

/** Either the name, or why it cannot be known at synth. */
type KnownName = { readonly name: string } | { readonly unknown: string };

/** The secret's name where it is truly known at synth (literal or a token CloudFormation resolves to it). */
function knownSecretName(secret: secretsmanager.ISecret): KnownName {
  const owned = ownedSecret(secret);
  if (owned) {
    const resource = owned.node.defaultChild;
    if (
      resource instanceof secretsmanager.CfnSecret &&
      typeof resource.name === 'string' &&
      !Token.isUnresolved(resource.name)
    ) {
      // The name the app gives it, as written.
      return { name: resource.name };
    }
    // A token name, or none (CloudFormation generates "<logical id>-<random>"): aws-cdk-lib's
    // secretName of an owned secret is then the given token, or a token that takes the
    // generated name out of the secret's ARN without the suffix. Either resolves to the name.
    return { name: owned.secretName };
  }

  const completeArn = secret.secretFullArn;
  if (completeArn !== undefined) {
    if (Token.isUnresolved(completeArn)) {
      return {
        unknown:
          'its complete ARN is only known at deployment, and the six-character suffix Secrets Manager appends to the name cannot be stripped from it in the template',
      };
    }
    const name = secretNameDimension(completeArn);
    if (name === completeArn) {
      return {
        unknown: `its complete ARN ${completeArn} does not end in the six-character suffix`,
      };
    }
    return { name };
  }

  // No complete ARN: imported by name, or by partial ARN (the ARN without the suffix, so its
  // resource name is exactly the secret's name).
  const arn = secret.secretArn;
  if (builtFromName(secret)) return { name: secret.secretName };
  if (!Token.isUnresolved(arn)) {
    const m = SECRET_ARN.exec(arn);
    if (m) return { name: m[1] };
    if (!arn.startsWith('arn:')) return { name: arn }; // Secret.fromSecretName (v1): the ARN is the name
    return { unknown: `${arn} is not a Secrets Manager secret ARN` };
  }
  return { unknown: 'its partial ARN is only known at deployment' };
}

/** Whether the secret's ARN is the partial ARN of its `secretName` (Secret.fromSecretNameV2). */
function builtFromName(secret: secretsmanager.ISecret): boolean {
  const stack = Stack.of(secret);
  const fromName = stack.formatArn({
    service: 'secretsmanager',
    resource: 'secret',
    resourceName: secret.secretName,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
  return (
    JSON.stringify(stack.resolve(fromName)) === JSON.stringify(stack.resolve(secret.secretArn))
  );
}

/**
 * The rotated secret's name as Secrets Manager reports it (DescribeSecret `Name`), which the
 * rotation function puts in the `SecretName` dimension of its metrics: `given` when it is passed
 * (checked against the name the secret itself shows, where that is known), else the name known
 * from the secret. Throws ConfigurationError when neither says it.
 *
 * @example
 * secretNameFor(Secret.fromSecretCompleteArn(scope, 'S', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders-AbCdEf'), undefined);
 * // 'orders'
 */
export function secretNameFor(secret: secretsmanager.ISecret, given: string | undefined): string {
  const known = knownSecretName(secret);
  if (given !== undefined) {
    if (!Token.isUnresolved(given)) {
      if (given.startsWith('arn:')) {
        throw new ConfigurationError(
          `secretName must be the secret's name, not its ARN, got ${JSON.stringify(given)}`,
        );
      }
      if (secretNameProblem(given) !== undefined) {
        throw new ConfigurationError(
          `secretName must be 1-512 letters, digits and / _ + = . @ - (a Secrets Manager secret name), got ${JSON.stringify(given)}`,
        );
      }
      if ('name' in known && !Token.isUnresolved(known.name) && known.name !== given) {
        throw new ConfigurationError(
          `secretName ${JSON.stringify(given)} is not the name of the secret ${describeSecret(secret)}, which is ${JSON.stringify(known.name)}`,
        );
      }
    }
    return given;
  }
  if ('name' in known) return known.name;
  throw new ConfigurationError(
    `the name of the secret ${describeSecret(secret)} cannot be known at synth: ${known.unknown}. Pass secretName: the secret's name as Secrets Manager reports it (DescribeSecret Name, without the six-character ARN suffix); the rotation function reports its metrics under that name and the alarms must read them there`,
  );
}

/**
 * Keys that identify the secret behind `secret` across the app: the construct it stands for, and
 * its ARN without the suffix (literal), or the ARN token as it resolves in `scope`'s stack.
 */
export interface SecretIdentity {
  readonly construct: IConstruct;
  readonly arnKey: string;
}

/**
 * The identity of a secret for duplicate checks.
 *
 * @example
 * const a = secretIdentity(rotation, props.secret);
 * const b = secretIdentity(rotation, props.masterSecret);
 * if (sameSecret(a, b)) throw new ConfigurationError('...');
 */
export function secretIdentity(scope: IConstruct, secret: secretsmanager.ISecret): SecretIdentity {
  const arn = secret.secretFullArn ?? secret.secretArn;
  let arnKey: string;
  if (Token.isUnresolved(arn)) {
    const stack = Stack.of(scope);
    arnKey = `token in ${stack.node.path}: ${JSON.stringify(stack.resolve(arn))}`;
  } else {
    // The partial form, so a complete and a partial ARN of one secret compare equal.
    arnKey = secret.secretFullArn !== undefined ? arn.replace(/-[A-Za-z0-9]{6}$/, '') : arn;
  }
  return { construct: underlying(secret), arnKey };
}

/** Whether two identities are one secret. */
export function sameSecret(a: SecretIdentity, b: SecretIdentity): boolean {
  return a.construct === b.construct || a.arnKey === b.arnKey;
}

/** The secret for an error message: its ARN when it is a literal, else its construct path. */
export function describeSecret(secret: secretsmanager.ISecret): string {
  const arn = secret.secretFullArn ?? secret.secretArn;
  return Token.isUnresolved(arn) ? underlying(secret).node.path : arn;
}

/**
 * Throws when a secret's `encryptionKey` is a KMS alias (an `IAlias`, or a key imported by an
 * alias ARN): IAM statements naming an alias apply to the alias resource, not to the key it
 * points to, so every KMS call of the rotation would be denied.
 *
 * @example
 * rejectKeyAlias(this, 'secret', props.secret.encryptionKey);
 */
export function rejectKeyAlias(
  scope: IConstruct,
  which: 'secret' | 'masterSecret',
  key: kms.IKey | undefined,
): void {
  if (key === undefined) return;
  const aliasName = (key as Partial<kms.IAlias>).aliasName;
  const resolvedArn = JSON.stringify(Stack.of(scope).resolve(key.keyArn));
  if (typeof aliasName !== 'string' && !/(^"|:)alias\//.test(resolvedArn)) return;
  const shown =
    [aliasName, key.keyArn]
      .map((v) => (typeof v === 'string' ? Stack.of(scope).resolve(v) : undefined))
      .find((v): v is string => typeof v === 'string') ?? key.node.path;
  throw new ConfigurationError(
    `${which}.encryptionKey must be a KMS key, not an alias, got ${shown}: IAM statements on an alias apply to the alias, not to the key behind it, so the key grants would not work. Import the key by its key ARN (kms.Key.fromKeyArn with arn:aws:kms:<region>:<account>:key/<key id>)`,
  );
}
