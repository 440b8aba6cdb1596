/**
 * `converge status`: what the rotation is doing (its state, from the records the rotation function
 * keeps on the secret, see lambda/rotation/records.ts) and the next action for the operator, chosen
 * from that state and the consumers' states, as pure functions (the decision table is tested row
 * by row in test/unit/next-action.test.ts). The README's runbook is keyed to these actions.
 */
import type { ConsumerView, ProcessView } from './consumer-series';

/** A failed rotation step, as the function recorded it (`converge:last-failure`). */
export interface FailureView {
  readonly step: string;
  /** ISO 8601. */
  readonly at: string;
  /** The typed error's name (lambda/shared/errors.ts). */
  readonly errorName: string;
  readonly message: string;
}

/** A session not opened through the consumer library (no `cv1` application_name). */
export interface UnattributedSession {
  readonly pid: number;
  readonly applicationName: string;
  readonly clientAddr: string | null;
  /** The server it was found on, when not the primary. */
  readonly member?: string;
}

/** One database user's open sessions, grouped by consumer and process (`status --sessions`). */
export interface UserSessionsView {
  readonly username: string;
  /** The stages of the version(s) that hold this user (AWSCURRENT, AWSPREVIOUS, AWSPENDING). */
  readonly stages: readonly string[];
  readonly consumers: readonly {
    readonly consumer: string;
    readonly processes: readonly ProcessView[];
  }[];
  readonly unattributed: readonly UnattributedSession[];
}

/**
 * - `idle`: nothing waits.
 * - `waiting-at-gate`: the promotion gate holds the waiting version (`converge:gate` record).
 * - `step-failed`: a step failed (`converge:last-failure`) for the waiting version, or, with nothing
 *   waiting, after the last completed rotation.
 * - `held-by-guard`: that failure is the revocation guard's `RevocationBlockedError`.
 * - `in-progress`: a version waits and neither of the above is recorded (its steps are running).
 */
export type RotationState =
  'idle' | 'waiting-at-gate' | 'step-failed' | 'held-by-guard' | 'in-progress';

export interface RotationView {
  readonly state: RotationState;
  /** The waiting version. */
  readonly versionId?: string;
  /** Its generation. */
  readonly generation?: number;
  /** Waiting at the gate: first hold; failed: when. ISO 8601. */
  readonly since?: string;
  /** Waiting at the gate: seconds since the first hold. */
  readonly waitingSeconds?: number;
  /** Waiting at the gate: evaluations that held it, over every invocation. */
  readonly evaluations?: number;
  /** Waiting at the gate: the latest evaluation, ISO 8601. */
  readonly lastEvaluation?: string;
  readonly failure?: FailureView;
  /** Held by the guard, with `--sessions`: the sessions of the user it refuses to overwrite. */
  readonly guardSessions?: UserSessionsView;
}

/** The records {@link classifyRotation} reads (lambda/rotation/records.ts decoders). */
export interface RotationFacts {
  /** The waiting version (AWSPENDING on a version that is not AWSCURRENT). */
  readonly pending?: { readonly versionId: string; readonly generation?: number };
  /** DescribeSecret's LastRotatedDate, ISO 8601. */
  readonly lastRotated?: string;
  readonly gate?: {
    readonly versionId: string;
    readonly since: string;
    readonly evaluations: number;
    readonly lastEvaluation: string;
  };
  readonly lastFailure?: {
    readonly versionId: string;
    readonly step: string;
    readonly at: string;
    readonly errorName: string;
    readonly message: string;
  };
  /** Evaluation time, milliseconds since the epoch. */
  readonly now: number;
}

/**
 * The rotation's state from the secret's stages and the function's records.
 *
 * @example
 * const rotation = classifyRotation({ pending: state.pending, lastRotated: state.lastRotated, gate, lastFailure, now: Date.now() });
 */
export function classifyRotation(f: RotationFacts): RotationView {
  const failure = f.lastFailure;
  const failureView = failure && {
    step: failure.step,
    at: failure.at,
    errorName: failure.errorName,
    message: failure.message,
  };
  const failed = (v: Omit<RotationView, 'state' | 'failure' | 'since'>): RotationView => ({
    state: failure!.errorName === 'RevocationBlockedError' ? 'held-by-guard' : 'step-failed',
    ...v,
    since: failure!.at,
    failure: failureView,
  });
  if (!f.pending) {
    // Nothing waits: a failure counts only when it is newer than the last completed rotation.
    if (failure && (!f.lastRotated || Date.parse(failure.at) > Date.parse(f.lastRotated)))
      return failed({});
    return { state: 'idle' };
  }
  const waiting = { versionId: f.pending.versionId, generation: f.pending.generation };
  const gate = f.gate?.versionId === f.pending.versionId ? f.gate : undefined;
  const failedNow = failure?.versionId === f.pending.versionId ? failure : undefined;
  // A gate evaluation after the failure means the rotation went on past it (a retry).
  if (failedNow && !(gate && Date.parse(gate.lastEvaluation) > Date.parse(failedNow.at)))
    return failed(waiting);
  if (gate) {
    return {
      state: 'waiting-at-gate',
      ...waiting,
      since: gate.since,
      waitingSeconds: Math.max(0, Math.round((f.now - Date.parse(gate.since)) / 1000)),
      evaluations: gate.evaluations,
      lastEvaluation: gate.lastEvaluation,
    };
  }
  return { state: 'in-progress', ...waiting };
}

export type NextActionKind =
  'none' | 'wait' | 'restart' | 'finish-force' | 'abort' | 'emergency' | 'investigate';

export interface NextAction {
  readonly kind: NextActionKind;
  /** The exact converge command to run, or for `restart` what to restart. */
  readonly command?: string;
  /** `restart`: the consumer. */
  readonly consumer?: string;
  /** `restart` with `--sessions`: that consumer's processes still on a generation it must leave. */
  readonly processes?: readonly ProcessView[];
  /** `wait`: seconds until the state should change by itself. */
  readonly estimateSeconds?: number;
  readonly why: string;
}

/** Everything {@link decideNextAction} decides from. */
export interface NextActionInput {
  /** The secret's name, for the commands. */
  readonly secret: string;
  readonly rotation: RotationView;
  /** AWSCURRENT's generation. */
  readonly currentGeneration?: number;
  readonly consumers: readonly ConsumerView[];
  /** CloudWatch could not be read (consumers UNVERIFIED). */
  readonly cloudWatchError?: string;
  /** Whether `--sessions` listed the sessions (else processes are unknown). */
  readonly sessionsListed: boolean;
  /** The user the next revocation overwrites (AWSPREVIOUS's, or the waiting one's). */
  readonly alternateUser?: string;
  /** Its sessions, with `--sessions`. */
  readonly alternateSessions?: UserSessionsView;
  /** `--sessions` was asked for and failed. */
  readonly sessionsError?: string;
  /** The operator override `converge:force-finish` is set for the waiting version. */
  readonly forceFinish?: boolean;
  /** The operator override `converge:emergency` is set for the waiting version. */
  readonly emergency?: boolean;
  /** The promotion gate's poll period (CONVERGE_GATE_POLL_SECONDS). */
  readonly gatePollSeconds: number;
  /** A SILENT blocker silent for more than this many times its maxStaleness is probably gone. @default 10 */
  readonly goneAfterStalenessMultiple?: number;
  /** Evaluation time, milliseconds since the epoch. */
  readonly now: number;
}

/**
 * The next action, chosen from the state (first matching row):
 *
 * | state | action |
 * | --- | --- |
 * | step failed, a version waits | `abort` (then fix the cause, then rotate) |
 * | step failed, nothing waits | `investigate` |
 * | held by the guard: a consumer BLOCKING | `restart` it (its processes on the old user) |
 * | held by the guard: attributed old-user sessions | `restart` that consumer |
 * | held by the guard: only unattributed sessions | `investigate` them (or `rotate --emergency` on compromise) |
 * | held by the guard: nothing known to block now | `abort`, then `rotate` |
 * | CloudWatch unreadable | `investigate` |
 * | waiting at the gate with `finish --force` set | `wait` (next re-drive promotes) |
 * | waiting: a live consumer STALE/SILENT | `restart` it (`finish --force` as the alternative when it is gone) |
 * | waiting: every blocker already reports the pending generation | `wait` until its old data leaves the window |
 * | waiting: nothing blocks | `wait` for the gate's next evaluation |
 * | in progress | `wait` |
 * | idle: no consumer data at all | `investigate` |
 * | idle: the next guard would hold on a consumer | `restart` it before the next rotation (`wait` for a live one on an aborted generation) |
 * | idle: old-user sessions | `restart` their consumer / `investigate` unattributed ones |
 * | idle, healthy | `none` |
 *
 * @example
 * const next = decideNextAction({ secret: 'orders-app', rotation, consumers, sessionsListed: false, gatePollSeconds: 20, now: Date.now() });
 * console.log(`Next: ${next.kind} ${next.command ?? ''}`);
 */
export function decideNextAction(input: NextActionInput): NextAction {
  const r = input.rotation;
  const s = input.secret;
  if (r.state === 'step-failed') {
    const f = r.failure;
    const what = f
      ? `${f.step} failed at ${f.at}: ${f.errorName}: ${f.message}`
      : 'a rotation step failed';
    if (r.versionId) {
      return {
        kind: 'abort',
        command: `converge abort ${s}`,
        why:
          `${what}. The rotation of version ${r.versionId} cannot go on by itself: abort it (AWSCURRENT stays), fix the cause ` +
          `named by ${f?.errorName ?? 'the error'}, then run \`converge rotate ${s}\`.`,
      };
    }
    return {
      kind: 'investigate',
      why: `${what}. No version waits, so there is nothing to abort: read the rotation function's log for ${f?.errorName ?? 'the error'} and fix the cause before the next rotation.`,
    };
  }
  if (r.state === 'held-by-guard') return heldByGuard(input);
  if (input.cloudWatchError) {
    return {
      kind: 'investigate',
      why: `CloudWatch could not be read (${input.cloudWatchError}); the gates fail closed on it. Check cloudwatch:GetMetricData for this role, the region and the network path.`,
    };
  }
  if (r.state === 'waiting-at-gate' || r.state === 'in-progress') return waiting(input);
  return idle(input);
}

function heldByGuard(input: NextActionInput): NextAction {
  const r = input.rotation;
  const user = input.alternateUser ?? 'the previous user';
  const head = `the revocation guard refused to overwrite ${user} at ${r.failure?.step ?? 'setSecret'} (${r.failure?.at ?? 'time unknown'})`;
  const blocking = input.consumers.filter((c) => c.state === 'BLOCKING');
  if (blocking.length > 0)
    return restart(
      input,
      blocking,
      `${head}: ${blocking.map(describeConsumer).join('; ')}`,
      afterGuard(input),
    );
  const sessions = input.alternateSessions ?? r.guardSessions;
  const attributed = sessions?.consumers ?? [];
  if (attributed.length > 0) return restartSessions(attributed, head);
  if (sessions && sessions.unattributed.length > 0) return unattributed(input, sessions, head);
  if (!input.sessionsListed) {
    return {
      kind: 'investigate',
      command: `converge status ${input.secret} --sessions`,
      why: `${head}; no consumer blocks it now, so open sessions of ${user} may: pass --sessions to list them${input.sessionsError ? ` (it failed: ${input.sessionsError})` : ''}.`,
    };
  }
  return {
    kind: 'abort',
    command: `converge abort ${input.secret}`,
    why: `${head}, but nothing holds ${user} now. Abort the held attempt (AWSCURRENT stays), then run \`converge rotate ${input.secret}\`.`,
  };
}

function afterGuard(input: NextActionInput): string {
  return `Then the guard admits: abort the held attempt and run \`converge rotate ${input.secret}\`.`;
}

function waiting(input: NextActionInput): NextAction {
  const r = input.rotation;
  const poll = input.gatePollSeconds;
  const held =
    r.state === 'waiting-at-gate'
      ? `the promotion gate has held version ${r.versionId} (generation ${r.generation ?? '?'}) for ${duration(r.waitingSeconds ?? 0)} (${r.evaluations ?? 0} evaluation(s))`
      : `version ${r.versionId} (generation ${r.generation ?? '?'}) is in progress (no gate hold recorded yet)`;
  if (input.forceFinish) {
    return {
      kind: 'wait',
      estimateSeconds: poll,
      why: `${held}; the operator override finish --force is set: the next re-drive promotes it.`,
    };
  }
  const blocking = input.consumers.filter(
    (c) => c.state === 'BLOCKING' && c.blocks === 'promotion',
  );
  const notAdopted = blocking.filter((c) => !adopted(c));
  if (notAdopted.length > 0) {
    const gone = notAdopted.find((c) => c.reason === 'silent' && silentLong(c, input));
    const alternative = gone
      ? `If ${gone.name} is gone for good (silent for ${gone.since ? duration((input.now - Date.parse(gone.since)) / 1000) : 'more than the hour read'}, over ${input.goneAfterStalenessMultiple ?? 10}x its maxStaleness): \`converge finish ${input.secret} --force\` promotes without it (logged FORCED).`
      : `If it cannot adopt (check its ReloadFailures and logs), \`converge finish ${input.secret} --force\` promotes without it (logged FORCED).`;
    return restart(
      input,
      notAdopted,
      `${held}: ${notAdopted.map(describeConsumer).join('; ')}`,
      alternative,
    );
  }
  if (blocking.length > 0) {
    const clears = Math.max(
      ...blocking.map((c) => c.windowClearsInSeconds ?? c.maxStalenessSeconds),
    );
    return {
      kind: 'wait',
      command: `converge status ${input.secret} --watch`,
      estimateSeconds: clears + poll,
      why:
        `${held}: ${blocking.map((c) => c.name).join(', ')} already report(s) generation ${r.generation ?? '?'}; ` +
        `older data points leave the freshness window in about ${duration(clears)}, then the gate (every ${poll}s) promotes.`,
    };
  }
  if (r.state === 'in-progress') {
    const live = input.consumers.filter((c) => c.mode === 'live');
    const estimate =
      (live.length > 0 ? Math.max(...live.map((c) => c.maxStalenessSeconds)) : 0) + poll;
    return {
      kind: 'wait',
      command: `converge status ${input.secret} --watch`,
      estimateSeconds: estimate,
      why: `${held}; the rotation function is running its steps; live consumers adopt the pending credential within their refresh interval.`,
    };
  }
  return {
    kind: 'wait',
    command: `converge status ${input.secret} --watch`,
    estimateSeconds: poll,
    why: `${held}; every live consumer now reports generation ${r.generation ?? '?'}: the gate promotes at its next evaluation (every ${poll}s).`,
  };
}

function idle(input: NextActionInput): NextAction {
  const withData = input.consumers.filter((c) => c.dataAgeSeconds !== undefined);
  if (input.consumers.length > 0 && withData.length === 0) {
    return {
      kind: 'investigate',
      why: 'no registered consumer has reported in the last hour: check the metric namespace and region, that the reporters run, and cloudwatch:GetMetricData.',
    };
  }
  const blocking = input.consumers.filter((c) => c.state === 'BLOCKING');
  if (blocking.length > 0) {
    const head = `no rotation is waiting, but the next rotation's revocation guard would hold`;
    const toRestart = blocking.filter((c) => !(c.reason === 'ahead' && c.mode === 'live'));
    if (toRestart.length > 0) {
      return restart(
        input,
        toRestart,
        `${head}: ${blocking.map(describeConsumer).join('; ')}`,
        'Restart before the next rotation.',
      );
    }
    const clears = Math.max(...blocking.map((c) => c.maxStalenessSeconds));
    return {
      kind: 'wait',
      command: `converge status ${input.secret} --watch`,
      estimateSeconds: clears,
      why:
        `${head}: ${blocking.map(describeConsumer).join('; ')}. Live consumers fall back to AWSCURRENT on their next refresh; ` +
        `the aborted generation leaves their freshness window within about ${duration(clears)}.`,
    };
  }
  const sessions = input.alternateSessions;
  if (sessions && (sessions.consumers.length > 0 || sessions.unattributed.length > 0)) {
    const head = `no rotation is waiting, but ${sessions.username} (the user the next rotation overwrites) has open sessions`;
    if (sessions.consumers.length > 0) return restartSessions(sessions.consumers, head);
    return unattributed(input, sessions, head);
  }
  return {
    kind: 'none',
    why:
      input.consumers.length === 0
        ? 'no rotation is waiting and no consumer is registered'
        : 'no rotation is waiting and every consumer reports the current generation: the next rotation would go through',
  };
}

function restart(
  input: NextActionInput,
  consumers: readonly ConsumerView[],
  head: string,
  alternative: string,
): NextAction {
  // Prefer a consumer whose offending processes are known.
  const first = consumers.find((c) => offending(c, input).length > 0) ?? consumers[0];
  const processes = input.sessionsListed ? offending(first, input) : undefined;
  const others = consumers.filter((c) => c !== first).map((c) => c.name);
  const moved =
    first.reason === 'silent' && input.sessionsListed && (first.processes ?? []).length > 0;
  const where = input.sessionsListed
    ? processes && processes.length > 0
      ? `its processes on an old credential: ${processes.map(describeProcess).join(', ')}`
      : moved
        ? `its sessions already use generation ${[...new Set(first.processes!.map((p) => p.generation))].join(', ')} (${first.processes!.map(describeProcess).join(', ')}), but it sends no metrics: check its reporter (namespace, SecretName, cloudwatch:PutMetricData), or restart it`
        : 'no session of it is open on an old credential (restart the processes that report it)'
    : 'pass --sessions to list its processes';
  return {
    kind: 'restart',
    command: `restart ${first.name}`,
    consumer: first.name,
    ...(processes ? { processes } : {}),
    why: `${head}. Restart ${first.name} (${where})${others.length > 0 ? `; then ${others.join(', ')}` : ''}. ${alternative}`,
  };
}

function restartSessions(consumers: UserSessionsView['consumers'], head: string): NextAction {
  const first = consumers[0];
  const others = consumers.slice(1).map((c) => c.consumer);
  return {
    kind: 'restart',
    command: `restart ${first.consumer}`,
    consumer: first.consumer,
    processes: first.processes,
    why:
      `${head}: ${first.consumer} holds ${first.processes.map(describeProcess).join(', ')}${others.length > 0 ? `; also ${others.join(', ')}` : ''}. ` +
      `Restart those processes so they log in as the current user.`,
  };
}

function unattributed(
  input: NextActionInput,
  sessions: UserSessionsView,
  head: string,
): NextAction {
  const list = sessions.unattributed
    .slice(0, 5)
    .map(
      (u) =>
        `pid ${u.pid} application_name ${JSON.stringify(u.applicationName)}${u.clientAddr ? ` from ${u.clientAddr}` : ''}${u.member && u.member !== 'primary' ? ` on ${u.member}` : ''}`,
    )
    .join('; ');
  const more = sessions.unattributed.length > 5 ? `; ${sessions.unattributed.length - 5} more` : '';
  const emergency =
    input.rotation.versionId !== undefined
      ? `\`converge abort ${input.secret}\` then \`converge rotate ${input.secret} --emergency\``
      : `\`converge rotate ${input.secret} --emergency\``;
  return {
    kind: 'investigate',
    why:
      `${head}: only sessions not opened through the consumer library (${list}${more}). Find who they are (a consumer nobody registered, a person, a script) ` +
      `and end them; if the credential may be compromised: ${emergency} (terminates them).`,
  };
}

/** Processes of `c` still on a generation it must leave (with `--sessions`). */
function offending(c: ConsumerView, input: NextActionInput): ProcessView[] {
  const processes = c.processes ?? [];
  if (c.blocks === 'promotion')
    return processes.filter((p) => p.generation < (c.requiredGeneration ?? 0));
  const accepted = [input.currentGeneration, input.rotation.generation].filter(
    (g) => g !== undefined,
  );
  return processes.filter((p) => !accepted.includes(p.generation));
}

/** A promotion blocker whose newest data already reports the pending generation. */
function adopted(c: ConsumerView): boolean {
  return (
    c.reason === 'stale' &&
    c.lastSeenGeneration !== undefined &&
    c.requiredGeneration !== undefined &&
    c.lastSeenGeneration >= c.requiredGeneration
  );
}

function silentLong(c: ConsumerView, input: NextActionInput): boolean {
  const limit = (input.goneAfterStalenessMultiple ?? 10) * c.maxStalenessSeconds * 1000;
  if (!c.since) return c.sinceBeforeRead === true && limit <= 3_600_000;
  return input.now - Date.parse(c.since) > limit;
}

function describeConsumer(c: ConsumerView): string {
  const since = c.since
    ? ` since ${c.since}${c.sinceBeforeRead ? ' or earlier' : ''}`
    : c.reason === 'silent'
      ? ' (no data in the last hour)'
      : '';
  if (c.reason === 'silent')
    return `${c.name} (${c.mode}) is SILENT${since}${c.lastSeenGeneration !== undefined ? `, last reported generation ${c.lastSeenGeneration}` : ''}`;
  if (c.reason === 'ahead')
    return `${c.name} (${c.mode}) still holds an aborted rotation's generation (above current ${c.requiredGeneration ?? '?'})`;
  return `${c.name} (${c.mode}) is STALE${since}: reports generation ${c.generation ?? '?'}, needs ${c.requiredGeneration ?? '?'}`;
}

function describeProcess(p: ProcessView): string {
  return `${p.host} pid ${p.pid} (generation ${p.generation}${p.user ? `, user ${p.user}` : ''}, ${p.sessions} session${p.sessions === 1 ? '' : 's'})`;
}

/**
 * A duration for people: `45s`, `12m 3s`, `2h 5m`.
 *
 * @example
 * duration(723); // '12m 3s'
 */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}
