/**
 * `converge report`: publishes one `LoadedGeneration` report for a consumer, so that anything that can
 * run a command (a cron job, a shell script, a service in a runtime without the consumer library)
 * can tell the gates which credential generation it uses (docs/metric-contract.md).
 *
 * - `--generation <n>`: the caller says which generation it uses. No Secrets Manager call at all;
 *   the `SecretName` dimension is the secret's name as given, or the name inside a complete ARN.
 * - `--from-secret`: the generation of the secret's AWSCURRENT version, read with GetSecretValue as
 *   the consumer reads its credential (what a job that loads AWSCURRENT at each run uses; the
 *   consumer grant, `grantConsumer`, allows it). The `SecretName` dimension is the name the answer
 *   carries. Only `generation` is kept from the value: the password is never printed, logged or sent.
 *
 * The report goes out with PutMetricData (the `grantPublishMetrics` grant), or, with `--emf`, is
 * printed to stdout as one embedded-metric-format line for runtimes whose stdout reaches CloudWatch
 * Logs (Lambda, ECS with the awslogs driver, the CloudWatch agent). Names, unit and dimensions come
 * from lambda/shared/metric-contract.ts, the EMF line from the reporter's own `emfDocuments`
 * (consumer/reporter.ts), and both are checked with `parseGenerationReport` before anything is sent.
 */
import { PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { emfDocuments, type MetricPoint } from '../../consumer/reporter';
import type { Clock } from '../../lambda/rotation/context';
import { InvalidReportError } from '../../lambda/shared/errors';
import {
  DEFAULT_NAMESPACE,
  LOADED_GENERATION,
  LOADED_GENERATION_UNIT,
  loadedGenerationDimensions,
  secretNameDimension,
} from '../../lambda/shared/metric-contract';
import {
  consumerNameProblem,
  METRIC_CONTRACT_VERSION,
  namespaceProblem,
  parseGenerationReport,
  secretNameProblem,
} from '../../lambda/shared/report-document';
import { AWSCURRENT, parseSecret } from '../../lambda/shared/secret';
import type { CliClients } from '../clients';

/** Where the generation comes from. */
export type GenerationSource = { readonly generation: number } | { readonly fromSecret: true };

/** What `converge report` is asked to do, checked by {@link checkReportRequest} before any AWS call. */
export interface ReportRequest {
  /** Secret name or ARN (`--secret`). */
  readonly secret: string;
  /** Registered consumer name (`--consumer`): the `Consumer` dimension. */
  readonly consumer: string;
  readonly source: GenerationSource;
  /** @default DEFAULT_NAMESPACE ('SecretRotation') */
  readonly namespace?: string;
  /** Print the EMF line to stdout instead of calling PutMetricData (`--emf`). */
  readonly emf?: boolean;
  /** StorageResolution 1 (`--high-resolution`), for consumers registered with a staleness under a minute. */
  readonly highResolution?: boolean;
}

/** What was reported (the `--json` output): no secret value, ever. */
export interface ReportResult {
  /** The version of docs/metric-contract.md the report follows. */
  readonly contractVersion: number;
  readonly namespace: string;
  /** The `SecretName` dimension sent. */
  readonly secretName: string;
  readonly consumer: string;
  readonly metric: string;
  readonly unit: string;
  readonly generation: number;
  /** Where the generation came from: the option, or the AWSCURRENT version read (its id). */
  readonly source:
    { readonly kind: 'option' } | { readonly kind: 'AWSCURRENT'; readonly versionId?: string };
  /** The data point's timestamp, ISO 8601. */
  readonly timestamp: string;
  readonly storageResolution: 1 | 60;
  /** `PutMetricData`: sent to CloudWatch; `emf`: printed to stdout for CloudWatch Logs to extract. */
  readonly via: 'PutMetricData' | 'emf';
}

/** A usage error of `converge report`: the option, the value received and the rule (exit 2). */
export interface ReportUsageProblem {
  /** The option as the help shows it, e.g. `--consumer <name>`. */
  readonly option: string;
  readonly value: string;
  readonly problem: string;
}

/**
 * The first problem with a request, or undefined when it can be sent: the consumer must be a name
 * the registry accepts (a CloudWatch dimension value), the namespace a custom one, the secret (with
 * `--generation`) a name or a complete ARN, the generation a non-negative safe integer. Makes no
 * AWS call.
 *
 * @example
 * checkReportRequest({ secret: 'orders-app', consumer: 'nightly export', source: { generation: 3 } });
 * // { option: '--consumer <name>', value: 'nightly export', problem: 'must be 1-255 characters ...' }
 */
export function checkReportRequest(request: ReportRequest): ReportUsageProblem | undefined {
  const consumer = consumerNameProblem(request.consumer);
  if (consumer) return { option: '--consumer <name>', value: request.consumer, problem: consumer };
  const namespace =
    request.namespace === undefined ? undefined : namespaceProblem(request.namespace);
  if (namespace)
    return { option: '--namespace <namespace>', value: request.namespace!, problem: namespace };
  if (request.secret.trim() === '')
    return { option: '--secret <secret>', value: request.secret, problem: 'must not be empty' };
  if ('generation' in request.source) {
    const g = request.source.generation;
    if (!Number.isSafeInteger(g) || g < 0) {
      return {
        option: '--generation <n>',
        value: String(g),
        problem: 'must be a non-negative integer (the "generation" field of the secret)',
      };
    }
    const name = secretNameProblem(secretNameDimension(request.secret));
    if (name) {
      return {
        option: '--secret <secret>',
        value: request.secret,
        problem: `${name}; pass the secret's name, or its complete ARN (with the six-character suffix), or use --from-secret`,
      };
    }
  }
  return undefined;
}

/**
 * Publishes one `LoadedGeneration` report (or, with `emf`, writes it as one EMF line through `out`).
 * Call {@link checkReportRequest} first: this function assumes a checked request.
 *
 * @throws the SDK's error when GetSecretValue or PutMetricData fails (the CLI's clients mark it
 * with the service, region and endpoint), {@link InvalidSecretError} when the AWSCURRENT value is not
 * a valid secret (naming the field, never its value), {@link InvalidReportError} when the report
 * would not follow the contract
 *
 * @example
 * const r = await report(clients, { secret: 'orders-app', consumer: 'nightly-export', source: { fromSecret: true } }, { out: console.log });
 * console.log(`reported generation ${r.generation}`);
 */
export async function report(
  clients: Pick<CliClients, 'sm' | 'cw'>,
  request: ReportRequest,
  options: { out: (line: string) => void; clock?: Pick<Clock, 'now'> },
): Promise<ReportResult> {
  const namespace = request.namespace ?? DEFAULT_NAMESPACE;
  let secretName = secretNameDimension(request.secret);
  let generation: number;
  let source: ReportResult['source'];
  if ('generation' in request.source) {
    generation = request.source.generation;
    source = { kind: 'option' };
  } else {
    const out = await clients.sm.send(
      new GetSecretValueCommand({ SecretId: request.secret, VersionStage: AWSCURRENT }),
    );
    // parseSecret names a wrong field, never a value; only the generation leaves this block.
    generation = parseSecret(out.SecretString, `${AWSCURRENT} secret`).generation;
    secretName = out.Name ?? secretName;
    source = { kind: 'AWSCURRENT', versionId: out.VersionId };
    const problem = secretNameProblem(secretName);
    if (problem)
      throw new InvalidReportError(
        `the secret's name ${problem}, got ${JSON.stringify(secretName)}`,
        'SecretName',
      );
  }
  const timestamp = (options.clock ?? Date).now();
  const storageResolution = request.highResolution ? 1 : 60;
  const point: MetricPoint = {
    name: LOADED_GENERATION,
    unit: LOADED_GENERATION_UNIT,
    value: generation,
    timestamp,
    dimensions: { SecretName: secretName, Consumer: request.consumer },
    ...(storageResolution === 1 ? { storageResolution: 1 as const } : {}),
  };
  // The same line the consumer library prints, checked against the contract whichever way it goes.
  const line = JSON.stringify(emfDocuments(namespace, [point])[0]);
  parseGenerationReport(line, { namespace });
  if (request.emf) {
    options.out(line);
  } else {
    await clients.cw.send(
      new PutMetricDataCommand({
        Namespace: namespace,
        MetricData: [
          {
            MetricName: LOADED_GENERATION,
            Unit: LOADED_GENERATION_UNIT,
            Value: generation,
            Timestamp: new Date(timestamp),
            Dimensions: loadedGenerationDimensions(secretName, request.consumer),
            ...(storageResolution === 1 ? { StorageResolution: 1 } : {}),
          },
        ],
      }),
    );
  }
  return {
    contractVersion: METRIC_CONTRACT_VERSION,
    namespace,
    secretName,
    consumer: request.consumer,
    metric: LOADED_GENERATION,
    unit: LOADED_GENERATION_UNIT,
    generation,
    source,
    timestamp: new Date(timestamp).toISOString(),
    storageResolution,
    via: request.emf ? 'emf' : 'PutMetricData',
  };
}

/**
 * The one-line summary of a report sent with PutMetricData.
 *
 * @example
 * io.out(formatReport(result)); // 'reported LoadedGeneration 7 for consumer "nightly-export" of secret "orders-app" ...'
 */
export function formatReport(r: ReportResult): string {
  const from =
    r.source.kind === 'option'
      ? '--generation'
      : `AWSCURRENT${r.source.versionId ? ` (version ${r.source.versionId})` : ''}`;
  return (
    `reported ${r.metric} ${r.generation} (from ${from}) for consumer "${r.consumer}" of secret "${r.secretName}": ` +
    `namespace ${r.namespace}, ${r.storageResolution === 1 ? 'high resolution, ' : ''}PutMetricData at ${r.timestamp}`
  );
}
