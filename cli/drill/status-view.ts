/**
 * What a scenario reads from a captured `converge status` report: which consumers block and why,
 * the rotation's state and the next action. These fields are the status contract (`consumers[].state`
 * `BLOCKING` with `blocks`, `reason`, `since` and `processes`; `rotation.state`; `nextAction`, see
 * cli/commands/status.ts). A report that predates them (no `nextAction`) is read from its gate
 * verdicts and lowercase consumer states instead, so the drill runs either way.
 */
import type { StatusReport } from '../commands/status';

/** A process as the status contract shows it. */
export interface StatusProcess {
  readonly host: string;
  readonly pid: number;
  readonly generation?: number;
  readonly user?: string;
  readonly sessions?: number;
  readonly oldestBackendStart?: string;
}

/** A consumer as the status contract shows it (only the fields the drill reads). */
export interface StatusConsumer {
  readonly name: string;
  readonly mode?: string;
  readonly state: string;
  readonly blocks?: 'promotion' | 'revocation';
  readonly reason?: string;
  readonly generation?: number;
  readonly since?: string;
  readonly processes?: readonly StatusProcess[];
}

/** The contract's next action (only the fields the drill reads). */
export interface StatusNextAction {
  readonly kind: string;
  readonly command?: string;
  readonly consumer?: string;
  readonly processes?: readonly StatusProcess[];
  readonly why?: string;
}

interface ContractFields {
  readonly consumers?: readonly StatusConsumer[];
  readonly rotation?: { readonly state?: string };
  readonly nextAction?: StatusNextAction;
}

/**
 * The consumers the report says block (contract: `state: 'BLOCKING'`; older reports: a consumer
 * the holding gate's reasons name; `gateHint` picks the gate when both hold, as an older report
 * cannot tell a rotation held by the revocation guard from one waiting at the promotion gate).
 *
 * @example
 * blockingConsumers(report).map((c) => c.name); // ['drill-live-2']
 */
export function blockingConsumers(
  report: StatusReport,
  gateHint?: 'promotion' | 'revocation',
): StatusConsumer[] {
  const r = report as unknown as ContractFields;
  const consumers = r.consumers ?? [];
  if (hasContract(report)) return consumers.filter((c) => c.state === 'BLOCKING');
  // Before the contract: the holding gate's reasons name each consumer (`<name>: stale (...)`).
  const holding = (['promotion', 'revocation'] as const).filter(
    (g) => report.gates[g].verdict === 'hold',
  );
  const gate = gateHint && holding.includes(gateHint) ? gateHint : holding[0];
  if (!gate) return [];
  return consumers.flatMap((c) => {
    const line = report.gates[gate].reasons.find((x) => x.startsWith(`${c.name}: `));
    const reason = line?.slice(c.name.length + 2).split(' ')[0];
    return line ? [{ ...c, blocks: gate, reason }] : [];
  });
}

/**
 * The rotation's state (contract: `rotation.state`; older reports: `waiting-at-gate` while a
 * version is pending, else `idle`).
 *
 * @example
 * rotationState(report); // 'waiting-at-gate'
 */
export function rotationState(report: StatusReport): string {
  const r = report as unknown as ContractFields;
  return r.rotation?.state ?? (report.rotationInProgress ? 'waiting-at-gate' : 'idle');
}

/**
 * The next action the report prints, or undefined for a report that predates it.
 *
 * @example
 * nextAction(report)?.kind; // 'restart'
 */
export function nextAction(report: StatusReport): StatusNextAction | undefined {
  return (report as unknown as ContractFields).nextAction;
}

/** Whether the report carries the contract's fields (`nextAction`). */
export function hasContract(report: StatusReport): boolean {
  return nextAction(report) !== undefined;
}
