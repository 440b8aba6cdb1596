/**
 * The `SecretName` dimension the alarms read must be the name the rotation function reports under:
 * the one DescribeSecret returns (lambda/rotation/entry-checks.ts), never an ARN's resource name
 * with its suffix, never a name parsed wrongly from a partial ARN. Where the name cannot be known
 * at synth, synth fails and says to pass `secretName`.
 */
import { CfnParameter, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { ConvergeRotation, type ConvergeRotationProps } from '../../lib';
import { ACCOUNT, fixture, REGION, type Fixture } from './fixtures';

/** Live consumers, so all three alarms (ConvergenceLag, RotationStuck, RotationFailed) exist. */
const consumers: ConvergeRotationProps['consumers'] = [
  { name: 'orders-api', mode: 'live' },
  { name: 'nightly-report', mode: 'scheduled' },
];

/** The distinct `SecretName` dimension values of all alarms, in the template's own form. */
function alarmSecretNames(stack: Stack): unknown[] {
  const found: unknown[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(visit);
    } else if (node !== null && typeof node === 'object') {
      const o = node as Record<string, unknown>;
      if (o.Name === 'SecretName' && 'Value' in o) found.push(o.Value);
      Object.values(o).forEach(visit);
    }
  };
  const alarms = Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm');
  expect(Object.keys(alarms)).toHaveLength(3);
  visit(alarms);
  expect(found.length).toBeGreaterThanOrEqual(4); // PendingGeneration twice, a consumer, failures
  return [...new Set(found.map((v) => JSON.stringify(v)))].map((v) => JSON.parse(v) as unknown);
}

/** A string parameter, the usual way an ARN arrives as a token. */
function parameter(stack: Stack, id: string): string {
  return new CfnParameter(stack, id, { type: 'String' }).valueAsString;
}

const arn = (resourceName: string) =>
  `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${resourceName}`;

describe('ConvergeRotation: the SecretName dimension', () => {
  let f: Fixture;
  let stack: Stack;

  beforeEach(() => {
    f = fixture();
    stack = f.stack;
  });

  test('a secret imported by a token complete ARN fails synth and says to pass secretName', () => {
    // GIVEN
    const secret = secretsmanager.Secret.fromSecretCompleteArn(
      stack,
      'Imported',
      parameter(stack, 'SecretArn'),
    );

    // WHEN / THEN
    expect(
      () => new ConvergeRotation(stack, 'Rotation', { ...f.props, secret, consumers }),
    ).toThrow(
      /the name of the secret Test\/Imported cannot be known at synth: its complete ARN is only known at deployment.*Pass secretName: the secret's name as Secrets Manager reports it/,
    );
  });

  test('with a token ARN, the secretName prop is the dimension of every alarm', () => {
    // GIVEN
    const secret = secretsmanager.Secret.fromSecretCompleteArn(
      stack,
      'Imported',
      parameter(stack, 'SecretArn'),
    );

    // WHEN
    const rotation = new ConvergeRotation(stack, 'Rotation', {
      ...f.props,
      secret,
      secretName: 'orders/app-user',
      consumers,
    });

    // THEN
    expect(rotation.secretName).toBe('orders/app-user');
    expect(alarmSecretNames(stack)).toEqual(['orders/app-user']);
  });

  test('a token secretName (another parameter) is passed through as it is', () => {
    // GIVEN
    const secret = secretsmanager.Secret.fromSecretCompleteArn(
      stack,
      'Imported',
      parameter(stack, 'SecretArn'),
    );

    // WHEN
    new ConvergeRotation(stack, 'Rotation', {
      ...f.props,
      secret,
      secretName: parameter(stack, 'SecretName'),
      consumers,
    });

    // THEN
    expect(alarmSecretNames(stack)).toEqual([{ Ref: 'SecretName' }]);
  });

  test('a literal complete ARN: the name without the six-character suffix, hyphens kept', () => {
    // GIVEN
    const secret = secretsmanager.Secret.fromSecretCompleteArn(
      stack,
      'Imported',
      arn('orders-app-user-AbCdEf'),
    );

    // WHEN
    const rotation = new ConvergeRotation(stack, 'Rotation', { ...f.props, secret, consumers });

    // THEN
    expect(rotation.secretName).toBe('orders-app-user');
    expect(alarmSecretNames(stack)).toEqual(['orders-app-user']);
  });

  test('a literal partial ARN: its resource name is the whole name (aws-cdk-lib would cut "-master")', () => {
    // GIVEN
    const secret = secretsmanager.Secret.fromSecretPartialArn(
      stack,
      'Imported',
      arn('orders-master'),
    );
    expect(secret.secretName).toBe('orders'); // what the construct used to pass

    // WHEN
    const rotation = new ConvergeRotation(stack, 'Rotation', { ...f.props, secret, consumers });

    // THEN
    expect(rotation.secretName).toBe('orders-master');
    expect(alarmSecretNames(stack)).toEqual(['orders-master']);
  });

  test('a token partial ARN without secretName fails synth', () => {
    // GIVEN
    const secret = secretsmanager.Secret.fromSecretPartialArn(
      stack,
      'Imported',
      parameter(stack, 'SecretArn'),
    );

    // WHEN / THEN
    expect(() => new ConvergeRotation(stack, 'Rotation', { ...f.props, secret })).toThrow(
      /the name of the secret Test\/Imported cannot be known at synth: its partial ARN is only known at deployment.*Pass secretName/,
    );
  });

  test('a secret imported by name: that name', () => {
    // GIVEN
    const secret = secretsmanager.Secret.fromSecretNameV2(stack, 'ByName', 'orders/by-name');

    // WHEN
    const rotation = new ConvergeRotation(stack, 'Rotation', { ...f.props, secret, consumers });

    // THEN
    expect(rotation.secretName).toBe('orders/by-name');
    expect(alarmSecretNames(stack)).toEqual(['orders/by-name']);
  });

  test('a secret the stack creates with a name, attached to a database: that name, literally', () => {
    // GIVEN
    const database = new rds.DatabaseInstance(stack, 'Db', {
      engine: rds.DatabaseInstanceEngine.postgres({
        version: rds.PostgresEngineVersion.VER_17,
      }),
      vpc: f.vpc,
    });
    const secret = new rds.DatabaseSecret(stack, 'AppUser', {
      username: 'app_user',
      secretName: 'orders/owned-app-user',
      masterSecret: database.secret!,
    }).attach(database);

    // WHEN
    const rotation = new ConvergeRotation(stack, 'Rotation', {
      ...f.props,
      secret,
      masterSecret: database.secret!,
      database,
      consumers,
    });

    // THEN
    expect(rotation.secretName).toBe('orders/owned-app-user');
    expect(alarmSecretNames(stack)).toEqual(['orders/owned-app-user']);
  });

  test('a secret the stack creates without a name: the generated name, taken from its ARN without the suffix', () => {
    // GIVEN
    const secret = new secretsmanager.Secret(stack, 'Generated');
    const id = stack.getLogicalId(secret.node.defaultChild as secretsmanager.CfnSecret);
    // CloudFormation names it "<logical id>-<random>", and Secrets Manager appends "-<suffix>".
    const resourceName = { 'Fn::Select': [6, { 'Fn::Split': [':', { Ref: id }] }] };
    const segment = (i: number) => ({ 'Fn::Select': [i, { 'Fn::Split': ['-', resourceName] }] });

    // WHEN
    new ConvergeRotation(stack, 'Rotation', { ...f.props, secret, consumers });

    // THEN
    expect(alarmSecretNames(stack)).toEqual([{ 'Fn::Join': ['-', [segment(0), segment(1)]] }]);
  });

  test('a secretName that contradicts a literal ARN, or is an ARN, fails synth', () => {
    // GIVEN
    const build = (secretName: string) => () =>
      new ConvergeRotation(stack, `Rotation${secretName.length}`, { ...f.props, secretName });

    // WHEN / THEN
    expect(build('orders/other')).toThrow(
      /secretName "orders\/other" is not the name of the secret arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders\/app-user-AbCdEf, which is "orders\/app-user"/,
    );
    expect(build(arn('orders/app-user-AbCdEf'))).toThrow(
      /secretName must be the secret's name, not its ARN/,
    );
    expect(build('orders app user')).toThrow(
      /secretName must be 1-512 letters, digits and \/ _ \+ = \. @ - .*got "orders app user"/,
    );
  });
});
