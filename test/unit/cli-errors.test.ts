import { DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import { defaultClients } from '../../cli/clients';
import {
  attachAwsContext,
  awsContextOf,
  describeCliError,
  type AwsCallContext,
} from '../../cli/errors';
import { MasterSecretError } from '../../lambda/shared/errors';

describe('Function: describeCliError', () => {
  it.each([
    [
      Object.assign(new Error('Could not load credentials from any providers'), {
        name: 'CredentialsProviderError',
      }),
      /^no AWS credentials found: set AWS_PROFILE/,
    ],
    [
      Object.assign(new Error('User is not authorized to perform: secretsmanager:DescribeSecret'), {
        name: 'AccessDeniedException',
      }),
      /^missing permission \(AccessDeniedException\): User is not authorized/,
    ],
    [
      Object.assign(new Error("Secrets Manager can't find the specified secret."), {
        name: 'ResourceNotFoundException',
      }),
      /^not found: Secrets Manager can't find/,
    ],
    [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
      /^cannot reach the AWS endpoint \(ECONNREFUSED\)/,
    ],
    [new Error('Region is missing'), /^no AWS region: set AWS_REGION or pass --region/],
    [
      new MasterSecretError('master secret arn:x was not found'),
      /^master secret arn:x was not found$/,
    ],
  ])('turns %p into one actionable line', (err, expected) => {
    const line = describeCliError(err);
    expect(line).toMatch(expected);
    expect(line).not.toContain('\n');
  });

  const where: AwsCallContext = {
    service: 'Secrets Manager',
    region: 'us-east-1',
    endpoint: 'secretsmanager.us-east-1.amazonaws.com',
  };
  const named =
    'Secrets Manager (region us-east-1, endpoint secretsmanager.us-east-1.amazonaws.com, profile default chain)';

  it.each([
    [
      Object.assign(new Error('connect ETIMEDOUT 52.1.2.3:443'), { code: 'ETIMEDOUT' }),
      `cannot reach ${named}: connect ETIMEDOUT 52.1.2.3:443; check the network, the region and AWS_ENDPOINT_URL`,
    ],
    [
      Object.assign(new Error('getaddrinfo ENOTFOUND x'), { code: 'ENOTFOUND' }),
      `cannot reach ${named}: getaddrinfo ENOTFOUND x; check the network, the region and AWS_ENDPOINT_URL`,
    ],
    [
      Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' }),
      `missing permission (AccessDeniedException) on ${named}: not authorized`,
    ],
    [
      Object.assign(new Error("can't find the specified secret."), {
        name: 'ResourceNotFoundException',
      }),
      `not found on ${named}: can't find the specified secret.`,
    ],
    [
      Object.assign(new Error('Could not load credentials from any providers'), {
        name: 'CredentialsProviderError',
      }),
      `no AWS credentials found for ${named}: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with a role`,
    ],
    [
      Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }),
      `ThrottlingException from ${named}: Rate exceeded`,
    ],
  ])('names the service, region, endpoint and profile of an AWS error: %p', (err, expected) => {
    attachAwsContext(err, where);
    expect(describeCliError(err)).toBe(expected);
  });

  it('names the profile when AWS_PROFILE chose it, and says when the region or endpoint is unknown', () => {
    const err = new Error('Region is missing');
    attachAwsContext(err, { service: 'CloudWatch', profile: 'oncall' });
    expect(describeCliError(err)).toBe(
      'no AWS region for CloudWatch (region not set, endpoint unresolved, profile oncall): set AWS_REGION or pass --region',
    );
  });

  it("keeps the context out of the error's own fields (logs and JSON of it are unchanged)", () => {
    const err = Object.assign(new Error('x'), { code: 'ECONNREFUSED' });
    attachAwsContext(err, where);
    expect(Object.keys(err)).toEqual(['code']);
    expect(awsContextOf(err)).toEqual(where);
  });
});

describe('Function: defaultClients', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('marks the errors of its calls with the endpoint they tried (AWS_ENDPOINT_URL), the region and the profile', async () => {
    // Prepare: jest's setup points every client at a closed port (AWS_ENDPOINT_URL=http://127.0.0.1:1).
    const { sm } = defaultClients('eu-central-1');
    // Act
    const err = await sm
      .send(new DescribeSecretCommand({ SecretId: 'orders-app' }))
      .catch((e: unknown) => e);
    // Assess
    expect(awsContextOf(err)).toEqual({
      service: 'Secrets Manager',
      region: 'eu-central-1',
      endpoint: '127.0.0.1:1',
      profile: undefined,
    });
    // (Under jest the socket error comes from another realm and the SDK wraps it, hiding its code;
    // test/e2e/cli-bin.test.ts checks the whole line from the real binary.)
    expect(describeCliError(err)).toContain(
      'Secrets Manager (region eu-central-1, endpoint 127.0.0.1:1, profile default chain): ',
    );
  });

  it("names the SDK's default endpoint of the service when the call failed before resolving one (no credentials)", async () => {
    // Prepare: no endpoint override, a profile that exists nowhere, no keys, no instance metadata.
    delete process.env.AWS_ENDPOINT_URL;
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    process.env.AWS_PROFILE = 'nobody';
    process.env.AWS_CONFIG_FILE = '/dev/null';
    process.env.AWS_SHARED_CREDENTIALS_FILE = '/dev/null';
    const { cw } = defaultClients('ap-southeast-2');
    // Act
    const err = await cw
      .send(new DescribeSecretCommand({ SecretId: 'x' }) as never)
      .catch((e: unknown) => e);
    // Assess
    expect(awsContextOf(err)).toEqual({
      service: 'CloudWatch',
      region: 'ap-southeast-2',
      endpoint: 'monitoring.ap-southeast-2.amazonaws.com',
      profile: 'nobody',
    });
    expect(describeCliError(err)).toMatch(
      /^no AWS credentials found for CloudWatch \(region ap-southeast-2, endpoint monitoring\.ap-southeast-2\.amazonaws\.com, profile nobody\)/,
    );
  });
});
