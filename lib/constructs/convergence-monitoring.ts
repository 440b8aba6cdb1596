/**
 * What watches a converge rotation from CloudWatch: the promotion gate's alarm and the EventBridge
 * rule that re-drives finishSecret when the fleet has converged (DESIGN.md 4.4), the operator
 * alarms (a rotation stuck at the gate, a failed rotation) and a dashboard.
 *
 * Metric math facts this relies on (CloudWatch user guide, "Using metric math"):
 * - `MIN([m1, m2, ...])` of an array of time series returns ONE time series, the minimum of the
 *   series at each timestamp. (The warning against MIN in alarms is about `MIN(m1)` of a single
 *   series, which collapses the whole retrieved range into one scalar; that form is never used.)
 * - Arithmetic treats a missing value as 0: `pending - MIN(...)` is negative, so OK, while no
 *   rotation reports a pending generation, and positive, so ALARM, when the live consumers are
 *   behind it or silent.
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
import { ConfigurationError } from '../../lambda/shared/errors';
import {
  CONVERGENCE_PENDING,
  DIMENSION_CONSUMER,
  DIMENSION_SECRET,
  GATE_WAIT_SECONDS,
  LOADED_GENERATION,
  PENDING_GENERATION,
  RELOAD_FAILURES,
  REPORT_PERIOD_SECONDS,
  ROTATION_STEP_FAILURES,
  ROTATIONS_COMPLETED,
} from '../../lambda/shared/metric-contract';
import { blastRadius, type ConsumerRegistration } from '../../lambda/shared/registry';

/** CloudWatch alarms read at most 10 metrics; one of them is PendingGeneration. */
export const MAX_LIVE_CONSUMERS_IN_ALARM = 9;
/** CloudWatch limits an alarm's evaluation range (periods x period) to one day. */
const MAX_ALARM_RANGE = Duration.days(1);
/** Period of the stuck-rotation alarm: one data point per five minutes of waiting. */
const STUCK_PERIOD = Duration.minutes(5);
/** Period of the failure alarm and the outcome graphs. */
const OUTCOME_PERIOD = Duration.minutes(5);

export interface ConvergenceMonitoringProps {
  /** The `SecretName` dimension value: the rotated secret's name (may be a token). */
  readonly secretName: string;
  /** The secret's ARN, sent to the function in the re-drive event. */
  readonly secretArn: string;
  /** CloudWatch namespace of every converge metric. */
  readonly namespace: string;
  /** The validated consumer registry. */
  readonly consumers: readonly ConsumerRegistration[];
  /** The rotation function (re-drive target, error graph). */
  readonly rotationFunction: lambda.IFunction;
  /** Longest wait of finishSecret within one invocation. */
  readonly gateMaxWait: Duration;
  /**
   * How long a rotation may wait at the promotion gate before the RotationStuck alarm asks an
   * operator to decide.
   *
   * @default Duration.hours(1)
   */
  readonly stuckAfter?: Duration;
  /**
   * Actions for the operator alarms (RotationStuck and RotationFailed), for example an SNS topic.
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
 * Children: `ConvergenceLagAlarm`, `RedriveRule` and `RotationStuckAlarm` (only when live consumers
 * are registered: without them the gate never waits), `RotationFailedAlarm`, `Dashboard`.
 */
export class ConvergenceMonitoring extends Construct {
  /** ALARM while live consumers lag a pending rotation; its return to OK re-drives finishSecret. */
  public readonly convergenceLagAlarm?: cloudwatch.Alarm;
  /** The EventBridge rule that re-drives finishSecret. */
  public readonly redriveRule?: events.Rule;
  /** A rotation has waited at the gate longer than `stuckAfter`: an operator decides. */
  public readonly rotationStuckAlarm?: cloudwatch.Alarm;
  /** A rotation step failed for a reason other than the gate waiting. */
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
      stuckMinutes < STUCK_PERIOD.toMinutes() ||
      stuckMinutes > MAX_ALARM_RANGE.toMinutes()
    ) {
      throw new ConfigurationError(
        `gate.stuckAfter must be at least gate.maxWait (${props.gateMaxWait.toHumanString()}) and 5 minutes, and at most 1 day (CloudWatch's longest alarm range), got ${stuckAfter.toHumanString()}`,
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

      const periods = Math.ceil(stuckMinutes / STUCK_PERIOD.toMinutes());
      this.rotationStuckAlarm = new cloudwatch.Alarm(this, 'RotationStuckAlarm', {
        alarmDescription: [
          `A rotation of secret ${props.secretName} has waited at the promotion gate for more than ${stuckAfter.toHumanString()}.`,
          `Run "converge status <secret>" to see which consumers lag or are silent; fix or restart them, or decide:`,
          `"converge abort <secret>" drops the pending credential, "converge finish <secret> --force" promotes it without the fleet.`,
        ].join(' '),
        metric: this.functionMetric(PENDING_GENERATION, 'SampleCount', STUCK_PERIOD),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: periods,
        datapointsToAlarm: periods,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }

    this.rotationFailedAlarm = new cloudwatch.Alarm(this, 'RotationFailedAlarm', {
      alarmDescription: [
        `A rotation step of secret ${props.secretName} failed for a reason other than the promotion gate waiting.`,
        'Read the error in the rotation function log group (errorName, step, token); "converge status <secret>" shows the state.',
        'Secrets Manager retries the rotation; after fixing the cause, "aws secretsmanager rotate-secret" starts a new one.',
      ].join(' '),
      // A gate hold is counted both as a step failure and as ConvergencePending; the difference is
      // what really failed. Both come from the same EMF record time, so they share a period.
      metric: new cloudwatch.MathExpression({
        expression: 'failures - held',
        usingMetrics: {
          failures: this.functionMetric(ROTATION_STEP_FAILURES, 'Sum', OUTCOME_PERIOD),
          held: this.functionMetric(CONVERGENCE_PENDING, 'Sum', OUTCOME_PERIOD),
        },
        label: 'Failed rotation steps (gate holds excluded)',
        period: OUTCOME_PERIOD,
      }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    for (const alarm of [this.rotationStuckAlarm, this.rotationFailedAlarm]) {
      if (alarm) alarm.addAlarmAction(...(props.alarmActions ?? []));
    }

    this.dashboard = this.buildDashboard();
  }

  /** `pending - MIN(live LoadedGeneration)`, > 0 while the fleet lags a pending rotation. */
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
    const lowest = ids.length === 1 ? ids[0] : `MIN([${ids.join(', ')}])`;
    return new cloudwatch.MathExpression({
      expression: `pending - ${lowest}`,
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
