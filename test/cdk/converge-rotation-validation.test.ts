import { Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { ConsumerMode } from '../../lambda/shared/registry';
import {
  ConvergeRotation,
  RotationScheduleExpression,
  type ConvergeRotationProps,
} from '../../lib';
import { fixture, type Fixture } from './fixtures';

describe('ConvergeRotation prop validation', () => {
  let f: Fixture;

  beforeEach(() => {
    f = fixture();
  });

  let built = 0;
  /** A fresh construct ID per call: a construct joins the tree before its props are checked. */
  function build(props: Partial<ConvergeRotationProps>): () => ConvergeRotation {
    return () => new ConvergeRotation(f.stack, `Rotation${++built}`, { ...f.props, ...props });
  }

  describe('schedule', () => {
    test('automaticallyAfter under 4 hours', () => {
      // GIVEN / WHEN / THEN
      expect(build({ automaticallyAfter: Duration.hours(3) })).toThrow(
        /automaticallyAfter must not be smaller than 4 hours \(Secrets Manager's minimum\), got 3 hours/,
      );
    });

    test('a rate expression under 4 hours', () => {
      // GIVEN / WHEN / THEN
      expect(build({ schedule: RotationScheduleExpression.expression('rate(2 hours)') })).toThrow(
        /schedule must not be smaller than 4 hours.*got rate\(2 hours\)/,
      );
    });

    test('a rate that is not a whole number of hours', () => {
      // GIVEN / WHEN / THEN
      expect(build({ automaticallyAfter: Duration.minutes(270) })).toThrow(
        /automaticallyAfter must be a whole number of hours, got 4 hours 30 minutes/,
      );
    });

    test('a rate over 999 days', () => {
      // GIVEN / WHEN / THEN
      expect(build({ automaticallyAfter: Duration.days(1000) })).toThrow(
        /must not be greater than 999 days, got 1000 days/,
      );
    });

    test('a cron expression with minutes', () => {
      // GIVEN / WHEN / THEN
      expect(
        build({ schedule: RotationScheduleExpression.expression('cron(30 4 * * ? *)') }),
      ).toThrow(
        /must have 0 in the minutes field \(Secrets Manager rotation windows open on the hour\), got "30" in "cron\(30 4 \* \* \? \*\)"/,
      );
    });

    test('a cron expression running more often than every 4 hours', () => {
      // GIVEN / WHEN / THEN
      expect(
        build({ schedule: RotationScheduleExpression.expression('cron(0 */2 * * ? *)') }),
      ).toThrow(
        /must not rotate more often than every 4 hours, got every 2 hours in "cron\(0 \*\/2 \* \* \? \*\)"/,
      );
      expect(build({ schedule: RotationScheduleExpression.cron({ hour: '1,3' }) })).toThrow(
        /got windows 2 hours apart/,
      );
    });

    test('a cron expression with a year, or without exactly one "?"', () => {
      // GIVEN / WHEN / THEN
      expect(
        build({ schedule: RotationScheduleExpression.expression('cron(0 4 * * ? 2030)') }),
      ).toThrow(/must have \* in the year field, got "2030"/);
      expect(
        build({ schedule: RotationScheduleExpression.expression('cron(0 4 * * * *)') }),
      ).toThrow(/\? in exactly one of day-of-month and day-of-week, got "\*" and "\*"/);
    });

    test('neither cron nor rate', () => {
      // GIVEN / WHEN / THEN
      expect(build({ schedule: RotationScheduleExpression.expression('every sunday') })).toThrow(
        /schedule must be a cron\(\) or rate\(\) expression, got "every sunday"/,
      );
    });

    test('both schedule forms at once', () => {
      // GIVEN / WHEN / THEN
      expect(
        build({
          automaticallyAfter: Duration.days(30),
          schedule: RotationScheduleExpression.cron({ hour: '3' }),
        }),
      ).toThrow(
        /give either automaticallyAfter or schedule, not both; got automaticallyAfter 30 days and schedule cron\(0 3 \* \* \? \*\)/,
      );
    });

    test('a window longer than the interval, past the UTC day, or not whole hours', () => {
      // GIVEN / WHEN / THEN
      expect(
        build({ automaticallyAfter: Duration.hours(6), rotationWindow: Duration.hours(8) }),
      ).toThrow(
        /rotationWindow must not extend into the next rotation window \(6 hours apart in rate\(6 hours\)\), got 8 hours/,
      );
      expect(
        build({
          schedule: RotationScheduleExpression.cron({ hour: '20' }),
          rotationWindow: Duration.hours(6),
        }),
      ).toThrow(
        /rotationWindow must not extend into the next UTC day \(it opens at 20:00 in cron\(0 20 \* \* \? \*\)\), got 6 hours/,
      );
      expect(build({ rotationWindow: Duration.minutes(90) })).toThrow(
        /rotationWindow must be a whole number of hours, at least 1, got 1 hour 30 minutes/,
      );
    });

    test('a valid window at the end of the day is accepted', () => {
      // GIVEN / WHEN
      build({
        schedule: RotationScheduleExpression.cron({ hour: '20' }),
        rotationWindow: Duration.hours(4),
      })();

      // THEN
      Template.fromStack(f.stack).hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
        RotationRules: { ScheduleExpression: 'cron(0 20 * * ? *)', Duration: '4h' },
      });
    });
  });

  describe('consumers', () => {
    test('an unknown consumer mode', () => {
      // GIVEN / WHEN / THEN
      expect(
        build({ consumers: [{ name: 'orders-api', mode: 'eventually' as ConsumerMode }] }),
      ).toThrow(
        /consumers\[0\]\.mode must be one of live, scheduled, restart-only, got "eventually" \(consumer "orders-api"\)/,
      );
    });

    test('duplicate consumer names', () => {
      // GIVEN / WHEN / THEN
      expect(
        build({
          consumers: [
            { name: 'orders-api', mode: 'live' },
            { name: 'orders-api', mode: 'scheduled' },
          ],
        }),
      ).toThrow(/consumers\[1\]\.name duplicates consumer "orders-api"/);
    });

    test('a name that cannot be a CloudWatch dimension value', () => {
      // GIVEN / WHEN / THEN
      expect(build({ consumers: [{ name: ' orders api', mode: 'live' }] })).toThrow(
        /consumers\[0\]\.name .* got " orders api"/,
      );
    });

    test('a staleness below the 10-second minimum', () => {
      // GIVEN / WHEN / THEN
      expect(
        build({
          consumers: [{ name: 'orders-api', mode: 'live', maxStaleness: Duration.seconds(5) }],
        }),
      ).toThrow(/consumers\[0\]\.maxStalenessSeconds must be a number of at least 10.*got 5/);
    });

    test('more live consumers than one alarm can read', () => {
      // GIVEN
      const consumers = Array.from({ length: 10 }, (_, i) => ({
        name: `svc-${i}`,
        mode: 'live' as const,
      }));

      // WHEN / THEN
      expect(build({ consumers })).toThrow(
        /at most 9 live consumers .* got 10: svc-0, svc-1, .*svc-9/,
      );
    });
  });

  describe('gate and function', () => {
    test('a timeout that does not hold the gate wait plus the margin', () => {
      // GIVEN / WHEN / THEN
      expect(
        build({ gate: { maxWait: Duration.minutes(10) }, timeout: Duration.minutes(5) }),
      ).toThrow(
        /timeout must exceed gate.maxWait \(600 seconds\) by at least 60 seconds and be at most 15 minutes, got 300 seconds/,
      );
      expect(
        build({ gate: { maxWait: Duration.minutes(10) }, timeout: Duration.seconds(630) }),
      ).toThrow(/got 630 seconds/);
    });

    test("a gate wait that leaves no margin in Lambda's 15 minutes", () => {
      // GIVEN / WHEN / THEN
      expect(build({ gate: { maxWait: Duration.minutes(15) } })).toThrow(
        /gate.maxWait must leave a 60-second margin in Lambda's 15-minute timeout, so at most 840 seconds, got 900 seconds/,
      );
    });

    test('the longest gate wait gets the longest timeout', () => {
      // GIVEN / WHEN
      build({ gate: { maxWait: Duration.seconds(840) } })();

      // THEN
      Template.fromStack(f.stack).hasResourceProperties('AWS::Lambda::Function', { Timeout: 900 });
    });

    test('stuckAfter shorter than the gate wait', () => {
      // GIVEN / WHEN / THEN
      expect(
        build({ gate: { maxWait: Duration.minutes(10), stuckAfter: Duration.minutes(5) } }),
      ).toThrow(/gate.stuckAfter must be at least gate.maxWait \(10 minutes\).*got 5 minutes/);
    });

    test("function settings are checked by the function's own configuration loader", () => {
      // GIVEN / WHEN / THEN
      expect(build({ passwordLength: 8 })).toThrow(
        /CONVERGE_PASSWORD_LENGTH must be an integer from 16 to 4096, got "8"/,
      );
      expect(build({ gate: { pollInterval: Duration.minutes(6) } })).toThrow(
        /CONVERGE_GATE_POLL_SECONDS must be an integer from 1 to 300, got "360"/,
      );
      expect(build({ connectTimeout: Duration.minutes(2) })).toThrow(
        /CONVERGE_CONNECT_TIMEOUT_MS must be an integer from 100 to 60000, got "120000"/,
      );
    });
  });
});
