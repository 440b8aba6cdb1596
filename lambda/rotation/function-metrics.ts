/**
 * Metrics of the rotation function itself, written as CloudWatch Embedded Metric Format to stdout
 * (the function's log group), with exactly one dimension, `SecretName`: the CDK alarms and
 * dashboard query that exact dimension set. Written directly rather than with Powertools Metrics,
 * which always adds a `service` dimension and would break the contract.
 */
import { DIMENSION_SECRET } from '../shared/metric-contract';

export type MetricUnit = 'None' | 'Count' | 'Seconds' | 'Milliseconds';

/** Anything that knows the metric namespace and the secret's name. */
export interface MetricScope {
  readonly config: { readonly metricNamespace: string };
  readonly secretName: string;
  readonly clock?: { now(): number };
  /** Where EMF lines go. @default - process.stdout (the Lambda log group) */
  readonly writeMetric?: (line: string) => void;
}

/**
 * Writes one EMF record.
 *
 * @example
 * emitFunctionMetric(ctx, ROTATIONS_COMPLETED, 1, 'Count');
 */
export function emitFunctionMetric(scope: MetricScope, name: string, value: number, unit: MetricUnit): void {
  const record = {
    _aws: {
      Timestamp: scope.clock?.now() ?? Date.now(),
      CloudWatchMetrics: [
        { Namespace: scope.config.metricNamespace, Dimensions: [[DIMENSION_SECRET]], Metrics: [{ Name: name, Unit: unit }] },
      ],
    },
    [DIMENSION_SECRET]: scope.secretName,
    [name]: value,
  };
  const line = `${JSON.stringify(record)}\n`;
  if (scope.writeMetric) scope.writeMetric(line);
  else process.stdout.write(line);
}
