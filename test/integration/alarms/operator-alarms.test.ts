/**
 * The operator alarms as the stack deploys them, evaluated against what really happens: the real
 * rotation function (its EMF metrics go into the local CloudWatch model), the local Lambda model
 * (which publishes Invocations, Errors and Throttles as Lambda does) and the synthesized alarm and
 * rule definitions of ConvergeRotation (cli/local/alarm-evaluation.ts evaluates them).
 */
import { Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import {
  evaluateAlarm,
  type AlarmDefinition,
  type AlarmState,
} from '../../../cli/local/alarm-evaluation';
import { CloudWatchModel } from '../../../cli/local/cloudwatch-model';
import { installCloudWatchModel } from '../../../cli/local/install';
import { LambdaModel } from '../../../cli/local/lambda-model';
import { createRotationHandler, ENV, loadConfig } from '../../../lambda/rotation';
import type { Clock } from '../../../lambda/rotation/context';
import { ConvergeRotation, type ConsumerOptions } from '../../../lib';
import { fixture } from '../../cdk/fixtures';
import { createRotationHarness, type RotationHarness } from '../../support/rotation-harness';
import { only, resolveIntrinsics, resources, type Json } from '../../support/template';

const FUNCTION_NAME = 'converge-rotation';
const FUNCTION_ARN = `arn:aws:lambda:us-east-1:123456789012:function:${FUNCTION_NAME}`;
const FAILURE_RULE_NAME = 'converge-rotation-failure-events';
const CHECK_INTERVAL_MS = 5 * 60_000;

/** Simulated time for the function, CloudWatch and the alarms: sleeping advances it. */
let offset = 0;
const clock: Clock = {
  now: () => Date.now() + offset,
  sleep: async (ms) => {
    offset += ms;
  },
};
const cw = new CloudWatchModel({ now: clock.now });
installCloudWatchModel(cw);

/** The stack's alarms and the check event, with every reference resolved to the local names. */
interface Deployed {
  readonly stuck: AlarmDefinition;
  readonly failed: AlarmDefinition;
  readonly checkEvent: unknown;
  readonly failureRuleName: string;
}

function deploy(h: RotationHarness, consumers: ConsumerOptions[] = []): Deployed {
  const f = fixture();
  const secret = secretsmanager.Secret.fromSecretCompleteArn(f.stack, 'Harness', h.secretArn);
  new ConvergeRotation(f.stack, 'Rotation', {
    ...f.props,
    secret,
    consumers,
    gate: { maxWait: Duration.minutes(10), stuckAfter: Duration.hours(1) },
  });
  const template = Template.fromStack(f.stack).toJSON() as Json;
  const [fnId] = only(resources(template, 'AWS::Lambda::Function'), 'rotation function');
  const rules = resources(template, 'AWS::Events::Rule');
  const [failureRuleId] = only(
    rules.filter(([, p]) => JSON.stringify(p.EventPattern ?? {}).includes('RotationFailed')),
    'failure events rule',
  );
  const refs = { [fnId]: FUNCTION_NAME, [failureRuleId]: FAILURE_RULE_NAME };
  const alarms = resources(template, 'AWS::CloudWatch::Alarm');
  const alarm = (text: string) =>
    resolveIntrinsics(
      only(
        alarms.filter(([, p]) => String(p.AlarmDescription).includes(text)),
        `alarm "${text}"`,
      )[1],
      refs,
    ) as AlarmDefinition;
  const [, checkRule] = only(
    rules.filter(([, p]) => p.ScheduleExpression !== undefined),
    'schedule rule',
  );
  expect(checkRule.ScheduleExpression).toBe('rate(5 minutes)');
  return {
    stuck: alarm('has been pending for more than'),
    failed: alarm('failed: a step failed'),
    checkEvent: JSON.parse((checkRule.Targets as { Input: string }[])[0].Input),
    failureRuleName: FAILURE_RULE_NAME,
  };
}

/** What EventBridge's schedule does every five minutes: invoke the function with the rule's input. */
async function scheduledCheck(lambda: LambdaModel, event: unknown): Promise<void> {
  await clock.sleep(CHECK_INTERVAL_MS);
  await lambda.invoke({
    FunctionName: FUNCTION_ARN,
    Payload: new Uint8Array(Buffer.from(JSON.stringify(event))),
  });
}

/** Invokes the function as Secrets Manager does (synchronously); true when it failed. */
async function invokeStep(lambda: LambdaModel, event: unknown): Promise<boolean> {
  const out = await lambda.invoke({
    FunctionName: FUNCTION_ARN,
    Payload: new Uint8Array(Buffer.from(JSON.stringify(event))),
  });
  return out.FunctionError !== undefined;
}

/** The alarm's state once the current five-minute period is complete. */
async function stateAfterPeriod(alarm: AlarmDefinition): Promise<AlarmState> {
  await clock.sleep(CHECK_INTERVAL_MS);
  return evaluateAlarm(cw, alarm).state;
}

async function harness(prefix: string, env: Record<string, string> = {}): Promise<RotationHarness> {
  return createRotationHarness({
    prefix,
    env,
    deps: { clock, writeMetric: (line) => void cw.putEmbeddedMetricLine(line) },
  });
}

describe('RotationStuck', () => {
  test('a rotation left pending with no invocation running raises RotationStuck within its window, and silence is not OK', async () => {
    // GIVEN the stack's alarm and schedule, and nothing pending for a while
    const h = await harness('stuck');
    const deployed = deploy(h);
    const lambda = new LambdaModel({ cloudWatch: cw });
    lambda.register(FUNCTION_ARN, (e) => h.handler(e as never));
    for (let i = 0; i < 3; i++) await scheduledCheck(lambda, deployed.checkEvent);
    expect(evaluateAlarm(cw, deployed.stuck).state).toBe('OK');

    // WHEN a rotation is left pending after createSecret (its chain broke: no invocation runs)
    const token = h.begin();
    await h.step('createSecret', token);
    // The age the function computes: from the version's creation date (the model stamps it with the
    // real time, the function reads it against the simulated clock).
    const created = h.model
      .listSecretVersionIds({ SecretId: h.secretArn })
      .Versions!.find((v) => v.VersionId === token)!.CreatedDate!;
    const pendingSince = new Date(created).getTime();
    const states: { minutes: number; state: AlarmState }[] = [];
    while (clock.now() - pendingSince < 2 * 3_600_000) {
      await scheduledCheck(lambda, deployed.checkEvent);
      states.push({
        minutes: (clock.now() - pendingSince) / 60_000,
        state: evaluateAlarm(cw, deployed.stuck).state,
      });
    }

    // THEN OK until the rotation has been pending for stuckAfter (1 hour), ALARM within one check after
    const firstAlarm = states.find((s) => s.state === 'ALARM');
    expect(firstAlarm).toBeDefined();
    expect(firstAlarm!.minutes).toBeGreaterThanOrEqual(60);
    expect(firstAlarm!.minutes).toBeLessThanOrEqual(60 + 2 * 5);
    expect(states.filter((s) => s.minutes < 55).every((s) => s.state === 'OK')).toBe(true);

    // AND when the checks stop arriving, the alarm is not OK
    await clock.sleep(3 * CHECK_INTERVAL_MS);
    expect(evaluateAlarm(cw, deployed.stuck).state).toBe('INSUFFICIENT_DATA');
  });
});

describe('RotationFailed', () => {
  test('a function that cannot even start (init error: nothing the handler could count) raises RotationFailed', async () => {
    // GIVEN the stack's alarm, and a function whose configuration does not load at cold start
    const h = await harness('initfail');
    const deployed = deploy(h);
    const lambda = new LambdaModel({ cloudWatch: cw });
    lambda.registerWithInit(FUNCTION_ARN, () => {
      const handler = createRotationHandler({
        config: loadConfig({ [ENV.consumers]: '{not json' }),
        clock,
      });
      return (e) => handler(e as never);
    });
    expect(await stateAfterPeriod(deployed.failed)).toBe('OK');

    // WHEN Secrets Manager invokes it
    const failed = await invokeStep(lambda, {
      Step: 'createSecret',
      SecretId: h.secretArn,
      ClientRequestToken: h.begin(),
    });

    // THEN
    expect(failed).toBe(true);
    expect(await stateAfterPeriod(deployed.failed)).toBe('ALARM');
    expect(await stateAfterPeriod(deployed.failed)).toBe('OK');
  });

  test('a throttled invocation raises RotationFailed', async () => {
    // GIVEN
    const h = await harness('throttled');
    const deployed = deploy(h);
    const lambda = new LambdaModel({ cloudWatch: cw });
    lambda.register(FUNCTION_ARN, (e) => h.handler(e as never));
    lambda.throttle(FUNCTION_NAME);

    // WHEN
    await expect(
      invokeStep(lambda, {
        Step: 'createSecret',
        SecretId: h.secretArn,
        ClientRequestToken: h.begin(),
      }),
    ).rejects.toThrow(/Rate Exceeded/);

    // THEN
    expect(await stateAfterPeriod(deployed.failed)).toBe('ALARM');
  });

  test("Secrets Manager's own RotationFailed event (the failure rule triggered) raises RotationFailed", async () => {
    // GIVEN
    const h = await harness('smevent');
    const deployed = deploy(h);
    expect(await stateAfterPeriod(deployed.failed)).toBe('OK');

    // WHEN EventBridge matches the failure rule (what AWS/Events publishes for it)
    cw.recordServiceMetric('AWS/Events', {
      MetricName: 'TriggeredRules',
      Dimensions: [{ Name: 'RuleName', Value: deployed.failureRuleName }],
      Value: 1,
      Unit: 'Count',
    });

    // THEN
    expect(await stateAfterPeriod(deployed.failed)).toBe('ALARM');
  });

  test('a step that fails in the handler raises RotationFailed; the promotion gate holding does not', async () => {
    // GIVEN a live consumer that never reports, so the gate holds finishSecret
    const h = await harness('gatehold', {
      [ENV.consumers]: JSON.stringify([
        { name: 'orders-api', mode: 'live', maxStalenessSeconds: 60 },
      ]),
      [ENV.gateMaxWaitSeconds]: '60',
      [ENV.gatePollSeconds]: '10',
    });
    const deployed = deploy(h, [{ name: 'orders-api', mode: 'live' }]);
    const lambda = new LambdaModel({ cloudWatch: cw });
    lambda.register(FUNCTION_ARN, (e) => h.handler(e as never));
    const token = h.begin();
    for (const step of ['createSecret', 'setSecret', 'testSecret']) {
      expect(
        await invokeStep(lambda, { Step: step, SecretId: h.secretArn, ClientRequestToken: token }),
      ).toBe(false);
    }
    expect(await stateAfterPeriod(deployed.failed)).toBe('OK');

    // WHEN finishSecret is held by the gate (an Error for Lambda, twice, as Secrets Manager retries)
    for (let i = 0; i < 2; i++) {
      const held = await invokeStep(lambda, {
        Step: 'finishSecret',
        SecretId: h.secretArn,
        ClientRequestToken: token,
      });
      expect(held).toBe(true);
    }

    // THEN no alarm: a hold is the gate working
    expect(await stateAfterPeriod(deployed.failed)).toBe('OK');

    // AND a step that really fails (a token Secrets Manager never staged) does raise it
    const failed = await invokeStep(lambda, {
      Step: 'setSecret',
      SecretId: h.secretArn,
      ClientRequestToken: 'not-a-staged-token-0000000000000000',
    });
    expect(failed).toBe(true);
    expect(await stateAfterPeriod(deployed.failed)).toBe('ALARM');
  });
});
