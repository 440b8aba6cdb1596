/**
 * The invariants of the model-based test, checked after every command against what really is:
 * the secret's versions in the Secrets Manager model, the roles and sessions in PostgreSQL, what
 * the processes hold, and every line the run printed.
 *
 * The {@link Ledger} records what the test did (aborts, emergencies, forces, successful steps);
 * the {@link Checker} compares. A violation throws {@link InvariantViolation}, whose message names
 * the invariant, so fast-check shrinks to the shortest command sequence that breaks it.
 */
import { Client } from 'pg';
import { ConvergeError } from '../../lambda/shared/errors';
import { withClient } from '../../lambda/shared/pg-connection';
import { AWSCURRENT, AWSPENDING, AWSPREVIOUS, type DbSecret } from '../../lambda/shared/secret';
import { capturedOutput } from '../support/captured-output';
import { LiveProcess, RestartOnlyProcess } from './consumers';
import { runScoped } from './faults';
import type { World } from './world';

/** A broken promise: the invariant's number and what was seen. */
export class InvariantViolation extends Error {
  public constructor(
    public readonly invariant: number,
    detail: string,
  ) {
    super(`invariant ${invariant} violated: ${detail}`);
    this.name = 'InvariantViolation';
  }
}

/** An emergency rotation seen promoted, and the credential it must revoke. */
interface EmergencyRecord {
  readonly token: string;
  readonly formerly: DbSecret;
  /** The command in which the promotion was seen. */
  readonly seenAt: number;
  /** The command after which an invocation had completed, so the revocation must have happened. */
  dueAt?: number;
  sessionsChecked: boolean;
}

/** What the test did, which the checker cannot read back from the system. */
export class Ledger {
  /** Tokens whose AWSPENDING an operator's abort removed. */
  public readonly aborted = new Set<string>();
  /** Tokens of `converge rotate --emergency`. */
  public readonly emergencyTokens = new Set<string>();
  /** Tokens whose setSecret returned successfully. */
  public readonly setSecretDone = new Set<string>();
  /** Consumers an operator's force left behind (allowed to be stale). */
  public readonly staleAllowed = new Set<string>();
  public readonly emergencies: EmergencyRecord[] = [];
  /** AWSCURRENT's version after each change. */
  public readonly currentHistory: string[] = [];
  /** An operator's abort did not complete (its re-drive may not have run): it must be run again. */
  public abortIncomplete = false;
}

interface RoleRow {
  readonly rolname: string;
  readonly rolpassword: string | null;
  readonly rolcanlogin: boolean;
}

interface SessionRow {
  readonly pid: number;
  readonly usename: string;
  readonly backend_start: Date;
}

interface ProbeRow {
  readonly who: string;
  readonly what: string;
}

interface Snapshot {
  readonly roles: Map<string, RoleRow>;
  readonly sessions: SessionRow[];
  /** What the tenant's probe recorded as run by the master. */
  readonly probe: ProbeRow[];
  readonly at: number;
  readonly pending?: string;
}

/** Invariant counters for the run summary. */
export const checkCounts = { checks: 0, logins: 0 };

/**
 * @example
 * const checker = await Checker.open(world, ledger);
 * await checker.before();
 * // ... run a command ...
 * await checker.after();
 */
export class Checker {
  private admin!: Client;
  private snapshot!: Snapshot;
  /** What the last check read. */
  private last: Snapshot | undefined;
  private outputSeen = 0;
  private textsSeen = 0;
  private invocationsSeen = 0;
  private readonly loginCache = new Map<string, boolean>();

  private constructor(
    private readonly world: World,
    private readonly ledger: Ledger,
  ) {}

  public static async open(world: World, ledger: Ledger): Promise<Checker> {
    const checker = new Checker(world, ledger);
    // The database's superuser session (search_path pinned), shared with its resets.
    checker.admin = world.options.database.admin;
    checker.outputSeen = capturedOutput().length;
    ledgerCurrent(world, ledger);
    return checker;
  }

  /** Nothing to release: the session belongs to the database (kept open for the next run). */
  public async close(): Promise<void> {}

  /** Roles, sessions and the probe log in one round trip. */
  private async read(): Promise<Snapshot> {
    const r = await this.admin.query<{
      roles: RoleRow[] | null;
      sessions: (Omit<SessionRow, 'backend_start'> & { backend_start: string })[] | null;
      probe: ProbeRow[] | null;
    }>(
      `SELECT
         (SELECT json_agg(json_build_object('rolname', rolname, 'rolpassword', rolpassword, 'rolcanlogin', rolcanlogin))
            FROM pg_catalog.pg_authid WHERE rolname = ANY($1::text[])) AS roles,
         (SELECT json_agg(json_build_object('pid', pid, 'usename', usename, 'backend_start', backend_start))
            FROM pg_catalog.pg_stat_activity WHERE usename = ANY($1::text[])) AS sessions,
         (SELECT json_agg(json_build_object('who', who, 'what', what)) FROM public.converge_probe_log WHERE who = $2) AS probe`,
      [this.world.users, this.world.db.master.username],
    );
    const row = r.rows[0];
    return {
      roles: new Map((row.roles ?? []).map((x) => [x.rolname, x])),
      sessions: (row.sessions ?? []).map((x) => ({
        ...x,
        backend_start: new Date(x.backend_start),
      })),
      probe: row.probe ?? [],
      at: this.world.clock.now(),
      pending: this.world.waitingToken(),
    };
  }

  /** Sessions of `username` with their application_name (who holds them). */
  public async sessionsOf(username: string): Promise<{ pid: number; application_name: string }[]> {
    return runScoped({ actor: 'checker' }, async () => {
      const r = await this.admin.query<{ pid: number; application_name: string }>(
        'SELECT pid, application_name FROM pg_catalog.pg_stat_activity WHERE usename = $1',
        [username],
      );
      return r.rows;
    });
  }

  /** Takes the snapshot a command is judged against. */
  public async before(options: { reread?: boolean } = {}): Promise<void> {
    // Nothing runs between two commands, so the state the last check read is the state now (and one
    // round trip per command is saved). After anything else moved the world, read again.
    if (this.last && !options.reread) {
      this.snapshot = this.last;
      return;
    }
    this.snapshot = await runScoped({ actor: 'checker' }, () => this.read());
  }

  /** Checks every invariant after a command. */
  public async after(): Promise<void> {
    await runScoped({ actor: 'checker' }, () => this.checkAll());
  }

  /** Whether `s` logs in now (cached per credential and the role's catalog row, which decide it). */
  private async logsIn(s: DbSecret, roles: Map<string, RoleRow>): Promise<boolean> {
    const row = roles.get(s.username);
    if (!row) return false;
    const key = JSON.stringify([s.username, s.password, row.rolpassword, row.rolcanlogin]);
    const cached = this.loginCache.get(key);
    if (cached !== undefined) return cached;
    checkCounts.logins++;
    const ok = await withClient(
      { host: s.host, port: s.port, dbname: s.dbname, ssl: s.ssl },
      s,
      { caBundlePath: this.world.options.database.server.caBundlePath, connectTimeoutMs: 5_000 },
      async () => true,
    ).catch(() => false);
    this.loginCache.set(key, ok);
    return ok;
  }

  /** Whether `s` has logged in while its user's stored password was `rolpassword`. */
  private verifiedUnder(s: DbSecret, rolpassword: string | null | undefined): boolean {
    return (
      this.loginCache.get(JSON.stringify([s.username, s.password, rolpassword ?? null, true])) ===
      true
    );
  }

  private check(invariant: number, ok: boolean, detail: () => string): void {
    checkCounts.checks++;
    if (!ok) throw new InvariantViolation(invariant, detail());
  }

  private async checkAll(): Promise<void> {
    const { world, ledger } = this;
    const after = await this.read();
    this.last = after;
    const versions = world.versions();
    const at = (stage: string) => versions.filter((v) => v.stages.includes(stage));

    // 4. Labels, generations, aborts.
    this.check(
      4,
      at(AWSCURRENT).length === 1,
      () => `AWSCURRENT is on ${at(AWSCURRENT).length} versions`,
    );
    this.check(
      4,
      at(AWSPENDING).length <= 1 && at(AWSPREVIOUS).length <= 1,
      () =>
        `AWSPENDING on ${at(AWSPENDING).length}, AWSPREVIOUS on ${at(AWSPREVIOUS).length} versions`,
    );
    const current = at(AWSCURRENT)[0];
    this.check(
      4,
      !ledger.aborted.has(current.id),
      () => `the aborted version ${current.id} became AWSCURRENT`,
    );
    const generations = versions.filter((v) => v.secret).map((v) => v.secret!.generation);
    this.check(
      4,
      new Set(generations).size === generations.length,
      () => `a generation repeats: ${generations.join(', ')}`,
    );
    const history = ledger.currentHistory;
    if (history[history.length - 1] !== current.id) {
      const previous =
        versions.find((v) => v.id === history[history.length - 1])?.secret?.generation ?? -1;
      this.check(
        4,
        (current.secret?.generation ?? -1) > previous,
        () => `AWSCURRENT went from generation ${previous} to ${current.secret?.generation}`,
      );
      history.push(current.id);
      if (ledger.emergencyTokens.has(current.id)) {
        const formerly = at(AWSPREVIOUS)[0]?.secret;
        if (formerly)
          ledger.emergencies.push({
            token: current.id,
            formerly,
            seenAt: world.command,
            sessionsChecked: false,
          });
      }
    }

    for (const e of ledger.emergencies) {
      // Due once an invocation that started after the promotion completed: any in a later command,
      // or, in the promoting command, a finishSecret or re-drive when nothing in that command
      // crashed (a step racing it may have started before the promotion and owes nothing).
      const sameCommand = world.invocations.filter((i) => i.command === e.seenAt);
      const due = world.invocations.some(
        (i) =>
          i.outcome === 'ok' &&
          (i.command > e.seenAt ||
            (i.command === e.seenAt &&
              /finishSecret|redrive/.test(i.label) &&
              !sameCommand.some((o) => o.outcome === 'crashed'))),
      );
      if (due && e.dueAt === undefined) e.dueAt = world.command;
    }

    // 3. No password changed under a user in use (by reports within freshness, or by sessions).
    for (const [user, row] of after.roles) {
      const before = this.snapshot.roles.get(user);
      if (!before || before.rolpassword === row.rolpassword) continue;
      // An emergency changes passwords without waiting: its setSecret (while its token is pending),
      // and the revocation of the formerly current user once promoted (in that command, or at the
      // next invocation when the function died in between).
      const emergency =
        [this.snapshot.pending, after.pending].some(
          (t) => t !== undefined && ledger.emergencyTokens.has(t),
        ) ||
        ledger.emergencies.some(
          (e) =>
            e.formerly.username === user &&
            (e.seenAt === world.command || e.dueAt === undefined || e.dueAt === world.command),
        );
      if (emergency) continue;
      const kept = after.sessions.filter(
        (s) =>
          s.usename === user &&
          this.snapshot.sessions.some(
            (b) => b.pid === s.pid && +b.backend_start === +s.backend_start,
          ),
      );
      this.check(
        3,
        kept.length === 0,
        () => `the password of ${user} changed while ${kept.length} of its sessions stayed open`,
      );
      const newGeneration = versions.find(
        (v) => v.secret?.username === user && v.stages.includes(AWSPENDING),
      )?.secret?.generation;
      const userOf = new Map(
        versions.filter((v) => v.secret).map((v) => [v.secret!.generation, v.secret!.username]),
      );
      for (const reg of world.options.registry) {
        const since = this.snapshot.at - reg.maxStalenessSeconds * 1000;
        const inUse = world.reports.find(
          (r) =>
            r.consumer === reg.name &&
            r.t > since &&
            r.generation !== newGeneration &&
            userOf.get(r.generation) === user,
        );
        this.check(
          3,
          inUse === undefined,
          () =>
            `the password of ${user} changed although ${reg.name} reported generation ${inUse!.generation} (${user}) ${(this.snapshot.at - inUse!.t) / 1000} s before the command, within its ${reg.maxStalenessSeconds} s`,
        );
      }
    }

    // 5. Emergency: once an invocation has completed after the promotion, the old credential is dead.
    for (const e of ledger.emergencies) {
      if (e.dueAt === undefined) continue;
      const revoked = !(await this.logsIn(e.formerly, after.roles));
      this.check(
        5,
        revoked,
        () =>
          `the formerly current credential of ${e.formerly.username} (emergency ${e.token}) still logs in`,
      );
      if (!e.sessionsChecked) {
        const left = after.sessions.filter((s) => s.usename === e.formerly.username);
        this.check(
          5,
          left.length === 0,
          () =>
            `${left.length} sessions of ${e.formerly.username} survived the emergency revocation`,
        );
        e.sessionsChecked = true;
      }
    }
    const revokedByEmergency = (s: DbSecret | undefined) =>
      s !== undefined &&
      ledger.emergencies.some(
        (e) => e.formerly.username === s.username && e.formerly.password === s.password,
      );

    // 1. AWSCURRENT logs in; AWSPREVIOUS too, unless an emergency revoked it or a later rotation has
    // given its user a new password (the alternating strategy's next setSecret, after the guard).
    this.check(
      1,
      await this.logsIn(current.secret!, after.roles),
      () =>
        `AWSCURRENT (${current.secret!.username}, generation ${current.secret!.generation}) does not log in`,
    );
    const previous = at(AWSPREVIOUS)[0]?.secret;
    // A later rotation may replace the previous user's password (its guard proved nobody uses it);
    // until the password really changed, AWSPREVIOUS must keep working: it is the way back.
    const replaced = (s: DbSecret) =>
      versions.some(
        (v) => v.secret && v.secret.username === s.username && v.secret.generation > s.generation,
      ) && !this.verifiedUnder(s, after.roles.get(s.username)?.rolpassword);
    // A guard that died in its LOGIN-off window leaves the previous user without LOGIN until its
    // rotation's setSecret is retried, or the rotation is aborted (the abort's re-drive restores it).
    const guardWindowOpen = (s: DbSecret) =>
      ledger.abortIncomplete ||
      versions.some((v) => v.id === after.pending && v.secret?.username === s.username);
    if (
      previous &&
      !revokedByEmergency(previous) &&
      !replaced(previous) &&
      !guardWindowOpen(previous)
    ) {
      const row = after.roles.get(previous.username);
      this.check(
        1,
        await this.logsIn(previous, after.roles),
        () =>
          `AWSPREVIOUS (${previous.username}, generation ${previous.generation}) does not log in` +
          (row && !row.rolcanlogin ? ' (its password is unchanged, but it has NOLOGIN)' : ''),
      );
    }

    // 7 (every command): a rotation whose setSecret succeeded is not half-done.
    const waiting = versions.find(
      (v) => v.stages.includes(AWSPENDING) && !v.stages.includes(AWSCURRENT),
    );
    if (waiting?.secret && ledger.setSecretDone.has(waiting.id)) {
      const pending = waiting.secret;
      this.check(
        7,
        await this.logsIn(pending, after.roles),
        () =>
          `setSecret succeeded for ${waiting.id} but its credential (${pending.username}) does not log in`,
      );
    }

    // 2. What every process would connect with logs in; no live query failed because of a rotation.
    // An emergency cuts off whoever did not move, from its setSecret on (the previous user's sessions
    // are terminated and its password replaced at once) and again after its promotion.
    const emergencyStarted =
      ledger.emergencies.length > 0 ||
      [...ledger.emergencyTokens].some(
        (t) =>
          ledger.setSecretDone.has(t) ||
          world.invocations.some((i) => i.token === t && i.label === 'setSecret'),
      );
    for (const p of world.processes) {
      const inUse = p.inUse();
      const exempt =
        ledger.staleAllowed.has(p.registration.name) ||
        (emergencyStarted &&
          (p instanceof RestartOnlyProcess ||
            (p instanceof LiveProcess && p.hung) ||
            revokedByEmergency(inUse)));
      // A hung process that holds no connection leaves no trace: no report, no session. Nothing can
      // tell it from a stopped one, so its credential may be replaced; what must hold is that it
      // recovers when it resumes (its pool re-reads the secret on 28P01), which the query check
      // below judges.
      const invisible = p instanceof LiveProcess && p.hung && p.pool.totalCount === 0;
      if (inUse && !exempt && !invisible) {
        this.check(
          2,
          await this.logsIn(inUse, after.roles),
          () =>
            `${p.id} uses ${inUse.username} (generation ${inUse.generation}), which does not log in`,
        );
      }
      const failed = p.failures
        .splice(0)
        .filter((f) => f.credentialCaused && f.mode === 'live' && !exempt);
      this.check(
        2,
        failed.length === 0,
        () =>
          `a query of ${failed[0].process} failed because of a credential change: ${failed[0].error}`,
      );
    }

    // 7 (every command): every failed invocation names its reason with a typed error.
    for (const i of world.invocations.slice(this.invocationsSeen)) {
      this.check(
        7,
        i.outcome !== 'error' || i.error instanceof ConvergeError,
        () => `${i.label} failed with an untyped ${i.error!.name}: ${i.error!.message}`,
      );
    }
    this.invocationsSeen = world.invocations.length;

    // 6. The master never ran the tenant's code.
    this.check(
      6,
      after.probe.length === 0,
      () =>
        `the master's session ran the tenant's ${[...new Set(after.probe.map((r) => r.what))].join(', ')}`,
    );

    // 8. No password in any log line, CLI output or error message.
    const lines = capturedOutput();
    const fresh = [...lines.slice(this.outputSeen), ...world.texts.slice(this.textsSeen)];
    this.outputSeen = lines.length;
    this.textsSeen = world.texts.length;
    for (const secret of world.passwords().filter((s) => s.length >= 8)) {
      const leak = fresh.find((t) => t.includes(secret));
      this.check(
        8,
        leak === undefined,
        () => `a password was printed: ${leak!.slice(0, 160).replace(secret, '<PASSWORD>')}`,
      );
    }
  }
}

/** Seeds AWSCURRENT's history with the initial version. */
function ledgerCurrent(world: World, ledger: Ledger): void {
  const current = world.versionAt(AWSCURRENT);
  if (current && ledger.currentHistory.length === 0) ledger.currentHistory.push(current.id);
}
