/**
 * `converge status <secret>`: the 2 a.m. view. Versions with stages and generations, every
 * registered consumer with its reported generation and data age, who is stale or silent, the old
 * user's open sessions (when database access is configured), and what the two gates would decide
 * now and why. Reads only; prints no secret value.
 *
 * For scripts the report ends in one health verdict, which is also the command's exit code
 * ({@link HEALTH_EXIT_CODES}): `healthy` 0, `holding` 3 (a rotation is waiting, or the next one would
 * be blocked by the revocation guard), `unknown` 4 (something it needs could not be read: CloudWatch,
 * the consumers' metrics, the sessions it was asked to count, or the secret itself).
 */
import { GetFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import { decidePromotion, decideRevocation, type GateDecision } from '../../lambda/rotation/gates/decision';
import { otherMembers, sessionsOnMembers } from '../../lambda/rotation/gates/members';
import { readGenerations } from '../../lambda/rotation/gates/read-generations';
import { listSessions } from '../../lambda/rotation/gates/sessions';
import { loadMaster } from '../../lambda/rotation/master-secret';
import { readCurrent } from '../../lambda/rotation/secrets';
import { ConfigurationError } from '../../lambda/shared/errors';
import { DEFAULT_NAMESPACE, REVOCATION_STATISTICS, secretNameDimension } from '../../lambda/shared/metric-contract';
import { withClient } from '../../lambda/shared/pg-connection';
import { blastRadius, parseRegistry, type ConsumerMode, type ConsumerRegistration } from '../../lambda/shared/registry';
import type { CliClients } from '../clients';
import { readSecretState, type SecretState, type VersionView } from './secret-state';

export interface StatusOptions {
  /** Registry as JSON (overrides the one read from the rotation function). */
  readonly consumers?: string;
  /** Metric namespace (overrides the function's). */
  readonly namespace?: string;
  /** Count the old user's sessions by connecting as the master (needs network access to the database). */
  readonly sessions?: boolean;
  /** CA bundle for the database connection. */
  readonly caBundlePath?: string;
  /** Evaluation time. @default Date.now() */
  readonly now?: number;
}

export interface ConsumerView {
  readonly name: string;
  readonly mode: ConsumerMode;
  readonly maxStalenessSeconds: number;
  /** `ahead`: a process reports a generation newer than current that is not the pending one (see `decideRevocation`). */
  readonly state: 'ok' | 'stale' | 'ahead' | 'silent' | 'unverified';
  /** Lowest generation reported in the freshness window. */
  readonly generation?: number;
  /** Seconds since the newest data point (fresh or not). */
  readonly dataAgeSeconds?: number;
  readonly lastSeenGeneration?: number;
}

export interface GateView {
  readonly verdict: 'admit' | 'hold' | 'not-applicable' | 'unknown';
  readonly requiredGeneration?: number;
  /** Revocation: the generations accepted exactly (current, and pending while a rotation waits). */
  readonly acceptedGenerations?: readonly number[];
  readonly reasons: readonly string[];
}

/** What `converge status` concludes, for scripts. */
export type Health = 'healthy' | 'holding' | 'unknown';

/**
 * The exit code of each verdict. 1 stays "error" (e.g. the secret does not exist, an invalid
 * `--consumers`) and 2 "usage", as for every command.
 */
export const HEALTH_EXIT_CODES: Record<Health, number> = { healthy: 0, holding: 3, unknown: 4 };

export interface HealthView {
  readonly state: Health;
  readonly exitCode: number;
  readonly reasons: readonly string[];
}

export interface StatusReport {
  readonly secret: { arn: string; name: string; rotationEnabled: boolean; rotationFunction?: string; lastRotated?: string };
  readonly versions: readonly VersionView[];
  readonly rotationInProgress: boolean;
  readonly overrides: { emergency: boolean; forceFinish: boolean };
  readonly registry: { source: 'function' | 'option' | 'none'; counts: Record<ConsumerMode, number> };
  readonly consumers: readonly ConsumerView[];
  readonly cloudWatchError?: string;
  readonly oldUser?: { username: string; sessions?: number; sessionsError?: string };
  readonly gates: { promotion: GateView; revocation: GateView };
  readonly health: HealthView;
}

/**
 * @example
 * const report = await status(clients, 'orders-app', { sessions: true });
 */
export async function status(clients: CliClients, secretId: string, options: StatusOptions = {}): Promise<StatusReport> {
  const now = options.now ?? Date.now();
  const state = await readSecretState(clients, secretId);
  const { registry, source, namespace } = await loadRegistry(clients, state, options);
  const consumers: ConsumerView[] = [];
  let cloudWatchError: string | undefined;
  let promotion: GateDecision | undefined;
  let revocation: GateDecision | undefined;
  if (registry.length > 0) {
    try {
      // One read for both gates, with the Maximum the revocation guard needs.
      const readout = await readGenerations(clients.cw, {
        namespace,
        secretName: secretNameDimension(state.name),
        consumers: registry,
        now,
        lookbackSeconds: 3600,
        statistics: REVOCATION_STATISTICS,
      });
      if (state.pending?.generation !== undefined) promotion = decidePromotion(registry, readout, state.pending.generation);
      revocation = decideRevocation(registry, readout, { current: state.current?.generation ?? 0, pending: state.pending?.generation });
      for (const c of revocation.consumers) {
        const blocked = revocation.blocking.find((b) => b.consumer === c.consumer);
        consumers.push({
          name: c.consumer,
          mode: c.mode,
          maxStalenessSeconds: c.maxStalenessSeconds,
          state: c.state === 'silent' ? 'silent' : blocked ? (blocked.reason === 'ahead' ? 'ahead' : 'stale') : 'ok',
          generation: c.generation,
          dataAgeSeconds: c.lastSeen ? Math.max(0, Math.round((now - c.lastSeen.timestamp) / 1000)) : undefined,
          lastSeenGeneration: c.lastSeen?.generation,
        });
      }
    } catch (err) {
      cloudWatchError = (err as Error).message;
      for (const c of registry) consumers.push({ name: c.name, mode: c.mode, maxStalenessSeconds: c.maxStalenessSeconds, state: 'unverified' });
    }
  }
  const oldUser = await oldUserSessions(clients, state, options);
  const report: Omit<StatusReport, 'health'> = {
    secret: {
      arn: state.arn,
      name: state.name,
      rotationEnabled: state.rotationEnabled,
      rotationFunction: state.rotationLambdaArn,
      lastRotated: state.lastRotated,
    },
    versions: state.versions,
    rotationInProgress: state.pending !== undefined,
    overrides: state.overrides,
    registry: { source, counts: blastRadius(registry) },
    consumers,
    cloudWatchError,
    oldUser,
    gates: {
      promotion: promotionView(state, registry, promotion, cloudWatchError),
      revocation: revocationView(state, registry, revocation, cloudWatchError, oldUser),
    },
  };
  return { ...report, health: healthOf(report, state) };
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
  const view = (s: Health, reasons: string[]): HealthView => ({ state: s, exitCode: HEALTH_EXIT_CODES[s], reasons });
  if (state.pending) {
    return view('holding', [
      `a rotation is waiting (version ${state.pending.versionId}, generation ${state.pending.generation ?? '?'}); promotion gate ${r.gates.promotion.verdict.toUpperCase()}`,
    ]);
  }
  const unknown: string[] = [];
  if (r.cloudWatchError) unknown.push(`CloudWatch could not be read: ${r.cloudWatchError}`);
  else if (r.consumers.length > 0 && r.consumers.every((c) => c.dataAgeSeconds === undefined)) {
    unknown.push('no registered consumer has reported in the last hour (check the namespace, the reporters and cloudwatch:GetMetricData)');
  }
  if (r.oldUser?.sessionsError) unknown.push(`the sessions of "${r.oldUser.username}" could not be counted: ${r.oldUser.sessionsError}`);
  if (unknown.length > 0) return view('unknown', unknown);
  if (r.gates.revocation.verdict === 'hold') {
    return view('holding', [`the next rotation would be blocked: revocation ${r.gates.revocation.reasons.join('; ')}`]);
  }
  return view('healthy', [
    `no rotation is waiting; revocation ${r.gates.revocation.verdict.toUpperCase()}: ${r.gates.revocation.reasons.join('; ')}`,
  ]);
}

async function loadRegistry(
  clients: CliClients,
  state: SecretState,
  options: StatusOptions,
): Promise<{ registry: ConsumerRegistration[]; source: 'function' | 'option' | 'none'; namespace: string }> {
  if (options.consumers !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(options.consumers);
    } catch {
      throw new ConfigurationError('--consumers must be a JSON array of {name, mode, maxStalenessSeconds}');
    }
    return { registry: parseRegistry(parsed, '--consumers'), source: 'option', namespace: options.namespace ?? DEFAULT_NAMESPACE };
  }
  if (!state.rotationLambdaArn) return { registry: [], source: 'none', namespace: options.namespace ?? DEFAULT_NAMESPACE };
  const fn = await clients.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: state.rotationLambdaArn }));
  const env = fn.Environment?.Variables ?? {};
  const namespace = options.namespace ?? (env.CONVERGE_METRIC_NAMESPACE || DEFAULT_NAMESPACE);
  if (!env.CONVERGE_CONSUMERS) return { registry: [], source: 'function', namespace };
  return { registry: parseRegistry(JSON.parse(env.CONVERGE_CONSUMERS), 'CONVERGE_CONSUMERS'), source: 'function', namespace };
}

async function oldUserSessions(clients: CliClients, state: SecretState, options: StatusOptions): Promise<StatusReport['oldUser']> {
  const username = state.previous?.username;
  if (!username) return undefined;
  if (!options.sessions) return { username };
  try {
    // Only the master credential is used, in memory; nothing about it is printed.
    const ctx = { secretsManager: clients.sm, rds: clients.rds, secretArn: state.arn };
    const current = await readCurrent(ctx);
    const master = await loadMaster(ctx, current);
    // The same scope as the revocation guard: this server and every reader or replica, with the
    // master session's search path pinned.
    const connection = { caBundlePath: options.caBundlePath, applicationName: 'converge-cli', pinCatalogSearchPath: true };
    const members = await otherMembers(clients.rds, current, master.target);
    const sessions = await withClient(master.target, master.credential, connection, async (c) => [
      ...(await listSessions(c, username)),
      ...(await sessionsOnMembers(members, master.credential, connection, username)).flatMap((m) => m.sessions),
    ]);
    return { username, sessions: sessions.length };
  } catch (err) {
    return { username, sessionsError: (err as Error).message };
  }
}

function promotionView(state: SecretState, registry: readonly ConsumerRegistration[], d: GateDecision | undefined, cwError?: string): GateView {
  if (!state.pending) return { verdict: 'not-applicable', reasons: ['no rotation is waiting'] };
  if (state.overrides.forceFinish) return { verdict: 'admit', reasons: ['operator override converge:force-finish is set'] };
  if (!registry.some((c) => c.mode === 'live')) return { verdict: 'admit', requiredGeneration: state.pending.generation, reasons: ['no live consumer is registered'] };
  if (cwError || !d) return { verdict: 'unknown', reasons: [`CloudWatch could not be read (the gate fails closed): ${cwError ?? 'no data'}`] };
  return {
    verdict: d.admit ? 'admit' : 'hold',
    requiredGeneration: d.requiredGeneration,
    reasons: d.admit ? ['every live consumer reports the pending generation'] : d.blocking.map(reason),
  };
}

function revocationView(
  state: SecretState,
  registry: readonly ConsumerRegistration[],
  d: GateDecision | undefined,
  cwError: string | undefined,
  oldUser: StatusReport['oldUser'],
): GateView {
  if (!state.previous) return { verdict: 'admit', reasons: ['no previous user yet: the next rotation creates the alternate user'] };
  if (state.overrides.emergency) return { verdict: 'admit', reasons: ['operator override converge:emergency is set: old sessions will be terminated'] };
  const reasons: string[] = [];
  if (registry.length > 0 && (cwError || !d)) reasons.push(`CloudWatch could not be read (the guard fails closed): ${cwError ?? 'no data'}`);
  if (d) reasons.push(...d.blocking.map(reason));
  if (oldUser?.sessions) reasons.push(`${oldUser.sessions} open session(s) of "${oldUser.username}"`);
  const sessionsUnknown = oldUser?.sessions === undefined;
  const acceptedGenerations = d?.acceptedGenerations;
  if (reasons.length > 0) return { verdict: 'hold', requiredGeneration: state.current?.generation, acceptedGenerations, reasons };
  return {
    verdict: sessionsUnknown ? 'unknown' : 'admit',
    requiredGeneration: state.current?.generation,
    acceptedGenerations,
    reasons: [
      registry.length === 0
        ? 'no consumer is registered'
        : `every consumer reports the current generation${(acceptedGenerations?.length ?? 0) > 1 ? ' or the pending one' : ''}`,
      ...(sessionsUnknown ? [`sessions of "${oldUser?.username}" not checked (pass --sessions)`] : []),
    ],
  };
}

function reason(b: { consumer: string; reason: string; lastGeneration?: number }): string {
  if (b.reason === 'silent') return `${b.consumer}: silent (no fresh data${b.lastGeneration !== undefined ? `; last seen generation ${b.lastGeneration}` : ''})`;
  if (b.reason === 'stale') return `${b.consumer}: stale (reports generation ${b.lastGeneration})`;
  if (b.reason === 'ahead') {
    return `${b.consumer}: ahead (a process holds generation ${b.lastGeneration}, newer than current (an aborted rotation's credential))`;
  }
  return `${b.consumer}: ${b.reason}`;
}
