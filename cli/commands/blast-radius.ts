/**
 * `converge blast-radius <secret>`: what a rotation of this secret has to wait for, from the
 * consumer registry and what is observed, and the overlap it needs (the calculation and its
 * formulas: cli/commands/blast-radius-model.ts).
 *
 * Reads: DescribeSecret (no GetSecretValue), the rotation function's configuration
 * (GetFunctionConfiguration: registry, namespace, gate settings), `LoadedGeneration` and
 * `PoolAgeSecondsMax` from CloudWatch; with `--sessions`, the open sessions of the secret's user and
 * its alternate, logging in as the master (cli/commands/master-sessions.ts; needs GetSecretValue on the
 * secret and the master secret). Prints no secret value.
 */
import { GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { readGenerations } from '../../lambda/rotation/gates/read-generations';
import {
  POOL_AGE_SECONDS_MAX,
  loadedGenerationDimensions,
  secretNameDimension,
} from '../../lambda/shared/metric-contract';
import { parseRegistryJson, type ConsumerRegistration } from '../../lambda/shared/registry';
import { alternateUsername } from '../../lambda/shared/secret';
import type { CliClients } from '../clients';
import {
  computeBlastRadius,
  type BlastRadius,
  type ConsumerSeries,
  type ObservedSession,
} from './blast-radius-model';
import { readFunctionSettings } from './function-settings';
import { sessionsAsMaster } from './master-sessions';
import { readSecretState } from './secret-state';

/** Shortest look back at the reports: an hour, as `status`. */
export const MIN_LOOKBACK_SECONDS = 3600;
/** Longest look back: a week (1-minute data is kept 15 days). */
export const MAX_LOOKBACK_SECONDS = 7 * 86_400;

export interface BlastRadiusOptions {
  /** Registry as JSON (overrides the rotation function's). */
  readonly consumers?: string;
  /** Metric namespace (overrides the function's). */
  readonly namespace?: string;
  /** Read the open sessions as the master. */
  readonly sessions?: boolean;
  /** CA bundle for the database connection (with `sessions`). */
  readonly caBundlePath?: string;
  /** How often live consumers refresh the secret, seconds. @default ASSUMED_REFRESH_SECONDS */
  readonly refreshSeconds?: number;
  /** Evaluation time. @default Date.now() */
  readonly now?: number;
}

export interface BlastRadiusReport extends BlastRadius {
  readonly secret: {
    readonly arn: string;
    readonly name: string;
    readonly rotationFunction?: string;
    readonly rotationIntervalSeconds?: number;
  };
  readonly registrySource: 'function' | 'option' | 'none';
  readonly namespace: string;
  readonly lookbackSeconds: number;
  /** Why CloudWatch could not be read (the report then has no observed reports). */
  readonly cloudWatchError?: string;
  /** The users whose sessions were read (with --sessions). */
  readonly sessionUsers?: readonly string[];
  /** Why the sessions could not be read (with --sessions). */
  readonly sessionsError?: string;
}

/**
 * @throws {@link ConfigurationError} for an invalid `--consumers` (before any AWS call) or an invalid
 * configuration of the rotation function
 *
 * @example
 * const r = await blastRadius(clients, 'orders-app', { sessions: true, caBundlePath: 'rds-ca.pem' });
 * console.log(formatBlastRadius(r));
 */
export async function blastRadius(
  clients: CliClients,
  secretId: string,
  options: BlastRadiusOptions = {},
): Promise<BlastRadiusReport> {
  const optionRegistry =
    options.consumers === undefined ? undefined : parseRegistryJson(options.consumers, '--consumers');
  const now = options.now ?? Date.now();
  const state = await readSecretState(clients, secretId, { decrypt: false });
  const fn = await readFunctionSettings(clients, state.rotationLambdaArn);
  const registry = optionRegistry ?? fn.registry;
  const registrySource = optionRegistry ? 'option' : state.rotationLambdaArn ? 'function' : 'none';
  const namespace = options.namespace ?? fn.namespace;
  const lookbackSeconds = Math.min(
    MAX_LOOKBACK_SECONDS,
    Math.max(
      MIN_LOOKBACK_SECONDS,
      fn.gate.lookbackSeconds,
      ...registry.map((c) => 3 * c.maxStalenessSeconds),
    ),
  );

  let series: Map<string, ConsumerSeries> | undefined;
  let cloudWatchError: string | undefined;
  if (registry.length > 0) {
    try {
      const secretName = secretNameDimension(state.name);
      const readout = await readGenerations(clients.cw, {
        namespace,
        secretName,
        consumers: registry,
        now,
        lookbackSeconds,
      });
      const poolAges = await readPoolAges(
        clients,
        namespace,
        secretName,
        registry,
        now,
        lookbackSeconds,
      );
      series = new Map(
        registry.map((c) => [
          c.name,
          {
            points: readout.series.get(c.name) ?? [],
            bucketSeconds: readout.periods.get(c.name)!,
            ...(poolAges.has(c.name) ? { poolAgeSecondsMax: poolAges.get(c.name) } : {}),
          },
        ]),
      );
    } catch (err) {
      cloudWatchError = (err as Error).message;
    }
  }

  let sessions: ObservedSession[] | undefined;
  let sessionUsers: string[] | undefined;
  let sessionsError: string | undefined;
  if (options.sessions) {
    try {
      const found = await sessionsAsMaster(
        clients,
        state.arn,
        (current) => [current.username, alternateUsername(current)],
        {
          caBundlePath: options.caBundlePath,
        },
      );
      sessionUsers = found.map((u) => u.username);
      sessions = found.flatMap((u) => u.sessions.map((s) => ({ ...s, user: u.username })));
    } catch (err) {
      sessionsError = (err as Error).message;
    }
  }

  const rotationIntervalSeconds = rotationInterval(state.description.RotationRules);
  const radius = computeBlastRadius({
    registry,
    series,
    lookbackSeconds,
    sessions,
    gate: fn.gate,
    refreshSeconds: options.refreshSeconds,
    rotationIntervalSeconds,
    now,
  });
  return {
    secret: {
      arn: state.arn,
      name: state.name,
      rotationFunction: state.rotationLambdaArn,
      rotationIntervalSeconds,
    },
    registrySource,
    namespace,
    lookbackSeconds,
    ...(cloudWatchError !== undefined ? { cloudWatchError } : {}),
    ...(sessionUsers ? { sessionUsers } : {}),
    ...(sessionsError !== undefined ? { sessionsError } : {}),
    ...radius,
  };
}



/**
 * The largest `PoolAgeSecondsMax` each consumer reported in the lookback: one Maximum query per
 * consumer over the whole window (500 queries per call).
 */
async function readPoolAges(
  clients: CliClients,
  namespace: string,
  secretName: string,
  registry: readonly ConsumerRegistration[],
  now: number,
  lookbackSeconds: number,
): Promise<Map<string, number>> {
  const period = Math.ceil(lookbackSeconds / 60) * 60;
  const ages = new Map<string, number>();
  for (let start = 0; start < registry.length; start += 500) {
    const chunk = registry.slice(start, start + 500);
    const out = await clients.cw.send(
      new GetMetricDataCommand({
        MetricDataQueries: chunk.map((c, i) => ({
          Id: `p${i}`,
          Label: c.name,
          ReturnData: true,
          MetricStat: {
            Metric: {
              Namespace: namespace,
              MetricName: POOL_AGE_SECONDS_MAX,
              Dimensions: loadedGenerationDimensions(secretName, c.name),
            },
            Period: period,
            Stat: 'Maximum',
          },
        })),
        StartTime: new Date(now - period * 1000),
        EndTime: new Date(now + 60_000),
      }),
      { abortSignal: AbortSignal.timeout(10_000) },
    );
    for (const r of out.MetricDataResults ?? []) {
      const c = chunk[Number(r.Id?.slice(1))];
      if (!c || !r.Values || r.Values.length === 0) continue;
      ages.set(c.name, Math.round(Math.max(...r.Values)));
    }
  }
  return ages;
}

/** The time between scheduled rotations, seconds, for a fixed rate; undefined for a cron schedule or none. */
function rotationInterval(
  rules: { AutomaticallyAfterDays?: number; ScheduleExpression?: string } | undefined,
): number | undefined {
  if (!rules) return undefined;
  const rate = /^rate\(\s*(\d+)\s+(hours?|days?)\s*\)$/.exec(rules.ScheduleExpression ?? '');
  if (rate) return Number(rate[1]) * (rate[2]!.startsWith('hour') ? 3600 : 86_400);
  if (!rules.ScheduleExpression && rules.AutomaticallyAfterDays)
    return rules.AutomaticallyAfterDays * 86_400;
  return undefined;
}

/**
 * The plain-text report (README, "How to read blast-radius").
 *
 * @example
 * io.out(formatBlastRadius(await blastRadius(clients, 'orders-app')));
 */
export function formatBlastRadius(r: BlastRadiusReport): string {
  const lines: string[] = [];
  const c = r.counts;
  const total = c.live + c.scheduled + c['restart-only'];
  lines.push(`Secret      ${r.secret.name}  [${r.secret.arn}]`);
  lines.push(
    `Registry    ${total} consumer(s): ${c.live} live, ${c.scheduled} scheduled, ${c['restart-only']} restart-only` +
      ` (${r.registrySource === 'option' ? 'from --consumers' : r.registrySource === 'function' ? 'from the rotation function' : 'no rotation function'})`,
  );
  const g = r.assumptions.gate;
  lines.push(
    `Gate        poll ${g.pollSeconds} s, max wait ${g.maxWaitSeconds} s per invocation, lookback ${g.lookbackSeconds} s`,
  );
  if (r.cloudWatchError) lines.push(`CloudWatch  UNREADABLE: ${r.cloudWatchError}`);
  if (r.sessionsError) lines.push(`Sessions    UNREADABLE: ${r.sessionsError}`);
  if (r.consumers.length > 0) {
    lines.push('');
    const w = Math.max(8, ...r.consumers.map((x) => x.name.length));
    lines.push(
      `${'CONSUMER'.padEnd(w)}  ${'MODE'.padEnd(12)}  ${'STALENESS'.padStart(9)}  ${'LAST REPORT'.padStart(11)}  ${'GEN'.padStart(4)}  ` +
        `${'EVERY'.padStart(6)}  ${'CONN AGE'.padStart(8)}  ${'PROCS'.padStart(5)}  ADOPTION PATH`,
    );
    for (const x of r.consumers) {
      const age = x.reportingAgeSeconds === undefined ? 'never' : `${x.reportingAgeSeconds}s ago`;
      const every = `${x.reportPeriodSeconds}s${x.reportPeriodSource === 'assumed' ? '*' : ''}`;
      const conn =
        x.connectionLifetimeSeconds === undefined ? '-' : `${x.connectionLifetimeSeconds}s`;
      const procs = x.processes === undefined ? '-' : String(x.processes.length);
      lines.push(
        `${x.name.padEnd(w)}  ${x.mode.padEnd(12)}  ${`${x.maxStalenessSeconds}s`.padStart(9)}  ${age.padStart(11)}  ` +
          `${(x.reportedGeneration === undefined ? '-' : String(x.reportedGeneration)).padStart(4)}  ${every.padStart(6)}  ` +
          `${conn.padStart(8)}  ${procs.padStart(5)}  ${adoptionText(x.adoption)}`,
      );
    }
  }
  const processes = r.consumers.flatMap((x) =>
    (x.processes ?? []).map((p) => ({ consumer: x.name, ...p })),
  );
  const unregistered = r.unregistered.flatMap((u) =>
    u.processes.map((p) => ({ consumer: `${u.consumer} (NOT REGISTERED)`, ...p })),
  );
  if (processes.length + unregistered.length > 0) {
    lines.push('', 'Processes (sessions by consumer, host and pid)');
    for (const p of [...processes, ...unregistered]) {
      lines.push(
        `  ${p.consumer}  ${p.host} pid ${p.pid}  user ${p.user}  generation ${p.generation}  ${p.sessions} session(s)` +
          `${p.connectionAgeSeconds !== undefined ? `  oldest ${p.connectionAgeSeconds}s` : ''}`,
      );
    }
  }
  if (r.unattributed !== undefined) {
    lines.push('', `Unattributed sessions: ${r.unattributed.length}`);
    for (const s of r.unattributed) {
      lines.push(
        `  user ${s.user}  pid ${s.pid}  application_name ${JSON.stringify(s.applicationName)}` +
          `${s.clientAddr ? `  from ${s.clientAddr}` : ''}${s.ageSeconds !== undefined ? `  open ${s.ageSeconds}s` : ''}`,
      );
    }
  }
  const t = r.overlap.terms;
  const term = (x: { seconds: number; consumer?: string }, none: string) =>
    x.consumer ? `${x.seconds} s (${x.consumer})` : `0 s (${none})`;
  lines.push('');
  lines.push(
    `Overlap needed   ${duration(r.overlap.seconds)} = live adoption ${term(t.liveAdoption, 'no live consumer')}` +
      ` + connection lifetime ${term(t.connectionLifetime, t.connectionLifetime.observed ? 'none' : 'not observed')}` +
      ` + scheduled run ${term(t.scheduledRun, 'no scheduled consumer')}`,
  );
  const e = r.expected;
  const via = {
    immediate: 'immediate: no live consumer holds it',
    'first-invocation': 'within the first finishSecret',
    're-drive': 'by the alarm re-drive, after the first finishSecret ends held',
  }[e.promotionVia];
  lines.push(`setSecret ->     promotion ${duration(e.promotionSeconds)} (${via})`);
  lines.push(
    `                 safe revocation ${
      e.safeRevocationSeconds === undefined
        ? `UNBOUNDED: waits for a restart of ${e.waitsForRestartOf.join(', ')}`
        : duration(e.safeRevocationSeconds)
    }`,
  );
  lines.push(
    `Assumed          live consumers refresh every ${r.assumptions.refreshSeconds} s (--refresh)` +
      `${r.consumers.some((x) => x.reportPeriodSource === 'assumed') ? '; * report interval not observed, 60 s assumed' : ''}`,
  );
  if (r.warnings.length > 0) {
    lines.push('', 'Warnings');
    for (const w of r.warnings) lines.push(`  ! ${w.code}: ${w.message}`);
  }
  return lines.join('\n');
}

function adoptionText(a: BlastRadius['consumers'][number]['adoption']): string {
  if (a.kind === 'live') {
    return `${a.totalSeconds}s = refresh ${a.refreshSeconds} + report ${a.reportPeriodSeconds} + staleness ${a.maxStalenessSeconds} + bucket ${a.bucketSeconds}`;
  }
  if (a.kind === 'scheduled')
    return `${a.totalSeconds}s after promotion = run within staleness ${a.maxStalenessSeconds} + bucket ${a.bucketSeconds}`;
  return 'restart (no time bound)';
}

/** `540 s (9m)`, `8940 s (2h29m)`. */
function duration(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${seconds} s (${h > 0 ? `${h}h` : ''}${m > 0 || h > 0 ? `${m}m` : ''}${h === 0 && s > 0 ? `${s}s` : ''})`;
}
