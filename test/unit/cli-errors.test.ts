import { describeCliError } from '../../cli/errors';
import { MasterSecretError } from '../../lambda/shared/errors';

describe('Function: describeCliError', () => {
  it.each([
    [Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }), /^no AWS credentials found: set AWS_PROFILE/],
    [Object.assign(new Error('User is not authorized to perform: secretsmanager:DescribeSecret'), { name: 'AccessDeniedException' }), /^missing permission \(AccessDeniedException\): User is not authorized/],
    [Object.assign(new Error("Secrets Manager can't find the specified secret."), { name: 'ResourceNotFoundException' }), /^not found: Secrets Manager can't find/],
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), /^cannot reach the AWS endpoint \(ECONNREFUSED\)/],
    [new Error('Region is missing'), /^no AWS region: set AWS_REGION or pass --region/],
    [new MasterSecretError('master secret arn:x was not found'), /^master secret arn:x was not found$/],
  ])('turns %p into one actionable line', (err, expected) => {
    const line = describeCliError(err);
    expect(line).toMatch(expected);
    expect(line).not.toContain('\n');
  });
});
