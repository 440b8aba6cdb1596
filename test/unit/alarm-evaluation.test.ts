import { evaluateAlarm, type AlarmDefinition } from '../../cli/local/alarm-evaluation';
import { CloudWatchModel } from '../../cli/local/cloudwatch-model';

const PERIOD = 300;
const T0 = Date.parse('2030-01-01T00:00:00Z');

function world() {
  let now = T0;
  const cw = new CloudWatchModel({ now: () => now });
  const put = (name: string, value: number, minutesAgo: number) =>
    cw.putMetricData({
      Namespace: 'Test',
      MetricData: [
        { MetricName: name, Value: value, Timestamp: new Date(now - minutesAgo * 60_000) },
      ],
    });
  return { cw, put, advance: (minutes: number) => void (now += minutes * 60_000) };
}

const stat = (id: string, name: string) => ({
  Id: id,
  ReturnData: false,
  MetricStat: { Metric: { Namespace: 'Test', MetricName: name }, Period: PERIOD, Stat: 'Sum' },
});

function mathAlarm(expression: string, extra: Partial<AlarmDefinition> = {}): AlarmDefinition {
  return {
    Metrics: [
      { Id: 'e', Expression: expression, ReturnData: true },
      stat('a', 'A'),
      stat('b', 'B'),
    ],
    EvaluationPeriods: 1,
    Threshold: 0,
    ComparisonOperator: 'GreaterThanThreshold',
    ...extra,
  };
}

describe('evaluateAlarm (local CloudWatch alarm evaluation)', () => {
  test('arithmetic with a missing operand is missing; FILL says what missing means', () => {
    // GIVEN A has a point in the last complete period, B has none
    const { cw, put, advance } = world();
    advance(10);
    put('A', 2, 3);

    // WHEN / THEN
    expect(evaluateAlarm(cw, mathAlarm('a - b')).state).toBe('INSUFFICIENT_DATA');
    expect(evaluateAlarm(cw, mathAlarm('FILL(a, 0) - FILL(b, 0)')).datapoints).toEqual([2]);
    expect(evaluateAlarm(cw, mathAlarm('FILL(a, 0) - FILL(b, 0)')).state).toBe('ALARM');
  });

  test('MIN, MAX of an array (also of a FILLed array) give one series', () => {
    const { cw, put, advance } = world();
    advance(10);
    put('A', 3, 3);
    expect(evaluateAlarm(cw, mathAlarm('MAX([a, b])')).datapoints).toEqual([3]);
    expect(evaluateAlarm(cw, mathAlarm('MIN([a, b])')).datapoints).toEqual([3]);
    expect(evaluateAlarm(cw, mathAlarm('MIN(FILL([a, b], 0))')).datapoints).toEqual([0]);
    expect(evaluateAlarm(cw, mathAlarm('-MAX([FILL(a, 1) * 2, 5 - 1])')).datapoints).toEqual([-6]);
  });

  test('missing-data treatments and M of N', () => {
    const { cw, put, advance } = world();
    advance(20);
    put('A', 1, 8); // in the second-to-last complete period
    const single = (treat: string, periods: number, toAlarm: number): AlarmDefinition => ({
      Namespace: 'Test',
      MetricName: 'A',
      Statistic: 'Sum',
      Period: PERIOD,
      EvaluationPeriods: periods,
      DatapointsToAlarm: toAlarm,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: treat,
    });
    expect(evaluateAlarm(cw, single('missing', 2, 1)).state).toBe('ALARM');
    expect(evaluateAlarm(cw, single('missing', 1, 1)).state).toBe('INSUFFICIENT_DATA');
    expect(evaluateAlarm(cw, single('notBreaching', 1, 1)).state).toBe('OK');
    expect(evaluateAlarm(cw, single('breaching', 1, 1)).state).toBe('ALARM');
    expect(evaluateAlarm(cw, single('ignore', 1, 1), { previousState: 'OK' }).state).toBe('OK');
    expect(evaluateAlarm(cw, single('notBreaching', 2, 2)).state).toBe('OK');
  });

  test('metric math it does not model is refused, not evaluated wrongly', () => {
    const { cw } = world();
    expect(() => evaluateAlarm(cw, mathAlarm('RATE(a)'))).toThrow(/RATE is not modelled/);
    expect(() => evaluateAlarm(cw, mathAlarm('a - c'))).toThrow(/unknown ids/);
    expect(() => evaluateAlarm(cw, mathAlarm('MIN(a)'))).toThrow(/only for an array/);
  });
});
