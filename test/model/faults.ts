/**
 * Fault injection for the model-based test, scoped by who is calling.
 *
 * Every call is made inside an {@link AsyncLocalStorage} scope that names its actor: one rotation
 * function invocation, a consumer process, the operator's CLI, or the invariant checker. SDK calls
 * (through the `before` hook of cli/local/install.ts) and SQL calls (through a patch of
 * `pg.Client`) consult the scope:
 *
 * - an invocation's {@link FaultPlan} makes its N-th matching call throttle, answer 5xx, time out,
 *   fail with a dropped connection, or **crash**: the call never returns, every connection the
 *   invocation opened is cut (PostgreSQL rolls back what was open), and nothing after that point
 *   runs, not even `finally` blocks, as when Lambda's process dies;
 * - a consumer process can be told that its next secret reads fail;
 * - a database outage refuses every new connection except the checker's.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Client, DatabaseError } from 'pg';

/** What the N-th matching call of an invocation does instead of answering. */
export type FaultKind = 'crash' | 'throttle' | 'server-error' | 'timeout' | 'drop-connection';

/** A fault for one invocation: the `at`-th call (from 1) that matches `on` (and `operation`). */
export interface FaultPlan {
  readonly kind: FaultKind;
  readonly at: number;
  /** Which calls count: SDK calls, SQL statements, or both. */
  readonly on: 'sdk' | 'sql' | 'any';
  /** Only SDK calls of this operation count (e.g. `TagResource`, `UntagResource`). */
  readonly operation?: string;
}

/** A rotation function invocation in flight. */
export interface InvocationScope {
  /** A rotation function invocation, or one CLI command of the operator. */
  readonly actor: 'function' | 'operator';
  readonly plan?: FaultPlan;
  /** Matching calls so far. */
  calls: number;
  /** Whether the plan's fault has fired. */
  fired: boolean;
  crashed: boolean;
  /** Resolves when the invocation crashes (its own promise never settles then). */
  readonly crash: Promise<void>;
  signalCrash(): void;
  readonly clients: Set<Client>;
}

/** A consumer process, the operator (without a fault plan), or the checker. */
export interface OtherScope {
  readonly actor: 'consumer' | 'operator' | 'checker';
  /** Secret reads of this scope fail (a consumer whose refresh fails). */
  failSecretReads?: boolean;
}

export type Scope = InvocationScope | OtherScope;

const storage = new AsyncLocalStorage<Scope>();

/** Global switches of the world's faults. */
export const outage = { databaseDown: false };

/** Faults fired so far, by kind (for the run summary). */
export const firedFaults: Record<string, number> = {};

/**
 * Runs `fn` as one invocation of the rotation function with an optional fault plan.
 *
 * @example
 * const scope = invocationScope({ kind: 'crash', at: 3, on: 'sql' });
 * const outcome = await runScoped(scope, () => handler(event));
 */
export function invocationScope(
  plan?: FaultPlan,
  actor: InvocationScope['actor'] = 'function',
): InvocationScope {
  let signal!: () => void;
  const crash = new Promise<void>((resolve) => (signal = resolve));
  return {
    actor,
    plan,
    calls: 0,
    fired: false,
    crashed: false,
    crash,
    signalCrash: () => signal(),
    clients: new Set(),
  };
}

/** Runs `fn` inside `scope` (every call it makes, however deep, sees the scope). */
export function runScoped<T>(scope: Scope, fn: () => Promise<T>): Promise<T> {
  return storage.run(scope, fn);
}

/** Runs `fn` outside any invocation (the world moving on while a gate sleeps). */
export function runUnscoped<T>(fn: () => Promise<T>): Promise<T> {
  return storage.exit(fn);
}

/** Whether `scope` is an invocation (of the function or the CLI) that faults can hit. */
export function isInvocation(scope: Scope | undefined): scope is InvocationScope {
  return scope !== undefined && 'calls' in scope;
}

/** The scope of the current call, if any. */
export function currentScope(): Scope | undefined {
  return storage.getStore();
}

/** A promise that never settles: the call of a crashed process. */
const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

function serviceError(kind: FaultKind, operation: string): Error {
  const spec = {
    throttle: { name: 'ThrottlingException', status: 400, message: 'Rate exceeded' },
    'server-error': {
      name: 'InternalServiceError',
      status: 500,
      message: 'An error occurred on the server side.',
    },
    timeout: {
      name: 'TimeoutError',
      status: 0,
      message: `${operation}: socket hang up (request timed out)`,
    },
    'drop-connection': {
      name: 'NetworkingError',
      status: 0,
      message: `${operation}: connection reset by peer`,
    },
    crash: { name: 'Crash', status: 0, message: 'crash' },
  }[kind];
  return Object.assign(new Error(spec.message), {
    name: spec.name,
    $fault: spec.status >= 500 ? 'server' : 'client',
    $metadata: spec.status ? { httpStatusCode: spec.status } : {},
  });
}

/** Cuts every connection the invocation opened, as the death of its process would. */
function crash(scope: InvocationScope): void {
  scope.crashed = true;
  for (const c of scope.clients) {
    c.on('error', () => undefined);
    (
      c as unknown as { connection?: { stream?: { destroy(): void } } }
    ).connection?.stream?.destroy();
  }
  scope.signalCrash();
}

function hits(scope: InvocationScope, kind: 'sdk' | 'sql', operation?: string): boolean {
  const plan = scope.plan;
  if (!plan || scope.fired) return false;
  if (plan.on !== 'any' && plan.on !== kind) return false;
  if (plan.operation && plan.operation !== operation) return false;
  scope.calls++;
  if (scope.calls !== plan.at) return false;
  scope.fired = true;
  firedFaults[plan.kind] = (firedFaults[plan.kind] ?? 0) + 1;
  return true;
}

/**
 * The `before` hook for the Secrets Manager and CloudWatch stubs.
 *
 * @example
 * answerSecretsManager(stub, model, beforeSdkCall);
 */
export async function beforeSdkCall(operation: string): Promise<void> {
  const scope = currentScope();
  if (!scope) return;
  if (!isInvocation(scope)) {
    if (scope.failSecretReads && operation === 'GetSecretValue')
      throw serviceError('throttle', operation);
    return;
  }
  if (scope.crashed) return never();
  if (!hits(scope, 'sdk', operation)) return;
  if (scope.plan!.kind === 'crash') {
    crash(scope);
    return never();
  }
  throw serviceError(scope.plan!.kind, operation);
}

let installed = false;

/**
 * Patches `pg.Client#connect` and `#query` once per process: connections opened by an invocation
 * are remembered (so a crash can cut them), an outage refuses connects, and a plan's SQL fault fires.
 */
export function installPgFaults(): void {
  if (installed) return;
  installed = true;
  const proto = Client.prototype as unknown as {
    connect: (...args: unknown[]) => unknown;
    query: (...args: unknown[]) => unknown;
  };
  const connect = proto.connect;
  const query = proto.query;
  proto.connect = function (this: Client, ...args: unknown[]) {
    const scope = currentScope();
    const callback = typeof args[0] === 'function' ? (args[0] as (err?: Error) => void) : undefined;
    if (isInvocation(scope) && scope.crashed) return callback ? undefined : never();
    if (outage.databaseDown && scope?.actor !== 'checker') {
      const err = Object.assign(
        new Error('connect ECONNREFUSED 127.0.0.1 (database unreachable)'),
        { code: 'ECONNREFUSED' },
      );
      if (callback) {
        process.nextTick(() => callback(err));
        return undefined;
      }
      return Promise.reject(err);
    }
    if (isInvocation(scope)) scope.clients.add(this);
    return connect.apply(this, args);
  };
  proto.query = function (this: Client, ...args: unknown[]) {
    const scope = currentScope();
    const promiseForm = !args.some((a) => typeof a === 'function');
    if (isInvocation(scope) && promiseForm) {
      if (scope.crashed) return never();
      if (hits(scope, 'sql')) {
        const kind = scope.plan!.kind;
        if (kind === 'crash') {
          crash(scope);
          return never();
        }
        if (kind === 'drop-connection') {
          // The server loses the connection mid-statement; the statement then fails on a dead socket.
          this.on('error', () => undefined);
          (
            this as unknown as { connection?: { stream?: { destroy(): void } } }
          ).connection?.stream?.destroy();
        } else {
          // What the server sends when it shuts the session down (an administrator, a failover).
          const err = new DatabaseError(
            `terminating connection due to administrator command (${kind})`,
            0,
            'error',
          );
          Object.assign(err, { code: '57P01', severity: 'FATAL' });
          return Promise.reject(err);
        }
      }
    }
    return query.apply(this, args);
  };
}
