/**
 * docs/metric-contract.md is a spec other runtimes implement from, so its examples are held to the
 * contract: each block marked `<!-- contract-example: NAME -->` is extracted and checked with
 * `parseGenerationReport` (lambda/shared/report-document.ts), and compared with what the TypeScript
 * reporter (consumer/reporter.ts) prints for the same report. Broken variants of a valid line must be
 * rejected with a message naming what is wrong.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  EmfSink,
  GenerationReporter,
  emfDocuments,
  type MetricPoint,
  type ReportSubject,
} from '../../consumer/reporter';
import { InvalidReportError } from '../../lambda/shared/errors';
import {
  DEFAULT_NAMESPACE,
  LOADED_GENERATION,
  loadedGenerationDimensions,
  secretNameDimension,
} from '../../lambda/shared/metric-contract';
import {
  METRIC_CONTRACT_VERSION,
  consumerNameProblem,
  parseGenerationReport,
} from '../../lambda/shared/report-document';

const doc = readFileSync(join(__dirname, '../../docs/metric-contract.md'), 'utf8');

/**
 * The fenced block that follows `<!-- contract-example: name -->` (and `<!-- prettier-ignore -->`,
 * which keeps prettier from spreading a one-line EMF document over several lines).
 */
function example(name: string): string {
  const m = new RegExp(
    `<!-- contract-example: ${name} -->\\n(?:<!-- prettier-ignore -->\\n|\\n)?\`\`\`[a-z]*\\n([\\s\\S]*?)\\n\`\`\``,
  ).exec(doc);
  if (!m) throw new Error(`docs/metric-contract.md has no contract-example "${name}"`);
  return m[1];
}

/** 2026-01-01T00:00:00Z, the timestamp of the doc's examples. */
const T = Date.parse('2026-01-01T00:00:00Z');

/** The doc's minimal example, rebuilt as a document to break one field at a time. */
function minimal(): Record<string, unknown> {
  return JSON.parse(example('emf-minimal')) as Record<string, unknown>;
}

/** An EMF document, typed as far as the tests edit it. */
type EmfDoc = Record<string, unknown> & {
  _aws: {
    Timestamp: unknown;
    CloudWatchMetrics: {
      Namespace: unknown;
      Dimensions: unknown[][];
      Metrics: Record<string, unknown>[];
    }[];
  };
};

/** `minimal()` with `edit` applied, as one line. */
function variant(edit: (d: EmfDoc) => void): string {
  const d = minimal() as EmfDoc;
  edit(d);
  return JSON.stringify(d);
}

function rejection(
  line: string,
  expect?: Parameters<typeof parseGenerationReport>[1],
): InvalidReportError {
  try {
    parseGenerationReport(line, expect);
  } catch (err) {
    if (err instanceof InvalidReportError) return err;
    throw err;
  }
  throw new Error(`accepted: ${line}`);
}

function point(
  name: string,
  unit: MetricPoint['unit'],
  value: number,
  extra: Partial<MetricPoint> = {},
): MetricPoint {
  return {
    name,
    unit,
    value,
    timestamp: T,
    dimensions: { SecretName: 'orders-app', Consumer: 'nightly-export' },
    ...extra,
  };
}

describe('docs/metric-contract.md', () => {
  it('states the contract version the checker implements', () => {
    expect(doc).toMatch(
      new RegExp(`^\\*\\*Contract version ${METRIC_CONTRACT_VERSION}\\.\\*\\*$`, 'm'),
    );
  });

  it('its minimal EMF example is a valid report: generation 7 of orders-app for nightly-export', () => {
    // Act
    const report = parseGenerationReport(example('emf-minimal'), { namespace: DEFAULT_NAMESPACE });
    // Assess
    expect(report).toEqual({
      namespace: 'SecretRotation',
      secretName: 'orders-app',
      consumer: 'nightly-export',
      generation: 7,
      generations: [7],
      timestamp: T,
      highResolution: false,
    });
  });

  it('its minimal EMF example is byte for byte what the TypeScript reporter prints for the same report', () => {
    const line = JSON.stringify(
      emfDocuments(DEFAULT_NAMESPACE, [point(LOADED_GENERATION, 'None', 7)])[0],
    );
    expect(example('emf-minimal')).toBe(line);
  });

  it('its full EMF example (high resolution, both optional metrics) is valid and is what the reporter prints', () => {
    // Prepare: the reporter's own three points for that report
    const points: MetricPoint[] = [
      {
        ...point(LOADED_GENERATION, 'None', 8, { storageResolution: 1 }),
        dimensions: { SecretName: 'orders-app', Consumer: 'orders-api' },
      },
      {
        ...point('ReloadFailures', 'Count', 0),
        dimensions: { SecretName: 'orders-app', Consumer: 'orders-api' },
      },
      {
        ...point('PoolAgeSecondsMax', 'Seconds', 412.5),
        dimensions: { SecretName: 'orders-app', Consumer: 'orders-api' },
      },
    ];
    // Act
    const report = parseGenerationReport(example('emf-full'));
    // Assess
    expect(report).toMatchObject({
      consumer: 'orders-api',
      generation: 8,
      highResolution: true,
      reloadFailures: 0,
      poolAgeSecondsMax: 412.5,
    });
    expect(example('emf-full')).toBe(JSON.stringify(emfDocuments(DEFAULT_NAMESPACE, points)[0]));
  });

  it('its PutMetricData request names the same metric, unit, dimensions and generation as the EMF example', () => {
    const request = JSON.parse(example('put-metric-data')) as {
      Namespace: string;
      MetricData: {
        MetricName: string;
        Unit: string;
        Value: number;
        Timestamp: string;
        Dimensions: unknown;
      }[];
    };
    expect(request.Namespace).toBe(DEFAULT_NAMESPACE);
    expect(request.MetricData).toEqual([
      {
        MetricName: LOADED_GENERATION,
        Unit: 'None',
        Value: 7,
        Timestamp: new Date(T).toISOString(),
        Dimensions: loadedGenerationDimensions('orders-app', 'nightly-export'),
      },
    ]);
  });

  it('its AWS CLI line sends that report: namespace, metric, unit None, value and exactly the two dimensions', () => {
    const line = example('aws-cli');
    const option = (name: string) => new RegExp(`--${name} (\\S+)`).exec(line)?.[1];
    expect(line.startsWith('aws cloudwatch put-metric-data ')).toBe(true);
    expect(option('namespace')).toBe(DEFAULT_NAMESPACE);
    expect(option('metric-name')).toBe(LOADED_GENERATION);
    expect(option('unit')).toBe('None');
    expect(option('value')).toBe('7');
    expect(option('dimensions')).toBe(
      loadedGenerationDimensions('orders-app', 'nightly-export')
        .map((d) => `${d.Name}=${d.Value}`)
        .join(','),
    );
  });
});

describe('Function: parseGenerationReport on what the TypeScript reporter prints', () => {
  it('accepts every line GenerationReporter writes through EmfSink, standard and high resolution', async () => {
    // Prepare: a subject on generation 3 with one failed reload and a pool
    const lines: string[] = [];
    const subject: ReportSubject = {
      secretName: secretNameDimension(
        'arn:aws:secretsmanager:eu-west-1:111122223333:secret:orders-app-AbCdEf',
      ),
      loadedGeneration: 3,
      reloadFailureCount: 1,
      poolAgeSecondsMax: () => 12.25,
    };
    for (const highResolution of [false, true]) {
      const reporter = new GenerationReporter({
        subject,
        consumer: 'billing:jobs/nightly',
        sink: new EmfSink({ namespace: 'Payments/Rotation', write: (l) => lines.push(l) }),
        highResolution,
        now: () => T,
      });
      // Act
      await reporter.report();
    }
    // Assess
    expect(lines).toHaveLength(2);
    const reports = lines.map((l) =>
      parseGenerationReport(l, { namespace: 'Payments/Rotation', now: T }),
    );
    expect(
      reports.map((r) => [
        r.secretName,
        r.consumer,
        r.generation,
        r.highResolution,
        r.reloadFailures,
        r.poolAgeSecondsMax,
      ]),
    ).toEqual([
      ['orders-app', 'billing:jobs/nightly', 3, false, 1, 12.25],
      ['orders-app', 'billing:jobs/nightly', 3, true, 1, 12.25],
    ]);
  });

  it('accepts an array of generations (several reports in one document) and returns the lowest', () => {
    const line = JSON.stringify(
      emfDocuments(DEFAULT_NAMESPACE, [
        point(LOADED_GENERATION, 'None', 5),
        point(LOADED_GENERATION, 'None', 4),
      ])[0],
    );
    expect(parseGenerationReport(line)).toMatchObject({ generation: 4, generations: [5, 4] });
  });

  it('accepts the dimension set in either order and EMF properties beside the values', () => {
    const line = variant((d) => {
      d._aws.CloudWatchMetrics[0].Dimensions = [['Consumer', 'SecretName']];
      d.requestId = 'r-1';
    });
    expect(parseGenerationReport(line).consumer).toBe('nightly-export');
  });
});

describe('Function: parseGenerationReport rejects reports the gates would not read', () => {
  it.each([
    [
      'an ARN as SecretName',
      (d: EmfDoc) =>
        (d.SecretName = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:orders-app-AbCdEf'),
      'SecretName',
      /^SecretName is an ARN: the SecretName dimension is the secret's name/,
    ],
    [
      'no Consumer dimension in the set',
      (d: EmfDoc) => (d._aws.CloudWatchMetrics[0].Dimensions = [['SecretName']]),
      '_aws.CloudWatchMetrics[0].Dimensions',
      /^_aws\.CloudWatchMetrics\[0\]\.Dimensions lacks the Consumer dimension: it must be \[\["SecretName", "Consumer"\]\], got \[\["SecretName"\]\]/,
    ],
    [
      'a Consumer value missing',
      (d: EmfDoc) => delete d.Consumer,
      'Consumer',
      /^Consumer must be a string \(the registered consumer name\), got nothing/,
    ],
    [
      'unit Count',
      (d: EmfDoc) => (d._aws.CloudWatchMetrics[0].Metrics[0].Unit = 'Count'),
      '_aws.CloudWatchMetrics[0].Metrics[0].Unit',
      /^_aws\.CloudWatchMetrics\[0\]\.Metrics\[0\] \(LoadedGeneration\) must have Unit "None", got "Count"/,
    ],
    [
      'no unit',
      (d: EmfDoc) => delete d._aws.CloudWatchMetrics[0].Metrics[0].Unit,
      '_aws.CloudWatchMetrics[0].Metrics[0].Unit',
      /must have Unit "None", got no Unit/,
    ],
    [
      'a negative generation',
      (d: EmfDoc) => (d.LoadedGeneration = -1),
      'LoadedGeneration',
      /^LoadedGeneration must be a non-negative integer \(the "generation" field of the secret\), got -1$/,
    ],
    [
      'a fractional generation',
      (d: EmfDoc) => (d.LoadedGeneration = 7.5),
      'LoadedGeneration',
      /must be a non-negative integer .*got 7\.5$/,
    ],
    [
      'the generation as a string',
      (d: EmfDoc) => (d.LoadedGeneration = '7'),
      'LoadedGeneration',
      /^LoadedGeneration must be a number, got "7"$/,
    ],
    [
      'a default dimension left in the set (put_dimensions in aws-embedded-metrics)',
      (d: EmfDoc) =>
        (d._aws.CloudWatchMetrics[0].Dimensions = [
          ['LogGroup', 'ServiceName', 'ServiceType', 'SecretName', 'Consumer'],
        ]),
      '_aws.CloudWatchMetrics[0].Dimensions',
      /the extra dimension\(s\) LogGroup, ServiceName, ServiceType make it a different metric the gates never read/,
    ],
    [
      'a second dimension set',
      (d: EmfDoc) => d._aws.CloudWatchMetrics[0].Dimensions.push(['SecretName']),
      '_aws.CloudWatchMetrics[0].Dimensions',
      /must hold exactly one dimension set/,
    ],
    [
      'the timestamp in seconds',
      (d: EmfDoc) => (d._aws.Timestamp = 1767225600),
      '_aws.Timestamp',
      /^_aws\.Timestamp must be in milliseconds since the epoch, got 1767225600 \(seconds\? multiply by 1000\)$/,
    ],
    [
      'a consumer name the registry refuses',
      (d: EmfDoc) => (d.Consumer = 'nightly export'),
      'Consumer',
      /^Consumer must be 1-255 characters of letters, digits and \._:\/@\+=- starting with a letter or digit, got "nightly export"$/,
    ],
    [
      'an AWS/ namespace',
      (d: EmfDoc) => (d._aws.CloudWatchMetrics[0].Namespace = 'AWS/RDS'),
      '_aws.CloudWatchMetrics[0].Namespace',
      /must not start with "AWS\/"/,
    ],
    [
      'no directive declaring LoadedGeneration',
      (d: EmfDoc) => (d._aws.CloudWatchMetrics[0].Metrics[0].Name = 'LoadedGen'),
      '_aws.CloudWatchMetrics',
      /^no directive in _aws\.CloudWatchMetrics declares LoadedGeneration/,
    ],
  ])('%s', (_what, edit, field, message) => {
    const err = rejection(variant(edit));
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });

  it('a pretty-printed document (several lines)', () => {
    expect(rejection(JSON.stringify(minimal(), null, 2)).message).toMatch(
      /^an EMF document must be a single line/,
    );
  });

  it('a namespace other than the one the rotation reads, when one is expected', () => {
    expect(rejection(example('emf-minimal'), { namespace: 'Payments/Rotation' }).message).toBe(
      '_aws.CloudWatchMetrics[0].Namespace is "SecretRotation", but the rotation reads "Payments/Rotation": the gates would never see this report',
    );
  });

  it('a timestamp CloudWatch would refuse, when the time is given', () => {
    expect(rejection(example('emf-minimal'), { now: T + 15 * 86_400_000 }).message).toMatch(
      /is outside what CloudWatch keeps/,
    );
  });

  it('not JSON', () => {
    expect(rejection('LoadedGeneration=7').message).toMatch(/^the line is not JSON/);
  });
});

describe('Function: consumerNameProblem', () => {
  it('accepts registered names and names the rule for others', () => {
    expect(consumerNameProblem('billing:jobs/nightly')).toBeUndefined();
    expect(consumerNameProblem('')).toMatch(/^must be 1-255 characters/);
    expect(consumerNameProblem('caf\u00e9')).toMatch(/^must be 1-255 characters/);
  });
});
