/**
 * Human-readable output of the CLI. The runbook in README.md is keyed to these lines.
 */
import { generationText, type AbortResult } from './commands/abort';
import type { FinishResult } from './commands/finish';
import { duration, type NextAction, type RotationView } from './commands/next-action';
import type { RotateResult } from './commands/rotate';
import type { ConsumerView, ProcessView, StatusReport } from './commands/status';

/**
 * The text form of `converge status`: the next action and why first (the first thing read at 2
 * a.m.), then the rotation's state, versions, consumers with since when, sessions (with
 * `--sessions`), the gates and the health line (the exit code).
 *
 * @example
 * io.out(formatStatus(await status(clients, 'orders-app')));
 */
export function formatStatus(r: StatusReport): string {
  const lines: string[] = [];
  lines.push(`Next: ${nextLine(r.nextAction)}`);
  lines.push(`Why:  ${r.nextAction.why}`);
  lines.push('');
  lines.push(`Rotation    ${rotationLine(r.rotation)}`);
  lines.push(`Secret      ${r.secret.name}`);
  lines.push(`            ${r.secret.arn}`);
  lines.push(
    `Schedule    ${r.secret.rotationEnabled ? 'enabled' : 'DISABLED'}` +
      `${r.secret.rotationFunction ? `, function ${r.secret.rotationFunction}` : ', no rotation function'}` +
      `${r.secret.lastRotated ? `, last rotated ${r.secret.lastRotated}` : ''}`,
  );
  if (r.overrides.emergency || r.overrides.forceFinish) {
    lines.push(`Overrides   ${[r.overrides.emergency && 'EMERGENCY', r.overrides.forceFinish && 'FORCE-FINISH'].filter(Boolean).join(', ')}`);
  }
  lines.push('Versions');
  for (const v of r.versions) {
    const waiting = v.stages.includes('AWSPENDING') && !v.stages.includes('AWSCURRENT') ? ' (rotation waiting)' : '';
    const facts = v.generation !== undefined ? `generation ${v.generation}  user ${v.username}` : (v.note ?? '');
    lines.push(`  ${v.stages.join(',').padEnd(24)} ${facts}${waiting}  [${v.versionId}]`);
  }
  const c = r.registry.counts;
  const total = c.live + c.scheduled + c['restart-only'];
  lines.push(`Consumers   ${total} registered (${c.live} live, ${c.scheduled} scheduled, ${c['restart-only']} restart-only)${r.registry.source === 'none' ? ': no registry found' : ''}`);
  if (r.consumers.length > 0) {
    const w = Math.max(8, ...r.consumers.map((x) => x.name.length));
    const states = r.consumers.map(consumerState);
    const sw = Math.max(5, ...states.map((s) => s.length));
    lines.push(`  ${'NAME'.padEnd(w)}  ${'MODE'.padEnd(12)}  ${'GEN'.padStart(5)}  ${'DATA AGE'.padStart(8)}  ${'STATE'.padEnd(sw)}  SINCE`);
    r.consumers.forEach((x, i) => {
      const gen = x.generation ?? x.lastSeenGeneration;
      lines.push(
        `  ${x.name.padEnd(w)}  ${x.mode.padEnd(12)}  ${(gen === undefined ? '-' : String(gen)).padStart(5)}  ` +
          `${(x.dataAgeSeconds === undefined ? '-' : `${x.dataAgeSeconds}s`).padStart(8)}  ${states[i].padEnd(sw)}  ${sinceText(x)}`.trimEnd(),
      );
      for (const p of x.processes ?? []) lines.push(`      ${processText(p)}`);
    });
  }
  if (r.cloudWatchError) lines.push(`CloudWatch  UNREADABLE: ${r.cloudWatchError}`);
  if (r.oldUser) {
    const s =
      r.oldUser.sessions !== undefined
        ? `${r.oldUser.sessions} open session(s)`
        : r.oldUser.sessionsError
          ? `sessions unknown: ${r.oldUser.sessionsError}`
          : 'sessions not checked (pass --sessions)';
    lines.push(`Old user    ${r.oldUser.username}: ${s}`);
  }
  if (r.sessions || r.sessionsError) {
    lines.push(`Sessions${r.sessionsError ? `    could not be listed: ${r.sessionsError}` : ''}`);
    for (const u of r.sessions ?? []) {
      const count = u.consumers.reduce((n, g) => n + g.processes.reduce((m, p) => m + p.sessions, 0), 0) + u.unattributed.length;
      lines.push(`  ${u.username} (${u.stages.join(',')}): ${count} open session(s)`);
      for (const g of u.consumers) {
        for (const p of g.processes) lines.push(`    ${g.consumer}  ${processText(p)}`);
      }
      for (const x of u.unattributed) {
        lines.push(
          `    unattributed  pid ${x.pid} application_name ${JSON.stringify(x.applicationName)}${x.clientAddr ? ` from ${x.clientAddr}` : ''}${x.member ? ` on ${x.member}` : ''}`,
        );
      }
    }
  }
  lines.push('Gates');
  lines.push(`  promotion   ${r.gates.promotion.verdict.toUpperCase()}${req(r.gates.promotion.requiredGeneration)}: ${r.gates.promotion.reasons.join('; ')}`);
  lines.push(
    `  revocation  ${r.gates.revocation.verdict.toUpperCase()}${exactly(r.gates.revocation.requiredGeneration, r.gates.revocation.acceptedGenerations)}: ${r.gates.revocation.reasons.join('; ')}`,
  );
  lines.push(`Health      ${r.health.state.toUpperCase()} (exit ${r.health.exitCode}): ${r.health.reasons.join('; ')}`);
  return lines.join('\n');
}

function nextLine(a: NextAction): string {
  switch (a.kind) {
    case 'none':
      return 'nothing to do';
    case 'wait':
      return `wait${a.estimateSeconds !== undefined ? ` about ${duration(a.estimateSeconds)}` : ''}${a.command ? ` (${a.command})` : ''}`;
    case 'restart':
      return `restart ${a.consumer}${a.processes && a.processes.length > 0 ? `: ${a.processes.map((p) => `${p.host} pid ${p.pid} (generation ${p.generation})`).join(', ')}` : ''}`;
    case 'investigate':
      return `investigate${a.command ? ` (${a.command})` : ''}`;
    default:
      return a.command ?? a.kind;
  }
}

function rotationLine(v: RotationView): string {
  const version = v.versionId ? ` version ${v.versionId} (generation ${v.generation ?? '?'})` : '';
  switch (v.state) {
    case 'idle':
      return 'IDLE: no rotation is waiting';
    case 'waiting-at-gate':
      return `WAITING AT GATE:${version} held since ${v.since} (${duration(v.waitingSeconds ?? 0)}, ${v.evaluations} evaluation(s), last ${v.lastEvaluation})`;
    case 'in-progress':
      return `IN PROGRESS:${version} (steps running, no gate hold recorded)`;
    case 'step-failed':
    case 'held-by-guard': {
      const f = v.failure;
      const label = v.state === 'held-by-guard' ? 'HELD BY GUARD' : 'STEP FAILED';
      return `${label}:${version || ' no version waits'}; ${f ? `${f.step} failed at ${f.at}: ${f.errorName}: ${f.message}` : ''}`;
    }
  }
}

function consumerState(x: ConsumerView): string {
  if (x.state !== 'BLOCKING') return x.state;
  return `BLOCKING ${x.blocks}: ${x.reason}`;
}

function sinceText(x: ConsumerView): string {
  if (x.windowClearsInSeconds !== undefined) return `reports ${x.requiredGeneration}; old data leaves the window in ${duration(x.windowClearsInSeconds)}`;
  const silent = x.state === 'SILENT' || x.reason === 'silent';
  if (x.since) return `${silent ? 'silent' : 'stale'} since ${x.since}${x.sinceBeforeRead ? ' or earlier' : ''}`;
  if (silent) return 'no data in the last hour';
  return '';
}

function processText(p: ProcessView): string {
  return (
    `${p.host} pid ${p.pid}  generation ${p.generation}${p.user ? `  user ${p.user}` : ''}  ${p.sessions} session(s)` +
    `${p.oldestBackendStart ? `  since ${p.oldestBackendStart}` : ''}`
  );
}

function req(g: number | undefined): string {
  return g === undefined ? '' : ` (needs generation >= ${g})`;
}

/** The revocation guard accepts exactly current (or this rotation's pending generation), nothing newer. */
function exactly(current: number | undefined, accepted: readonly number[] | undefined): string {
  if (current === undefined) return '';
  const pending = (accepted ?? []).filter((g) => g !== current);
  return pending.length === 0 ? ` (needs generation ${current})` : ` (needs generation ${current} or pending ${pending.join(', ')})`;
}

/**
 * The line `finish --force` prints on success: the stage moves and what became of its tag.
 *
 * @example
 * io.out(formatFinish(await finish(clients, 'orders-app', { force: true })));
 */
export function formatFinish(r: FinishResult): string {
  const tag = {
    removed: 'removed tag converge:force-finish',
    absent: 'tag converge:force-finish is gone (the function removed it)',
    kept: 'tag converge:force-finish now names another rotation and was left alone',
    failed: 'could not remove tag converge:force-finish; it names the promoted version and has no further effect',
  }[r.tag];
  return (
    `promoted ${r.secret}: version ${r.promotedVersionId} (generation ${r.generation ?? '?'}) is AWSCURRENT (FORCED)` +
    `${r.previousVersionId ? `; version ${r.previousVersionId} is AWSPREVIOUS` : ''}; ${tag}`
  );
}

/**
 * What `rotate` prints: the rotation it started and everything it changed.
 *
 * @example
 * io.out(formatRotate(await rotate(clients, 'orders-app', { emergency: true })));
 */
export function formatRotate(r: RotateResult): string {
  const lines = [`${r.emergency ? 'EMERGENCY rotation' : 'rotation'} of ${r.secret} started: version ${r.versionId} is AWSPENDING`];
  const g = r.guardCheck;
  if (g && g.waitedSeconds > 0) lines.push(`  waited ${g.waitedSeconds} s until the revocation guard would admit (${g.checks} checks)`);
  if (g?.verdict === 'unknown') lines.push(`  ${g.note}`);
  if (r.emergency || r.rotationReEnabled) {
    for (const t of r.tagsSet) lines.push(`  tag set: ${t}`);
    lines.push(`  AWSCURRENT stays on version ${r.currentVersionId ?? '?'} until finishSecret promotes ${r.versionId}`);
    if (r.rotationReEnabled) lines.push('  automatic rotation was re-enabled (it was paused)');
    if (r.emergency) {
      lines.push(
        `  the revocation guard does not wait for consumers: it terminates the sessions of the previous user (version ${r.previousVersionId ?? 'none'}); ` +
          `after promotion the credential of version ${r.currentVersionId ?? '?'} is revoked and its sessions are terminated`,
      );
    }
  }
  return lines.join('\n');
}

/**
 * What `abort` prints: every stage move, every tag removed (by key) or kept, and the re-drive's
 * result. No secret value is read to say it.
 *
 * @example
 * io.out(formatAbort(await abort(clients, 'orders-app')));
 */
export function formatAbort(r: AbortResult): string {
  if (!r.abortedVersionId) return `no rotation of ${r.secret} is waiting; nothing to abort (nothing was changed)`;
  const lines = [
    `aborted the rotation of ${r.secret} (no secret value was read):`,
    `  AWSPENDING removed from version ${r.abortedVersionId}: ${generationText(r)}`,
    `  AWSCURRENT unchanged: version ${r.currentVersionId ?? '?'}`,
    `  tags removed: ${r.tagsRemoved && r.tagsRemoved.length > 0 ? r.tagsRemoved.join(', ') : 'none'}`,
    ...(r.tagsKept ?? []).map((k) => `  tag kept: ${k.key} (${k.reason})`),
    ...(r.abortRecord ? [`  abort recorded: ${r.abortRecord}`] : []),
    `  re-drive: ${r.redrive === r.previousUserCheck ? '' : `${r.redrive}; `}previous user re-checked by the rotation function: ${r.previousUserCheck}`,
  ];
  return lines.join('\n');
}
