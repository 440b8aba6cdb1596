/**
 * A user's open sessions grouped by who opened them: per consumer, per process (host, pid and the
 * credential generation it logged in with), from the `cv1` application_name the consumer library
 * sets (lambda/shared/application-name.ts); sessions without that form are `unattributed` (a
 * consumer nobody registered or that does not use the library, a human, a script). Used by the
 * revocation guard's message and log, the emergency log, and `converge status --sessions`.
 */
import { parseApplicationName, type SessionAttribution } from '../../shared/application-name';
import type { UserSession } from './sessions';

/** The sessions of one process on one credential generation. */
export interface ProcessSessions {
  readonly host: string;
  readonly pid: number;
  /** Generation of the credential these sessions logged in with. */
  readonly generation: number;
  /** How many sessions. */
  readonly sessions: number;
  /** Earliest `backend_start` of these sessions (ISO), null when the server showed none. */
  readonly oldestBackendStart: string | null;
}

/** The sessions of one consumer, by process. */
export interface ConsumerSessions {
  /** The consumer field of the application_name (ends with `~` when it was shortened). */
  readonly consumer: string;
  /** Ordered by host, pid, then generation. */
  readonly processes: readonly ProcessSessions[];
}

/** {@link groupSessions}'s answer. */
export interface SessionGroups<T extends UserSession = UserSession> {
  /** Ordered by consumer name. */
  readonly consumers: readonly ConsumerSessions[];
  /** Sessions not opened through the consumer library, in the order given. */
  readonly unattributed: readonly T[];
}

/**
 * Groups sessions by consumer and process. A process that holds sessions on two generations (old
 * connections still open after a credential swap) appears once per generation.
 *
 * @example
 * const { consumers, unattributed } = groupSessions(await listSessions(master, 'app_clone'));
 * for (const c of consumers) console.log(c.consumer, c.processes.length);
 */
export function groupSessions<T extends UserSession>(sessions: readonly T[]): SessionGroups<T> {
  const byConsumer = new Map<string, Map<string, ProcessSessions>>();
  const unattributed: T[] = [];
  for (const s of sessions) {
    const a = attributionOf(s);
    if (!a) {
      unattributed.push(s);
      continue;
    }
    let processes = byConsumer.get(a.consumer);
    if (!processes) byConsumer.set(a.consumer, (processes = new Map()));
    const key = `${a.host}\u0000${a.pid}\u0000${a.generation}`;
    const seen = processes.get(key);
    processes.set(key, {
      host: a.host,
      pid: a.pid,
      generation: a.generation,
      sessions: (seen?.sessions ?? 0) + 1,
      oldestBackendStart: earliest(seen?.oldestBackendStart ?? null, s.backendStart),
    });
  }
  const consumers = [...byConsumer.entries()]
    .sort(([a], [b]) => compare(a, b))
    .map(([consumer, processes]) => ({
      consumer,
      processes: [...processes.values()].sort(
        (a, b) => compare(a.host, b.host) || a.pid - b.pid || a.generation - b.generation,
      ),
    }));
  return { consumers, unattributed };
}

/** How many of each list {@link describeSessionGroups} spells out before `...`. */
export interface DescribeLimits {
  /** Processes per consumer. @default 5 */
  readonly processes?: number;
  /** Unattributed sessions. @default 5 */
  readonly unattributed?: number;
}

/**
 * One line naming who holds the sessions, for error messages and logs (never query text):
 * `orders-api (host-a pid 4242: 2 sessions, generation 6; ...), unattributed 1 (pid 5151
 * application_name "psql" from 10.0.0.9)`. Sessions found on another member than the primary say
 * `on <member>`.
 *
 * @example
 * describeSessionGroups(groupSessions(sessions));
 */
export function describeSessionGroups<T extends UserSession & { member?: string }>(
  groups: SessionGroups<T>,
  limits: DescribeLimits = {},
): string {
  const maxProcesses = limits.processes ?? 5;
  const maxUnattributed = limits.unattributed ?? 5;
  const parts = groups.consumers.map((c) => {
    const shown = c.processes.slice(0, maxProcesses).map(describeProcess);
    const more = c.processes.length - shown.length;
    return `${c.consumer} (${shown.join('; ')}${more > 0 ? `; ${more} more process(es)` : ''})`;
  });
  if (groups.unattributed.length > 0) {
    const shown = groups.unattributed.slice(0, maxUnattributed).map(describeUnattributed);
    const more = groups.unattributed.length - shown.length;
    parts.push(
      `unattributed ${groups.unattributed.length} (${shown.join('; ')}${more > 0 ? `; ${more} more` : ''})`,
    );
  }
  return parts.join(', ');
}

/**
 * What a log line says about one session: who opened it (consumer, host, pid, generation) or, when
 * unattributed, its application_name and client address; never its query text.
 *
 * @example
 * logger.warn('terminated', { terminated: sessions.map(sessionForLog) });
 */
export function sessionForLog<T extends UserSession & { member?: string }>(s: T) {
  const a = attributionOf(s);
  return {
    pid: s.pid,
    ...(s.member !== undefined ? { member: s.member } : {}),
    ...(a
      ? { consumer: a.consumer, host: a.host, processId: a.pid, generation: a.generation }
      : { unattributed: true }),
    applicationName: s.applicationName,
    clientAddr: s.clientAddr,
    database: s.database,
    backendStart: s.backendStart,
  };
}

function describeProcess(p: ProcessSessions): string {
  return `${p.host} pid ${p.pid}: ${p.sessions} session${p.sessions === 1 ? '' : 's'}, generation ${p.generation}`;
}

function describeUnattributed(s: UserSession & { member?: string }): string {
  return (
    `pid ${s.pid} application_name ${JSON.stringify(s.applicationName)}` +
    (s.clientAddr ? ` from ${s.clientAddr}` : '') +
    (s.member && s.member !== 'primary' ? ` on ${s.member}` : '')
  );
}

function attributionOf(s: UserSession): SessionAttribution | undefined {
  return s.attribution ?? parseApplicationName(s.applicationName);
}

function earliest(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return Date.parse(b) < Date.parse(a) ? b : a;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
