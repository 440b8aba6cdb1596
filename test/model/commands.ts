/**
 * The commands the model-based test mixes, as fast-check commands: Secrets Manager (RotateSecret,
 * each step, retries of any step, late deliveries of an old token, clearing AWSPENDING), faults
 * (a crash, throttling, 5xx, timeouts or a dropped connection at the N-th call of an invocation, a
 * failing tag write, a database outage), the operator (abort, finish --force, rotate, rotate
 * --emergency, also while finishSecret waits at the gate), the gate's re-drive (also concurrent
 * with a step), the fleet (refresh, failed refresh, restart, hang, long-held connections, the
 * scheduled job, the restart-only service, the tenant changing its own settings) and time.
 *
 * Every command runs the same frame: snapshot, act, every process queries, check every invariant.
 */
import { RotateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import fc from 'fast-check';
import type { Step } from '../../lambda/rotation';
import { TAG_EMERGENCY } from '../../lambda/rotation/overrides';
import { withClient } from '../../lambda/shared/pg-connection';
import { AWSCURRENT, AWSPENDING } from '../../lambda/shared/secret';
import { LiveProcess, RestartOnlyProcess, ScheduledJob } from './consumers';
import { outage, runScoped, type FaultPlan } from './faults';
import type { Checker, Ledger } from './invariants';
import type { World } from './world';

const STEPS: readonly Step[] = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'];

/** What Secrets Manager is doing for the latest rotation it started. */
export interface ServiceState {
  token?: string;
  /** The next step it delivers; `done` once finishSecret succeeded. */
  next?: Step | 'done';
  /** Every token a rotation ever used (old ones can be delivered late). */
  readonly seen: string[];
}

/** Everything a command acts on. */
export interface Real {
  readonly world: World;
  readonly ledger: Ledger;
  readonly checker: Checker;
  readonly service: ServiceState;
  /** Commands run so far in this sequence. */
  executed: number;
}

/** fast-check's model: nothing beyond what the real system holds (commands check their own preconditions). */
export type Model = Record<string, never>;

/** Real seconds after which a command counts as hung (a finding, not a timeout of the test). */
export const COMMAND_TIMEOUT_MS = 60_000;

abstract class ModelCommand implements fc.AsyncCommand<Model, Real> {
  public check(): boolean {
    return true;
  }

  public async run(_m: Model, r: Real): Promise<void> {
    r.world.beginCommand();
    r.executed++;
    await r.checker.before();
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`${this.toString()} did not finish within ${COMMAND_TIMEOUT_MS / 1000} s`),
          ),
        COMMAND_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([this.act(r), hung]);
    } finally {
      clearTimeout(timer);
    }
    await r.world.queryRound();
    await r.checker.after();
  }

  protected abstract act(r: Real): Promise<void>;
  public abstract toString(): string;
}

function faultText(f: FaultPlan | undefined): string {
  if (!f) return '';
  return ` !${f.kind}@${f.on}${f.operation ? `:${f.operation}` : ''}#${f.at}`;
}

/** The operator, acting through the real CLI. */
export type OperatorAction = 'abort' | 'finish-force' | 'rotate' | 'rotate-emergency';

/**
 * One CLI command. With a fault, the operator's own AWS calls fail or the operator's process dies
 * mid-command (a tag written and never removed, a rotation started and never reported).
 */
async function operate(r: Real, action: OperatorAction, fault?: FaultPlan): Promise<void> {
  const { world, ledger, service } = r;
  const arn = world.secretArn;
  const waiting = world.waitingToken();
  if (action === 'abort') {
    const { code, out } = await world.cli(['abort', arn, '--yes'], fault);
    // A complete abort ends with the function's re-drive having re-checked the previous user.
    ledger.abortIncomplete =
      code !== 0 ||
      (waiting !== undefined && !out.includes('re-checked by the rotation function: done'));
    if (
      waiting &&
      !world
        .versions()
        .find((v) => v.id === waiting)
        ?.stages.includes(AWSPENDING)
    )
      ledger.aborted.add(waiting);
    return;
  }
  if (action === 'finish-force') {
    const { code } = await world.cli(['finish', arn, '--force'], fault);
    if (code === 0) {
      const promoted = world.versionAt(AWSCURRENT)?.secret?.generation ?? 0;
      for (const p of world.processes) {
        if ((p.inUse()?.generation ?? promoted) < promoted)
          ledger.staleAllowed.add(p.registration.name);
      }
    }
    return;
  }
  await world.cli(
    ['rotate', arn, ...(action === 'rotate-emergency' ? ['--emergency', '--yes'] : [])],
    fault,
  );
  const token = world.waitingToken();
  if (token && token !== waiting) {
    // Whether the command returned or not: the secret itself says which rotation started, and the
    // emergency tag which rotation is an emergency.
    const tags = world.sm.describeSecret({ SecretId: arn }).Tags ?? [];
    if (tags.some((t) => t.Key === TAG_EMERGENCY && t.Value === token))
      ledger.emergencyTokens.add(token);
    startedRotation(service, token);
  }
}

function startedRotation(service: ServiceState, token: string): void {
  service.token = token;
  service.next = 'createSecret';
  service.seen.push(token);
}

/** RotateSecret through the SDK: a scheduled rotation (no token) or a manual one (with a token). */
class RotateSecret extends ModelCommand {
  public constructor(private readonly withToken: boolean) {
    super();
  }

  protected async act(r: Real): Promise<void> {
    const out = await runScoped({ actor: 'operator' }, () =>
      new SecretsManagerClient({}).send(
        new RotateSecretCommand({
          SecretId: r.world.secretArn,
          ClientRequestToken: this.withToken
            ? `manual-${r.world.command}-${Date.now()}`
            : undefined,
        }),
      ),
    ).catch(() => undefined);
    if (out?.VersionId) startedRotation(r.service, out.VersionId);
  }

  public toString(): string {
    return `RotateSecret(${this.withToken ? 'manual' : 'scheduled'})`;
  }
}

/** Secrets Manager invokes one step: the next one, or a retry of any step, for the latest or an old token. */
class InvokeStep extends ModelCommand {
  public constructor(
    private readonly which: Step | 'next',
    private readonly old: number | undefined,
    private readonly fault: FaultPlan | undefined,
    private readonly operator: { atSleep: number; action: OperatorAction } | undefined,
  ) {
    super();
  }

  protected async act(r: Real): Promise<void> {
    const { service, world, ledger } = r;
    const token =
      this.old === undefined
        ? service.token
        : service.seen[this.old % Math.max(1, service.seen.length)];
    if (!token) return;
    const step =
      this.which === 'next' ? (token === service.token ? service.next : undefined) : this.which;
    if (!step || step === 'done') return;
    if (this.operator) {
      const { atSleep, action } = this.operator;
      world.onGateSleep = async (n) => {
        if (n === atSleep) await operate(r, action);
      };
    }
    const record = await world.invoke(
      { Step: step, SecretId: world.secretArn, ClientRequestToken: token },
      this.fault,
    );
    if (record.outcome !== 'ok') return;
    if (step === 'setSecret') ledger.setSecretDone.add(token);
    if (token === service.token && step === service.next) {
      const i = STEPS.indexOf(step);
      service.next = i === STEPS.length - 1 ? 'done' : STEPS[i + 1];
    }
  }

  public toString(): string {
    const who = this.old === undefined ? '' : ` old#${this.old}`;
    const op = this.operator ? ` +${this.operator.action}@sleep${this.operator.atSleep}` : '';
    return `Invoke(${this.which}${who}${faultText(this.fault)}${op})`;
  }
}

/**
 * What the service does most of the time: RotateSecret, then the four steps in order, each with
 * its own possible fault; it stops at the first step that does not succeed (the rest is left to
 * retries, re-drives and the operator).
 */
class ServiceRotation extends ModelCommand {
  public constructor(
    private readonly withToken: boolean,
    private readonly faults: readonly (FaultPlan | undefined)[],
  ) {
    super();
  }

  protected async act(r: Real): Promise<void> {
    const { world, service, ledger } = r;
    const out = await runScoped({ actor: 'operator' }, () =>
      new SecretsManagerClient({}).send(
        new RotateSecretCommand({
          SecretId: world.secretArn,
          ClientRequestToken: this.withToken ? `manual-${world.command}-${Date.now()}` : undefined,
        }),
      ),
    ).catch(() => undefined);
    if (!out?.VersionId) return;
    startedRotation(service, out.VersionId);
    for (const [i, step] of STEPS.entries()) {
      const record = await world.invoke(
        { Step: step, SecretId: world.secretArn, ClientRequestToken: out.VersionId },
        this.faults[i],
      );
      if (record.outcome !== 'ok') return;
      if (step === 'setSecret') ledger.setSecretDone.add(out.VersionId);
      service.next = i === STEPS.length - 1 ? 'done' : STEPS[i + 1];
    }
  }

  public toString(): string {
    return `ServiceRotation(${this.withToken ? 'manual' : 'scheduled'}${this.faults.map((f, i) => (f ? ` ${STEPS[i]}${faultText(f)}` : '')).join('')})`;
  }
}

/** The gate's EventBridge re-drive, alone or racing a step of the latest rotation. */
class Redrive extends ModelCommand {
  public constructor(
    private readonly fault: FaultPlan | undefined,
    private readonly racing: Step | undefined,
  ) {
    super();
  }

  protected async act(r: Real): Promise<void> {
    const { world, service, ledger } = r;
    const redrive = world.invoke(
      { converge: 'redrive', SecretId: world.secretArn },
      this.fault,
      'redrive',
    );
    const token = service.token;
    if (!this.racing || !token) {
      await redrive;
      return;
    }
    const [, step] = await Promise.all([
      redrive,
      world.invoke({ Step: this.racing, SecretId: world.secretArn, ClientRequestToken: token }),
    ]);
    if (step.outcome === 'ok' && this.racing === 'setSecret') ledger.setSecretDone.add(token);
  }

  public toString(): string {
    return `Redrive(${this.racing ? `racing ${this.racing}` : ''}${faultText(this.fault)})`;
  }
}

/** The operator at the CLI. */
class Operator extends ModelCommand {
  public constructor(
    private readonly action: OperatorAction,
    private readonly fault: FaultPlan | undefined,
  ) {
    super();
  }

  protected act(r: Real): Promise<void> {
    return operate(r, this.action, this.fault);
  }

  public toString(): string {
    return `Operator(${this.action}${faultText(this.fault)})`;
  }
}

/** The service's own clean-up: AWSPENDING removed from the version that is already AWSCURRENT. */
class ClearPending extends ModelCommand {
  protected async act(r: Real): Promise<void> {
    const v = r.world
      .versions()
      .find((x) => x.stages.includes(AWSPENDING) && x.stages.includes(AWSCURRENT));
    if (v)
      r.world.sm.updateSecretVersionStage({
        SecretId: r.world.secretArn,
        VersionStage: AWSPENDING,
        RemoveFromVersionId: v.id,
      });
  }

  public toString(): string {
    return 'ServiceClearsPending';
  }
}

type FleetAction = 'refresh' | 'refresh-fails' | 'restart' | 'hang' | 'resume' | 'hold' | 'release';

/** One live process acts. */
class LiveAction extends ModelCommand {
  public constructor(
    private readonly index: number,
    private readonly action: FleetAction,
  ) {
    super();
  }

  protected async act(r: Real): Promise<void> {
    const live = r.world.processes.filter((p): p is LiveProcess => p instanceof LiveProcess);
    const p = live[this.index % Math.max(1, live.length)];
    if (!p) return;
    switch (this.action) {
      case 'refresh':
        if (!p.hung) await p.refresh();
        return;
      case 'refresh-fails':
        p.scope.failSecretReads = true;
        try {
          if (!p.hung) await p.refresh();
        } finally {
          p.scope.failSecretReads = false;
        }
        return;
      case 'restart':
        return p.restart();
      case 'hang':
        return p.hang();
      case 'resume':
        return p.resume();
      case 'hold':
        return p.hold();
      case 'release':
        return p.release();
    }
  }

  public toString(): string {
    return `Live#${this.index}(${this.action})`;
  }
}

/** The restart-only service restarts, or the scheduled job runs. */
class OtherConsumer extends ModelCommand {
  public constructor(private readonly which: 'restart-legacy' | 'run-job') {
    super();
  }

  protected async act(r: Real): Promise<void> {
    for (const p of r.world.processes) {
      if (this.which === 'restart-legacy' && p instanceof RestartOnlyProcess) await p.restart();
      if (this.which === 'run-job' && p instanceof ScheduledJob) await p.run();
    }
  }

  public toString(): string {
    return this.which === 'restart-legacy' ? 'RestartOnly(restart)' : 'ScheduledJob(run)';
  }
}

/** Virtual time passes: every process refreshes, reports and queries as time goes by. */
class Advance extends ModelCommand {
  public constructor(private readonly ticks: number) {
    super();
  }

  protected async act(r: Real): Promise<void> {
    for (let i = 0; i < this.ticks; i++) await r.world.tick();
  }

  public toString(): string {
    return `Advance(${this.ticks * 20}s)`;
  }
}

/** The database becomes unreachable (or reachable again) for everyone but the checker. */
class Outage extends ModelCommand {
  public constructor(private readonly down: boolean) {
    super();
  }

  protected async act(): Promise<void> {
    outage.databaseDown = this.down;
  }

  public toString(): string {
    return this.down ? 'DatabaseDown' : 'DatabaseUp';
  }
}

/** The rotated user changes its own per-role settings (which setSecret copies to the alternate). */
class TenantSetting extends ModelCommand {
  public constructor(private readonly setting: string) {
    super();
  }

  protected async act(r: Real): Promise<void> {
    const s = r.world.versionAt(AWSCURRENT)?.secret;
    if (!s) return;
    await runScoped({ actor: 'consumer' }, () =>
      withClient(
        { host: s.host, port: s.port, dbname: s.dbname, ssl: s.ssl },
        s,
        { caBundlePath: r.world.options.database.server.caBundlePath },
        (c) => c.query(`ALTER ROLE CURRENT_USER SET ${this.setting}`),
      ),
    ).catch(() => undefined);
  }

  public toString(): string {
    return `Tenant(SET ${this.setting})`;
  }
}

const faultKinds = ['crash', 'throttle', 'server-error', 'timeout', 'drop-connection'] as const;

/** A fault for one invocation, or none (about two thirds of invocations run clean). */
export const faultArb: fc.Arbitrary<FaultPlan | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constantFrom(...faultKinds),
      at: fc.integer({ min: 1, max: 30 }),
      on: fc.constantFrom('sdk' as const, 'sql' as const, 'any' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constantFrom('crash' as const, 'throttle' as const, 'server-error' as const),
      at: fc.integer({ min: 1, max: 2 }),
      on: fc.constant('sdk' as const),
      operation: fc.constantFrom(
        'TagResource',
        'UntagResource',
        'UpdateSecretVersionStage',
        'PutSecretValue',
        'GetMetricData',
        'DescribeSecret',
        'GetSecretValue',
      ),
    }),
  },
);

/**
 * A fault on the operator's own AWS calls, or none: the N-th call, or the call of one operation
 * (the tag write, the RotateSecret after it, the tag removal, the stage move), fails or never returns.
 * The operator's process dying right after it wrote an override tag (at the RotateSecret or the
 * re-drive that uses it, or at the tag's removal) has a branch of its own: an override left behind
 * must never act on another rotation.
 */
const operatorFaultArb: fc.Arbitrary<FaultPlan | undefined> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('crash' as const),
      at: fc.constant(1),
      on: fc.constant('sdk' as const),
      operation: fc.constantFrom('RotateSecret', 'Invoke', 'UntagResource'),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constantFrom(...faultKinds),
      at: fc.integer({ min: 1, max: 6 }),
      on: fc.constant('sdk' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constantFrom('crash' as const, 'throttle' as const, 'server-error' as const),
      at: fc.constant(1),
      on: fc.constant('sdk' as const),
      operation: fc.constantFrom(
        'TagResource',
        'RotateSecret',
        'UntagResource',
        'UpdateSecretVersionStage',
      ),
    }),
  },
);

const operatorArb = fc.constantFrom<OperatorAction>(
  'abort',
  'finish-force',
  'rotate',
  'rotate-emergency',
);

/**
 * What a run's commands concentrate on: `all` mixes everything; `overrides` keeps to rotations,
 * steps, time and the operator's commands (often dying right after writing an override tag), the
 * hazard the override tags' binding to one rotation closes.
 */
export type Focus = 'all' | 'overrides';

/** Every command the generator mixes, with weights that keep rotations moving. */
export function commandArbs(focus: Focus = 'all'): fc.Arbitrary<fc.AsyncCommand<Model, Real>>[] {
  const step = fc.constantFrom<Step | 'next'>('next', 'next', 'next', 'next', ...STEPS);
  const inv = fc
    .record({
      which: step,
      old: fc.option(fc.nat(8), { freq: 8 }),
      fault: faultArb,
      operator: fc.option(
        fc.record({ atSleep: fc.integer({ min: 1, max: 6 }), action: operatorArb }),
        { freq: 6 },
      ),
    })
    .map(
      ({ which, old, fault, operator }) =>
        new InvokeStep(which, old ?? undefined, fault, operator ?? undefined),
    );
  const rotation = fc
    .tuple(fc.boolean(), fc.array(faultArb, { minLength: 4, maxLength: 4 }))
    .map(([t, faults]) => new ServiceRotation(t, faults));
  const operator = fc
    .tuple(operatorArb, operatorFaultArb)
    .map(([a, f]) => new Operator(a, f ?? undefined));
  const advance = fc.integer({ min: 1, max: 12 }).map((t) => new Advance(t));
  if (focus === 'overrides') return [rotation, rotation, inv, inv, operator, operator, advance];
  return [
    rotation,
    rotation,
    rotation,
    fc.boolean().map((t) => new RotateSecret(t)),
    inv,
    inv,
    inv,
    inv,
    fc
      .tuple(faultArb, fc.option(fc.constantFrom(...STEPS), { freq: 3 }))
      .map(([f, s]) => new Redrive(f, s ?? undefined)),
    operator,
    fc.constant(new ClearPending()),
    fc
      .tuple(
        fc.nat(3),
        fc.constantFrom<FleetAction>(
          'refresh',
          'refresh',
          'refresh-fails',
          'restart',
          'hang',
          'resume',
          'hold',
          'release',
        ),
      )
      .map(([i, a]) => new LiveAction(i, a)),
    fc
      .constantFrom<'restart-legacy' | 'run-job'>('restart-legacy', 'run-job')
      .map((w) => new OtherConsumer(w)),
    advance,
    advance,
    fc.boolean().map((d) => new Outage(d)),
    fc
      .constantFrom(
        "work_mem = '8MB'",
        'search_path = public, pg_catalog',
        "statement_timeout = '31s'",
        "application_name = 'x''; SELECT 1; --'",
      )
      .map((s) => new TenantSetting(s)),
  ];
}
