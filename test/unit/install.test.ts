import { CloudWatchClient, DescribeAlarmsCommand, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
  TagResourceCommand,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { CloudWatchModel } from '../../cli/local/cloudwatch-model';
import { answerCloudWatch, answerSecretsManager } from '../../cli/local/install';
import { SecretsManagerModel } from '../../cli/local/secrets-manager-model';

describe('Function: answerSecretsManager / answerCloudWatch (one dispatching fake per stub)', () => {
  const sm = mockClient(SecretsManagerClient);
  const cw = mockClient(CloudWatchClient);
  afterAll(() => {
    sm.restore();
    cw.restore();
  });
  beforeEach(() => {
    sm.reset();
    cw.reset();
  });

  it('answers each command from the model and runs the hook with its operation name first', async () => {
    // Prepare
    const model = new SecretsManagerModel();
    const seen: string[] = [];
    answerSecretsManager(sm, model, (op) => void seen.push(op));
    const { ARN } = model.createSecret({ Name: 'orders', SecretString: '{"v":1}' });
    const client = new SecretsManagerClient({});
    // Act
    const value = await client.send(new GetSecretValueCommand({ SecretId: ARN }));
    const described = await client.send(new DescribeSecretCommand({ SecretId: ARN }));
    // Assess
    expect(value.SecretString).toBe('{"v":1}');
    expect(described.Name).toBe('orders');
    expect(seen).toEqual(['GetSecretValue', 'DescribeSecret']);
  });

  it('a failing hook fails the call before the model changes anything', async () => {
    // Prepare
    const model = new SecretsManagerModel();
    answerSecretsManager(sm, model, (op) => {
      if (op === 'TagResource') throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    });
    const { ARN } = model.createSecret({ Name: 'orders', SecretString: '{}' });
    const client = new SecretsManagerClient({});
    // Act
    const tagged = client.send(new TagResourceCommand({ SecretId: ARN, Tags: [{ Key: 'k', Value: 'v' }] }));
    // Assess
    await expect(tagged).rejects.toThrow('Rate exceeded');
    expect(model.describeSecret({ SecretId: ARN }).Tags ?? []).toEqual([]);
  });

  it('a command no model answers fails with an error that names it', async () => {
    // Prepare
    answerCloudWatch(cw, new CloudWatchModel());
    // Act
    const call = new CloudWatchClient({}).send(new DescribeAlarmsCommand({}));
    // Assess
    await expect(call).rejects.toThrow('the local CloudWatch model does not answer DescribeAlarmsCommand');
  });

  it('a test override of one command with stub.on() takes precedence over the model', async () => {
    // Prepare
    const model = new CloudWatchModel();
    answerCloudWatch(cw, model);
    cw.on(PutMetricDataCommand).rejects(Object.assign(new Error('boom'), { name: 'InternalServiceError' }));
    // Act
    const put = new CloudWatchClient({}).send(
      new PutMetricDataCommand({ Namespace: 'Converge', MetricData: [{ MetricName: 'M', Value: 1 }] }),
    );
    // Assess
    await expect(put).rejects.toThrow('boom');
    expect(cw).toHaveReceivedCommandTimes(PutMetricDataCommand, 1);
  });
});
