/**
 * `converge status <secret>`: the 2 a.m. view, answering in one look. First the next action for
 * the operator and why (cli/commands/next-action.ts), then the rotation's own state (idle, waiting
 * at the promotion gate since when and after how many evaluations, a step failed with its typed
 * error, held by the revocation guard, in progress: from the records the rotation function keeps
 * on the secret, lambda/rotation/records.ts), every registered consumer judged against the
 * rotation waiting now and the next one (BLOCKING, STALE, SILENT, OK, AHEAD, UNVERIFIED, with
 * since when: cli/commands/consumer-series.ts), versions with stages and generations, what the two
 * gates would decide now, and with `--sessions` the open sessions of every user of the secret,
 * grouped by consumer and process (lambda/rotation/gates/session-groups.ts).
 *
 * Reads only, from non-secret data: DescribeSecret, the function's configuration, GetMetricData.
 * Without `--sessions` it makes no GetSecretValue call; `--sessions` logs in as the master (its
 * own grant) and prints nothing about it.
 *
 * For scripts the report ends in one health verdict, which is also the command's exit code
 * ({@link HEALTH_EXIT_CODES}): `healthy` 0, `holding` 3 (a rotation is waiting, or the next one would
 * be blocked by the revocation guard), `unknown` 4 (something it needs could not be read: CloudWatch,
 * the consumers' metrics, the sessions it was asked to count, or the secret itself).
 */
import { readAbortRecord } from '../../lambda/rotation/aborted';
import {
  decidePromotion,
  decideRevocation,
  type GateDecision,
} from '../../lambda/rotation/gates/decision';
import { readGenerations } from '../../lambda/rotation/gates/read-generations';
import { groupSessions } from '../../lambda/rotation/gates/session-groups';
import { attributedTo } from '../../lambda/shared/application-name';
import { REVOCATION_STATISTICS, secretNameDimension } from '../../lambda/shared/metric-contract';
import {
  blastRadius,
  parseRegistryJson,
  type ConsumerMode,
  type ConsumerRegistration,
} from '../../lambda/shared/registry';
import type { CliClients } from '../clients';
import {
  judgeConsumers,
  unverifiedConsumers,
  type ConsumerView,
  type ProcessView,
} from './consumer-series';
import { readFunctionSettings } from './function-settings';
import { HEALTH_EXIT_CODES, type Health } from './health';
import { sessionsAsMaster } from './master-sessions';
import {
  classifyRotation,
  decideNextAction,
  type NextAction,
  type RotationView,
  type UserSessionsView,
} from './next-action';
import { readSecretState, type SecretState, type VersionView } from './secret-state';

export type { ConsumerState, ConsumerView, ProcessView } from './consumer-series';
export type {
  FailureView,
  NextAction,
  NextActionKind,
  RotationState,
  RotationView,
  UnattributedSession,
  UserSessionsView,
} from './next-action';

export interface StatusOptions {
  /** Registry as JSON (overrides the one read from the rotation function). */
  readonly consumers?: string;
  /** Metric namespace (overrides the function's). */
  readonly namespace?: string;
  /**
   * List the open sessions of the secret's users (current, previous, pending) grouped by consumer
   * and process, by connecting as the master (needs GetSecretValue on the application and master
   * secrets, and network access to the database).
   */
  readonly sessions?: boolean;
  /** CA bundle for the database connection. */
  readonly caBundlePath?: string;
  /** Evaluation time. @default Date.now() */
  readonly now?: number;
}

export interface GateView {
  readonly verdict: 'admit' | 'hold' | 'not-applicable' | 'unknown';
  readonly requiredGeneration?: number;
  /** Revocation: the generations accepted exactly (current, and pending while a rotation waits). */
  readonly acceptedGenerations?: readonly number[];
  readonly reasons: readonly string[];
}

export { HEALTH_EXIT_CODES, type Health } from './health';

export interface HealthView {
  readonly state: Health;
  readonly exitCode: number;
  readonly reasons: readonly string[];
}

export interface StatusReport {
  readonly secret: {
    arn: string;
    name: string;
    rotationEnabled: boolean;
    rotationFunction?: string;
    lastRotated?: string;
  };
  /** What the operator should do now, and why. */
  readonly nextAction: NextAction;
  /** The rotation's own state. */
  readonly rotation: RotationView;
  readonly versions: readonly VersionView[];
  readonly rotationInProgress: boolean;
  readonly overrides: { emergency: boolean; forceFinish: boolean };
  readonly registry: {
    source: 'function' | 'option' | 'none';
    counts: Record<ConsumerMode, number>;
  };
  readonly consumers: readonly ConsumerView[];
  /** CloudWatch could not be read, or the consumers could not be judged (consumers UNVERIFIED). */
  readonly cloudWatchError?: string;
  /** The previous user (the next rotation overwrites it); `sessions` counted with `--sessions`. */
  readonly oldUser?: { username: string; sessions?: number; sessionsError?: string };
  /** With `--sessions`: each user's open sessions, grouped by consumer and process, and the unattributed ones. */
  readonly sessions?: readonly UserSessionsView[];
  /** With `--sessions`: why they could not be listed. */
  readonly sessionsError?: string;
  readonly gates: { promotion: GateView; revocation: GateView };
  readonly health: HealthView;
}

/**
 * @example
 * const report = await status(clients, 'orders-app', { sessions: true });
 */
export async function status(
  clients: CliClients,
  secretId: string,
  options: StatusOptions = {},
): Promise<StatusReport> {
  const now = options.now ?? Date.now();
  // DescribeSecret: versions' generations and users come from the function's records (with --sessions,
  // which reads the master's value anyway, also the values of versions that have no record yet).
  const state = await readSecretState(clients, secretId, { readValues: options.sessions === true });
  const { registry, source, namespace, gatePollSeconds } = await loadRegistry(
    clients,
    state,
    options,
  );
  const rotation = classifyRotation({
    pending: state.pending,
    lastRotated: state.lastRotated,
    gate: state.gate,
    lastFailure: state.lastFailure,
    now,
  });
  let consumers: ConsumerView[] = [];
  let cloudWatchError: string | undefined;
  let promotion: GateDecision | undefined;
  let revocation: GateDecision | undefined;
  // A secret converge never rotated (no generation issued yet) holds generation 0 unless its value
  // says otherwise; once converge rotated it, AWSCURRENT's record says which.
  const current =
    state.current?.generation ?? (state.highWaterGeneration === undefined ? 0 : undefined);
  if (registry.length > 0 && current === undefined) {
    cloudWatchError = `${NOT_JUDGED}: the generation of AWSCURRENT (version ${state.current?.versionId ?? '?'}) is not recorded yet (the next rotation records it)`;
    consumers = unverifiedConsumers(registry);
  } else if (registry.length > 0) {
    try {
      // One read for both gates, with the Maximum the revocation guard needs.
      const readout = await readGenerations(clients.cw, {
        namespace,
        secretName: secretNameDimension(state.name),
        consumers: registry,
        now,
        lookbackSeconds: STATUS_LOOKBACK_SECONDS,
        statistics: REVOCATION_STATISTICS,
      });
      const pending = state.pending?.generation;
      // The guard sets aside data points of an aborted generation that predate the abort (lambda/rotation/aborted.ts).
      const aborted = readAbortRecord(state.description);
      if (pending !== undefined) promotion = decidePromotion(registry, readout, pending);
      revocation = decideRevocation(registry, readout, { current: current!, pending, aborted });
      consumers = judgeConsumers(registry, readout, {
        current: current!,
        pending,
        aborted,
        promotion:
          pending === undefined || rotation.state === 'held-by-guard'
            ? 'none'
            : rotation.state === 'waiting-at-gate' && !state.overrides.forceFinish
              ? 'blocking'
              : 'pending',
        revocationBlocks:
          (rotation.state === 'idle' || rotation.state === 'held-by-guard') &&
          !state.overrides.emergency,
        lookbackSeconds: STATUS_LOOKBACK_SECONDS,
      });
    } catch (err) {
      cloudWatchError = (err as Error).message;
      consumers = unverifiedConsumers(registry);
    }
  }
  const listing = options.sessions ? await listUserSessions(clients, state, options) : undefined;
  if (listing?.users) consumers = consumers.map((c) => withProcesses(c, listing.users!));
  const alternate = state.pending?.username ?? state.previous?.username;
  const alternateSessions = listing?.users?.find((u) => u.username === alternate);
  const guarded: RotationView =
    rotation.state === 'held-by-guard' && alternateSessions
      ? { ...rotation, guardSessions: alternateSessions }
      : rotation;
  const oldUser = oldUserView(state, options, listing);
  const nextAction = decideNextAction({
    secret: state.name,
    rotation: guarded,
    currentGeneration: current,
    consumers,
    cloudWatchError,
    sessionsListed: listing?.users !== undefined,
    alternateUser: alternate,
    alternateSessions,
    sessionsError: listing?.error,
    forceFinish: state.overrides.forceFinish,
    emergency: state.overrides.emergency,
    gatePollSeconds,
    now,
  });
  const report: Omit<StatusReport, 'health'> = {
    secret: {
      arn: state.arn,
      name: state.name,
      rotationEnabled: state.rotationEnabled,
      rotationFunction: state.rotationLambdaArn,
      lastRotated: state.lastRotated,
    },
    nextAction,
    rotation: guarded,
    versions: state.versions,
    rotationInProgress: state.pending !== undefined,
    overrides: state.overrides,
    registry: { source, counts: blastRadius(registry) },
    consumers,
    cloudWatchError,
    oldUser,
    ...(listing
      ? {
          sessions: listing.users ?? [],
          ...(listing.error ? { sessionsError: listing.error } : {}),
        }
      : {}),
    gates: {
      promotion: promotionView(state, registry, promotion, cloudWatchError),
      revocation: revocationView(state, registry, revocation, cloudWatchError, oldUser),
    },
  };
  return { ...report, health: healthOf(report, state) };
}

/** How `watchStatus` waits and where it reports; injected by tests. */
export interface WatchOptions {
  /** Seconds between refreshes. @default 5 */
  readonly intervalSeconds?: number;
  /** Called with every report, the first one included. */
  readonly onReport: (report: StatusReport) => void;
  /** Waits `ms`; resolves early when `signal` aborts. @default a timer */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Stops the watch (Ctrl-C): the last report is returned. */
  readonly signal?: AbortSignal;
  /** Evaluation time of each refresh. @default Date.now */
  readonly now?: () => number;
}

/**
 * `converge status --watch`: reports, then re-reads every `intervalSeconds` and reports again
 * until the rotation's state or the next action's kind differs from the first report's (or
 * `signal` aborts); returns the last report (its health is the exit code).
 *
 * @example
 * const last = await watchStatus(clients, 'orders-app', {}, { intervalSeconds: 5, onReport: (r) => console.log(formatStatus(r)) });
 * process.exitCode = last.health.exitCode;
 */
export async function watchStatus(
  clients: CliClients,
  secretId: string,
  options: StatusOptions,
  watch: WatchOptions,
): Promise<StatusReport> {
  const sleep = watch.sleep ?? abortableSleep;
  const intervalMs = (watch.intervalSeconds ?? DEFAULT_WATCH_SECONDS) * 1000;
  const read = () =>
    status(clients, secretId, watch.now ? { ...options, now: watch.now() } : options);
  const first = await read();
  watch.onReport(first);
  let last = first;
  for (;;) {
    if (watch.signal?.aborted) return last;
    await sleep(intervalMs, watch.signal);
    if (watch.signal?.aborted) return last;
    last = await read();
    watch.onReport(last);
    if (
      last.rotation.state !== first.rotation.state ||
      last.nextAction.kind !== first.nextAction.kind
    )
      return last;
  }
}

/** Default `--watch` interval, seconds. */
export const DEFAULT_WATCH_SECONDS = 5;

/** Prefix of `cloudWatchError` when the consumers were not judged for want of AWSCURRENT's generation. */
const NOT_JUDGED = 'consumers not judged';

/** How far back status reads the consumers' series (for since and silent since). */
export const STATUS_LOOKBACK_SECONDS = 3600;

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Attaches the consumer's processes (every user) from `--sessions`. */
function withProcesses(c: ConsumerView, users: readonly UserSessionsView[]): ConsumerView {
  const processes: ProcessView[] = [];
  for (const u of users) {
    for (const g of u.consumers) {
      if (
        g.consumer === c.name ||
        attributedTo({ consumer: g.consumer, generation: 0, host: '', pid: 1 }, c.name)
      )
        processes.push(...g.processes);
    }
  }
  return { ...c, processes };
}

interface SessionListing {
  readonly users?: UserSessionsView[];
  readonly error?: string;
  readonly previousCount?: number;
}

/**
 * `--sessions`: the open sessions of every user a version holds (current, previous, pending), on
 * the server and every reader or replica, grouped by consumer and process. Connects as the master
 * (GetSecretValue on the application and master secrets); nothing about the master is printed.
 */
async function listUserSessions(
  clients: CliClients,
  state: SecretState,
  options: StatusOptions,
): Promise<SessionListing> {
  const users = new Map<string, string[]>();
  for (const v of [state.current, state.previous, state.pending]) {
    if (!v?.username) continue;
    const stages = users.get(v.username) ?? [];
    users.set(v.username, [...stages, ...v.stages.filter((s) => !stages.includes(s))]);
  }
  if (users.size === 0) return { users: [] };
  try {
    // The same scope as the revocation guard: this server and every reader or replica, with the
    // master session's search path pinned.
    const listed = await sessionsAsMaster(clients, state.arn, () => [...users.keys()], {
      caBundlePath: options.caBundlePath,
    });
    const out: UserSessionsView[] = [];
    let previousCount: number | undefined;
    for (const { username, sessions } of listed) {
      const stages = users.get(username) ?? [];
      if (username === state.previous?.username) previousCount = sessions.length;
      const groups = groupSessions(sessions);
      out.push({
        username,
        stages,
        consumers: groups.consumers.map((g) => ({
          consumer: g.consumer,
          processes: g.processes.map((p) => ({
            host: p.host,
            pid: p.pid,
            generation: p.generation,
            user: username,
            sessions: p.sessions,
            ...(p.oldestBackendStart ? { oldestBackendStart: p.oldestBackendStart } : {}),
          })),
        })),
        unattributed: groups.unattributed.map((u) => ({
          pid: u.pid,
          applicationName: u.applicationName,
          clientAddr: u.clientAddr,
          ...(u.member ? { member: u.member } : {}),
        })),
      });
    }
    return { users: out, previousCount };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

function oldUserView(
  state: SecretState,
  options: StatusOptions,
  listing: SessionListing | undefined,
): StatusReport['oldUser'] {
  const username = state.previous?.username;
  if (!username) return undefined;
  if (!options.sessions) return { username };
  if (listing?.error) return { username, sessionsError: listing.error };
  return { username, sessions: listing?.previousCount ?? 0 };
}

/**
 * - `holding` when a rotation is waiting (a fact of the secret's stages, whatever else is unknown);
 * - else `unknown` when CloudWatch could not be read, no registered consumer has reported within the
 *   lookback hour (wrong namespace or region, reporters not running, or no access to the metrics),
 *   or `--sessions` was asked for and the sessions could not be counted;
 * - else `holding` when the revocation guard would block the next rotation;
 * - else `healthy`.
 */
function healthOf(r: Omit<StatusReport, 'health'>, state: SecretState): HealthView {
  const view = (s: Health, reasons: string[]): HealthView => ({
    state: s,
    exitCode: HEALTH_EXIT_CODES[s],
    reasons,
  });
  if (state.pending) {
    return view('holding', [
      `a rotation is waiting (version ${state.pending.versionId}, generation ${state.pending.generation ?? '?'}); ` +
        (r.rotation.state === 'held-by-guard'
          ? 'the revocation guard refused its setSecret'
          : r.rotation.state === 'step-failed'
            ? `its ${r.rotation.failure?.step ?? 'step'} failed`
            : `promotion gate ${r.gates.promotion.verdict.toUpperCase()}`),
    ]);
  }
  const unknown: string[] = [];
  if (r.cloudWatchError) {
    unknown.push(
      r.cloudWatchError.startsWith(NOT_JUDGED)
        ? r.cloudWatchError
        : `CloudWatch could not be read: ${r.cloudWatchError}`,
    );
  } else if (r.consumers.length > 0 && r.consumers.every((c) => c.dataAgeSeconds === undefined)) {
    unknown.push(
      'no registered consumer has reported in the last hour (check the namespace, the reporters and cloudwatch:GetMetricData)',
    );
  }
  if (r.oldUser?.sessionsError)
    unknown.push(
      `the sessions of "${r.oldUser.username}" could not be counted: ${r.oldUser.sessionsError}`,
    );
  if (unknown.length > 0) return view('unknown', unknown);
  if (r.gates.revocation.verdict === 'hold') {
    return view('holding', [
      `the next rotation would be blocked: revocation ${r.gates.revocation.reasons.join('; ')}`,
    ]);
  }
  return view('healthy', [
    `no rotation is waiting; revocation ${r.gates.revocation.verdict.toUpperCase()}: ${r.gates.revocation.reasons.join('; ')}`,
  ]);
}

async function loadRegistry(
  clients: CliClients,
  state: SecretState,
  options: StatusOptions,
): Promise<{
  registry: readonly ConsumerRegistration[];
  source: 'function' | 'option' | 'none';
  namespace: string;
  gatePollSeconds: number;
}> {
  const fn = await readFunctionSettings(
    clients,
    options.consumers === undefined ? state.rotationLambdaArn : undefined,
  );
  return {
    registry:
      options.consumers === undefined
        ? fn.registry
        : parseRegistryJson(options.consumers, '--consumers'),
    source:
      options.consumers !== undefined ? 'option' : state.rotationLambdaArn ? 'function' : 'none',
    namespace: options.namespace ?? fn.namespace,
    gatePollSeconds: fn.gate.pollSeconds,
  };
}

function promotionView(
  state: SecretState,
  registry: readonly ConsumerRegistration[],
  d: GateDecision | undefined,
  cwError?: string,
): GateView {
  if (!state.pending) return { verdict: 'not-applicable', reasons: ['no rotation is waiting'] };
  if (state.overrides.forceFinish)
    return { verdict: 'admit', reasons: ['operator override converge:force-finish is set'] };
  if (!registry.some((c) => c.mode === 'live'))
    return {
      verdict: 'admit',
      requiredGeneration: state.pending.generation,
      reasons: ['no live consumer is registered'],
    };
  if (cwError || !d)
    return {
      verdict: 'unknown',
      reasons: [`CloudWatch could not be read (the gate fails closed): ${cwError ?? 'no data'}`],
    };
  return {
    verdict: d.admit ? 'admit' : 'hold',
    requiredGeneration: d.requiredGeneration,
    reasons: d.admit
      ? ['every live consumer reports the pending generation']
      : d.blocking.map(reason),
  };
}

function revocationView(
  state: SecretState,
  registry: readonly ConsumerRegistration[],
  d: GateDecision | undefined,
  cwError: string | undefined,
  oldUser: StatusReport['oldUser'],
): GateView {
  if (!state.previous)
    return {
      verdict: 'admit',
      reasons: ['no previous user yet: the next rotation creates the alternate user'],
    };
  if (state.overrides.emergency)
    return {
      verdict: 'admit',
      reasons: ['operator override converge:emergency is set: old sessions will be terminated'],
    };
  const reasons: string[] = [];
  if (registry.length > 0 && (cwError || !d))
    reasons.push(`CloudWatch could not be read (the guard fails closed): ${cwError ?? 'no data'}`);
  if (d) reasons.push(...d.blocking.map(reason));
  if (oldUser?.sessions)
    reasons.push(`${oldUser.sessions} open session(s) of "${oldUser.username}"`);
  const sessionsUnknown = oldUser?.sessions === undefined;
  const acceptedGenerations = d?.acceptedGenerations;
  if (reasons.length > 0)
    return {
      verdict: 'hold',
      requiredGeneration: state.current?.generation,
      acceptedGenerations,
      reasons,
    };
  return {
    verdict: sessionsUnknown ? 'unknown' : 'admit',
    requiredGeneration: state.current?.generation,
    acceptedGenerations,
    reasons: [
      registry.length === 0
        ? 'no consumer is registered'
        : `every consumer reports the current generation${(acceptedGenerations?.length ?? 0) > 1 ? ' or the pending one' : ''}`,
      ...(sessionsUnknown
        ? [`sessions of "${oldUser?.username}" not checked (pass --sessions)`]
        : []),
    ],
  };
}

function reason(b: { consumer: string; reason: string; lastGeneration?: number }): string {
  if (b.reason === 'silent')
    return `${b.consumer}: silent (no fresh data${b.lastGeneration !== undefined ? `; last seen generation ${b.lastGeneration}` : ''})`;
  if (b.reason === 'stale') return `${b.consumer}: stale (reports generation ${b.lastGeneration})`;
  if (b.reason === 'ahead') {
    return `${b.consumer}: ahead (a process holds generation ${b.lastGeneration}, newer than current (an aborted rotation's credential))`;
  }
  return `${b.consumer}: ${b.reason}`;
}
