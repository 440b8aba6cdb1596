/**
 * What watches a converge rotation from CloudWatch: the promotion gate's alarm and the EventBridge
 * rule that re-drives finishSecret when the fleet has converged, the operator alarms (a rotation
 * stuck, a failed rotation), the rules that feed them, and a dashboard.
 *
 * The operator alarms must not go silent:
 * - RotationStuck reads the age of the waiting AWSPENDING version, which a schedule rule has the
 *   function publish every {@link CHECK_INTERVAL} (lambda/rotation/pending-check.ts), whether or not
 *   an invocation is running. When the checks stop arriving it goes to INSUFFICIENT_DATA, which
 *   notifies the same actions.
 * - RotationFailed is the maximum of four signals, each FILLed with 0 so that missing data means
 *   "nothing happened": step failures the handler saw (gate holds excluded), Lambda `Errors` the
 *   handler could not see (init errors, timeouts, out of memory; gate holds thrown to Lambda
 *   excluded), Lambda `Throttles`, and Secrets Manager's own RotationFailed / RotationAbandoned
 *   events (an EventBridge rule; its `TriggeredRules` metric).
 *
 * Metric math facts this relies on (CloudWatch user guide, "Using metric math"):
 * - `MIN([m1, m2, ...])` of an array of time series returns ONE time series, the minimum of the
 *   series at each timestamp. (The warning against MIN in alarms is about `MIN(m1)` of a single
 *   series, which collapses the whole retrieved range into one scalar; that form is never used.)
 * - `FILL(m, 0)` (also of an array) gives every period of the range a value: missing data is said
 *   to mean 0 rather than left to how arithmetic and the alarm treat gaps. `FILL(pending, 0) -
 *   MIN(FILL([...], 0))` is negative, so OK, while no rotation reports a pending generation, and
 *   positive, so ALARM, when the live consumers are behind it or silent.
 * - An alarm reads at most 10 metrics (PutMetricAlarm: up to 10 MetricStat and 10 expression
 *   queries), so the gate alarm supports PendingGeneration plus at most 9 live consumers.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { RedriveEvent } from '../../lambda/rotation/handler';
import type { CheckEvent } from '../../lambda/rotation/pending-check';
import { ConfigurationError } from '../../lambda/shared/errors';
import {
  CONVERGENCE_PENDING,
  DIMENSION_CONSUMER,
  DIMENSION_SECRET,
  GATE_HOLD_ERRORS,
  GATE_WAIT_SECONDS,
  LOADED_GENERATION,
  PENDING_AGE_SECONDS,
  PENDING_GENERATION,
  RELOAD_FAILURES,
  REPORT_PERIOD_SECONDS,
  ROTATION_STEP_FAILURES,
  ROTATIONS_COMPLETED,
} from '../../lambda/shared/metric-contract';
import { blastRadius, type ConsumerRegistration } from '../../lambda/shared/registry';

/** CloudWatch alarms read at most 10 metrics; one of them is PendingGeneration. */
export const MAX_LIVE_CONSUMERS_IN_ALARM = 9;
/** How often the schedule rule has the function publish the pending age. */
export const CHECK_INTERVAL = Duration.minutes(5);
/** Period of the stuck-rotation alarm: one pending check per period. */
const STUCK_PERIOD = CHECK_INTERVAL;
/**
 * Periods the stuck-rotation alarm looks at. One breaching check is enough (the value is an age);
 * two periods let one late check pass without INSUFFICIENT_DATA.
 */
const STUCK_EVALUATION_PERIODS = 2;
/** The Secrets Manager events (CloudTrail, service events) that mean a rotation did not complete. */
export const ROTATION_FAILURE_EVENTS = ['RotationFailed', 'RotationAbandoned'] as const;
/** Period of the failure alarm and the outcome graphs. */
const OUTCOME_PERIOD = Duration.minutes(5);

export interface ConvergenceMonitoringProps {
  /** The `SecretName` dimension value: the rotated secret's name (may be a token). */
  readonly secretName: string;
  /** The secret's ARN, sent to the function in the re-drive and check events. */
  readonly secretArn: string;
  /**
   * The secret's complete ARN (with Secrets Manager's six-character suffix), which its rotation
   * events carry. Without it, those events are matched by the prefix `<secretArn>-`.
   *
   * @default - matched by prefix
   */
  readonly secretFullArn?: string;
  /** CloudWatch namespace of every converge metric. */
  readonly namespace: string;
  /** The validated consumer registry. */
  readonly consumers: readonly ConsumerRegistration[];
  /** The rotation function (re-drive target, error graph). */
  readonly rotationFunction: lambda.IFunction;
  /** Longest wait of finishSecret within one invocation. */
  readonly gateMaxWait: Duration;
  /**
   * How long a rotation may stay pending (its AWSPENDING version waiting to become AWSCURRENT)
   * before the RotationStuck alarm asks an operator to decide.
   *
   * @default Duration.hours(1)
   */
  readonly stuckAfter?: Duration;
  /**
   * Actions for the operator alarms (RotationStuck and RotationFailed), for example an SNS topic;
   * RotationStuck also notifies them when it goes to INSUFFICIENT_DATA (the pending checks stopped).
   * The gate's ConvergenceLag alarm only drives the re-drive rule and gets no actions.
   *
   * @default - no actions
   */
  readonly alarmActions?: cloudwatch.IAlarmAction[];
  /**
   * Name of the dashboard.
   *
   * @default - a name CloudFormation generates
   */
  readonly dashboardName?: string;
}

/**
 * Alarms, the re-drive rule and the dashboard of one rotated secret.
 *
 * Children: `ConvergenceLagAlarm` and `RedriveRule` (only when live consumers are registered:
 * without them the gate never waits), `PendingCheckRule`, `RotationStuckAlarm`,
 * `RotationFailureEventsRule`, `RotationFailedAlarm`, `Dashboard`.
 */
export class ConvergenceMonitoring extends Construct {
  /** ALARM while live consumers lag a pending rotation; its return to OK re-drives finishSecret. */
  public readonly convergenceLagAlarm?: cloudwatch.Alarm;
  /** The EventBridge rule that re-drives finishSecret. */
  public readonly redriveRule?: events.Rule;
  /** Has the function publish the pending age every {@link CHECK_INTERVAL}. */
  public readonly pendingCheckRule: events.Rule;
  /** A rotation has been pending longer than `stuckAfter`: an operator decides. */
  public readonly rotationStuckAlarm: cloudwatch.Alarm;
  /** Secrets Manager's RotationFailed / RotationAbandoned events for this secret. */
  public readonly rotationFailureEventsRule: events.Rule;
  /** A rotation step, invocation or Secrets Manager rotation failed (gate holds excluded). */
  public readonly rotationFailedAlarm: cloudwatch.Alarm;
  /** Consumers by generation, rotation outcomes, gate waits. */
  public readonly dashboard: cloudwatch.Dashboard;

  private readonly props: ConvergenceMonitoringProps;

  constructor(scope: Construct, id: string, props: ConvergenceMonitoringProps) {
    super(scope, id);
    this.props = props;
    const live = props.consumers.filter((c) => c.mode === 'live');
    if (live.length > MAX_LIVE_CONSUMERS_IN_ALARM) {
      throw new ConfigurationError(
        `at most ${MAX_LIVE_CONSUMERS_IN_ALARM} live consumers can be registered for one secret (a CloudWatch alarm reads at most 10 metrics: PendingGeneration and one LoadedGeneration per live consumer), got ${live.length}: ${live.map((c) => c.name).join(', ')}`,
      );
    }
    const stuckAfter = props.stuckAfter ?? Duration.hours(1);
    const stuckMinutes = stuckAfter.toMinutes({ integral: false });
    if (
      stuckMinutes < props.gateMaxWait.toMinutes({ integral: false }) ||
      stuckMinutes < STUCK_PERIOD.toMinutes()
    ) {
      throw new ConfigurationError(
        `gate.stuckAfter must be at least gate.maxWait (${props.gateMaxWait.toHumanString()}) and ${STUCK_PERIOD.toHumanString()} (the pending check's interval), got ${stuckAfter.toHumanString()}`,
      );
    }

    if (live.length > 0) {
      this.convergenceLagAlarm = new cloudwatch.Alarm(this, 'ConvergenceLagAlarm', {
        alarmDescription: [
          // No consumer names here: descriptions are limited to 1024 characters; the metrics carry them.
          `A rotation of secret ${props.secretName} waits at the promotion gate: PendingGeneration is ahead of the lowest LoadedGeneration of the live consumers, or one of them is silent.`,
          'When the fleet catches up, this alarm returns to OK and EventBridge re-drives finishSecret. No action needed unless RotationStuck fires.',
        ].join(' '),
        metric: this.lagExpression(live),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        datapointsToAlarm: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });

      // OK after ALARM: the fleet caught up (or the waiting invocation ended). Either way finishSecret
      // runs again; the gate itself decides, so an early re-drive only costs one more wait.
      const redrive: RedriveEvent = { converge: 'redrive', SecretId: props.secretArn };
      this.redriveRule = new events.Rule(this, 'RedriveRule', {
        // Static: rule descriptions are limited to 512 characters and secret names may have 512.
        description:
          'converge: re-drives finishSecret when the promotion gate alarm returns from ALARM to OK',
        eventPattern: {
          source: ['aws.cloudwatch'],
          detailType: ['CloudWatch Alarm State Change'],
          resources: [this.convergenceLagAlarm.alarmArn],
          detail: { state: { value: ['OK'] }, previousState: { value: ['ALARM'] } },
        },
        targets: [
          new targets.LambdaFunction(props.rotationFunction, {
            event: events.RuleTargetInput.fromObject(redrive),
          }),
        ],
      });
    }

    const check: CheckEvent = { converge: 'check', SecretId: props.secretArn };
    this.pendingCheckRule = new events.Rule(this, 'PendingCheckRule', {
      description:
        'converge: has the rotation function publish how long a rotation has been pending (PendingAgeSeconds)',
      schedule: events.Schedule.rate(CHECK_INTERVAL),
      targets: [
        new targets.LambdaFunction(props.rotationFunction, {
          event: events.RuleTargetInput.fromObject(check),
        }),
      ],
    });

    this.rotationStuckAlarm = new cloudwatch.Alarm(this, 'RotationStuckAlarm', {
      alarmDescription: [
        `A rotation of secret ${props.secretName} has been pending for more than ${stuckAfter.toHumanString()} (or, in INSUFFICIENT_DATA, the pending checks stopped arriving).`,
        `Run "converge status <secret>" to see which step failed or which consumers lag; fix or restart them, or decide:`,
        `"converge abort <secret>" drops the pending credential, "converge finish <secret> --force" promotes it without the fleet.`,
      ].join(' '),
      metric: this.metricPendingAge(),
      threshold: stuckAfter.toSeconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: STUCK_EVALUATION_PERIODS,
      datapointsToAlarm: 1,
      // No check for the whole range: INSUFFICIENT_DATA, which notifies too (not a page at deploy:
      // a new alarm starts there, and only a change of state runs actions).
      treatMissingData: cloudwatch.TreatMissingData.MISSING,
    });

    this.rotationFailureEventsRule = new events.Rule(this, 'RotationFailureEventsRule', {
      description:
        'converge: Secrets Manager reports a failed or abandoned rotation; feeds the RotationFailed alarm and re-checks the pending age',
      eventPattern: {
        source: ['aws.secretsmanager'],
        detailType: ['AWS Service Event via CloudTrail'],
        detail: {
          eventSource: ['secretsmanager.amazonaws.com'],
          eventName: [...ROTATION_FAILURE_EVENTS],
          additionalEventData: {
            SecretId: props.secretFullArn
              ? [props.secretFullArn]
              : events.Match.prefix(`${props.secretArn}-`),
          },
        },
      },
      targets: [
        new targets.LambdaFunction(props.rotationFunction, {
          event: events.RuleTargetInput.fromObject(check),
        }),
      ],
    });

    this.rotationFailedAlarm = new cloudwatch.Alarm(this, 'RotationFailedAlarm', {
      alarmDescription: [
        `A rotation of secret ${props.secretName} failed: a step failed for a reason other than the promotion gate waiting, the function could not run (error, timeout, throttling), or Secrets Manager reported RotationFailed/RotationAbandoned.`,
        'Read the error in the rotation function log group (errorName, step, token); "converge status <secret>" shows the state.',
        'Secrets Manager retries the rotation; after fixing the cause, "aws secretsmanager rotate-secret" starts a new one.',
      ].join(' '),
      metric: this.failureExpression(),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    for (const alarm of [this.rotationStuckAlarm, this.rotationFailedAlarm]) {
      alarm.addAlarmAction(...(props.alarmActions ?? []));
    }
    this.rotationStuckAlarm.addInsufficientDataAction(...(props.alarmActions ?? []));

    this.dashboard = this.buildDashboard();
  }

  /**
   * Seconds the waiting rotation has been pending (0 when none waits), Maximum per
   * {@link CHECK_INTERVAL}: what the RotationStuck alarm reads.
   *
   * @example
   * new cloudwatch.GraphWidget({ left: [rotation.monitoring.metricPendingAge()] });
   */
  public metricPendingAge(options: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return this.functionMetric(PENDING_AGE_SECONDS, 'Maximum', STUCK_PERIOD).with(options);
  }

  /**
   * Completed rotations (finishSecret moved AWSCURRENT), Sum per 5 minutes.
   *
   * @example
   * rotation.monitoring.metricRotationsCompleted({ period: Duration.days(1) });
   */
  public metricRotationsCompleted(options: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return this.functionMetric(ROTATIONS_COMPLETED, 'Sum', OUTCOME_PERIOD).with(options);
  }

  /**
   * Failed rotation steps as the handler saw them, gate holds included, Sum per 5 minutes.
   *
   * @example
   * rotation.monitoring.metricStepFailures();
   */
  public metricStepFailures(options: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return this.functionMetric(ROTATION_STEP_FAILURES, 'Sum', OUTCOME_PERIOD).with(options);
  }

  /**
   * Times finishSecret was held by the promotion gate, Sum per 5 minutes.
   *
   * @example
   * rotation.monitoring.metricGateHolds();
   */
  public metricGateHolds(options: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return this.functionMetric(CONVERGENCE_PENDING, 'Sum', OUTCOME_PERIOD).with(options);
  }

  /**
   * The RotationFailed signal: above 0 in a 5-minute period in which something failed.
   *
   * @example
   * new cloudwatch.SingleValueWidget({ metrics: [rotation.monitoring.metricFailures()] });
   */
  public metricFailures(): cloudwatch.MathExpression {
    return this.failureExpression();
  }

  /**
   * `MAX([stepFailures, invocationErrors, throttles, serviceEvents])`, every input FILLed with 0:
   * - `stepFailures`: RotationStepFailures - ConvergencePending (the handler counts a gate hold as
   *   both; both come from the same EMF record time, so they share a period);
   * - `invocationErrors`: Lambda Errors - GateHoldErrors (a gate hold thrown to Lambda is an
   *   Error there; init errors, timeouts and out-of-memory are Errors the handler never sees);
   * - `throttles`: Lambda Throttles (Secrets Manager's or EventBridge's invoke was refused);
   * - `serviceEvents`: the failure events rule's TriggeredRules.
   */
  private failureExpression(): cloudwatch.MathExpression {
    const fn = this.props.rotationFunction;
    const period = OUTCOME_PERIOD;
    const sub = (expression: string, usingMetrics: Record<string, cloudwatch.IMetric>) =>
      new cloudwatch.MathExpression({ expression, usingMetrics, period });
    return new cloudwatch.MathExpression({
      expression: 'MAX([stepFailures, invocationErrors, throttles, serviceEvents])',
      usingMetrics: {
        stepFailures: sub('FILL(failures, 0) - FILL(held, 0)', {
          failures: this.metricStepFailures(),
          held: this.metricGateHolds(),
        }),
        invocationErrors: sub('FILL(errors, 0) - FILL(holdErrors, 0)', {
          errors: fn.metricErrors({ period, statistic: 'Sum' }),
          holdErrors: this.functionMetric(GATE_HOLD_ERRORS, 'Sum', period),
        }),
        throttles: sub('FILL(throttled, 0)', {
          throttled: fn.metricThrottles({ period, statistic: 'Sum' }),
        }),
        serviceEvents: sub('FILL(matched, 0)', {
          matched: new cloudwatch.Metric({
            namespace: 'AWS/Events',
            metricName: 'TriggeredRules',
            dimensionsMap: { RuleName: this.rotationFailureEventsRule.ruleName },
            statistic: 'Sum',
            period,
          }),
        }),
      },
      label: 'Failed rotations (gate holds excluded)',
      period,
    });
  }

  /**
   * `FILL(pending, 0) - MIN(FILL([c0, c1, ...], 0))`, > 0 while the fleet lags a pending rotation.
   * FILL makes the missing data explicit: no pending rotation reads 0 (so OK), a silent consumer
   * reads 0 (so behind).
   */
  private lagExpression(live: readonly ConsumerRegistration[]): cloudwatch.MathExpression {
    const period = Duration.seconds(REPORT_PERIOD_SECONDS);
    const usingMetrics: Record<string, cloudwatch.IMetric> = {
      pending: this.functionMetric(PENDING_GENERATION, 'Maximum', period),
    };
    live.forEach((c, i) => {
      usingMetrics[`c${i}`] = this.consumerMetric(LOADED_GENERATION, c.name, 'Minimum', period);
    });
    const ids = live.map((_, i) => `c${i}`);
    // With one consumer, subtract its series directly rather than MIN() of a one-element array.
    const lowest = ids.length === 1 ? `FILL(${ids[0]}, 0)` : `MIN(FILL([${ids.join(', ')}], 0))`;
    return new cloudwatch.MathExpression({
      expression: `FILL(pending, 0) - ${lowest}`,
      usingMetrics,
      label: 'Generations the live fleet lags behind the pending rotation',
      period,
    });
  }

  private functionMetric(
    metricName: string,
    statistic: string,
    period: Duration,
  ): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: this.props.namespace,
      metricName,
      dimensionsMap: { [DIMENSION_SECRET]: this.props.secretName },
      statistic,
      period,
    });
  }

  private consumerMetric(
    metricName: string,
    consumer: string,
    statistic: string,
    period: Duration,
  ): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: this.props.namespace,
      metricName,
      dimensionsMap: { [DIMENSION_SECRET]: this.props.secretName, [DIMENSION_CONSUMER]: consumer },
      statistic,
      period,
      label: consumer,
    });
  }

  private buildDashboard(): cloudwatch.Dashboard {
    const { consumers, secretName } = this.props;
    const minute = Duration.seconds(REPORT_PERIOD_SECONDS);
    const radius = blastRadius(consumers);
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: this.props.dashboardName,
      defaultInterval: Duration.days(1),
    });
    const alarms = [
      this.convergenceLagAlarm,
      this.rotationStuckAlarm,
      this.rotationFailedAlarm,
    ].filter((a): a is cloudwatch.Alarm => a !== undefined);
    dashboard.addWidgets(
      new cloudwatch.TextWidget({
        width: 12,
        height: 4,
        markdown: [
          `## converge: ${secretName}`,
          `Registered consumers (blast radius): ${radius.live} live, ${radius.scheduled} scheduled, ${radius['restart-only']} restart-only.`,
          consumers.length > 0
            ? consumers
                .map((c) => `\`${c.name}\` (${c.mode}, fresh within ${c.maxStalenessSeconds} s)`)
                .join(', ')
            : 'No consumer is registered.',
        ].join('\n\n'),
      }),
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', width: 12, height: 4, alarms }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Consumers by generation',
        width: 24,
        left: [
          ...consumers.map((c) =>
            this.consumerMetric(LOADED_GENERATION, c.name, 'Minimum', minute),
          ),
          this.functionMetric(PENDING_GENERATION, 'Maximum', minute).with({
            label: 'pending rotation',
          }),
        ],
        leftYAxis: { label: 'generation', showUnits: false },
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Rotation outcomes',
        width: 8,
        left: [
          this.functionMetric(ROTATIONS_COMPLETED, 'Sum', OUTCOME_PERIOD).with({
            label: 'completed',
          }),
          this.functionMetric(ROTATION_STEP_FAILURES, 'Sum', OUTCOME_PERIOD).with({
            label: 'step failures (gate holds included)',
          }),
          this.props.rotationFunction.metricErrors({
            period: OUTCOME_PERIOD,
            label: 'function errors',
          }),
        ],
      }),
      new cloudwatch.GraphWidget({
        title: 'Gate waits',
        width: 8,
        left: [
          this.functionMetric(GATE_WAIT_SECONDS, 'Maximum', OUTCOME_PERIOD).with({
            label: 'wait before promotion (s)',
          }),
        ],
        right: [
          this.functionMetric(CONVERGENCE_PENDING, 'Sum', OUTCOME_PERIOD).with({
            label: 'held by the gate',
          }),
        ],
      }),
      new cloudwatch.GraphWidget({
        title: 'Consumer reload failures',
        width: 8,
        left: consumers.map((c) =>
          this.consumerMetric(RELOAD_FAILURES, c.name, 'Sum', OUTCOME_PERIOD),
        ),
      }),
    );
    return dashboard;
  }
}
