/**
 * `converge drill` / `npm run drill`: runs {@link runDrill} (`--scenario healthy`, the default) or
 * a scenario of ./scenarios/ against local models of Secrets Manager, CloudWatch and Lambda (or,
 * for `healthy`, a compatible endpoint when AWS_ENDPOINT_URL is set), shows labelled progress lines,
 * and prints a table per rotation and a summary, or the scenario's report (or JSON). Exit code 1 if
 * any query or rotation failed (also a rotation failed on purpose with `--fail <step>`, see
 * ./fault.ts), or a scenario did not end as it should. `--keep` leaves the stand-ins up (./keep.ts).
 */
import { ConfigurationError } from '../../lambda/shared/errors';
import { formatStatus } from '../format';
import { CloudWatchModel } from '../local/cloudwatch-model';
import { installCloudWatchModel, installSecretsManagerModel } from '../local/install';
import { installLambdaModel, LambdaModel } from '../local/lambda-model';
import { SecretsManagerModel } from '../local/secrets-manager-model';
import type { DrillArgs } from '../main';
import { runDrill, type DrillReport } from './drill';
import { keepServing } from './keep';
import { runScenario, SCENARIO_CONSUMERS, type ScenarioReport } from './scenario';
import type { ScenarioName } from './scenario-names';
import { SCENARIOS } from './scenarios';

/**
 * Runs the drill for `converge drill` and returns its exit code: 0 when every rotation completed
 * and converged with no failed query (for a scenario: when it ended as it should, see
 * ./scenario.ts), 1 otherwise. The caller (cli/main.ts `main()`) exits with it.
 *
 * The header and plan are printed (stderr) before PostgreSQL starts, then labelled progress lines;
 * stdout carries the report alone (`--json`: the JSON report).
 *
 * @example
 * const code = await runDrillCommand({ consumers: 1, rotations: 1, refresh: 1, json: true, fail: 'setSecret' }); // 1
 */
export async function runDrillCommand(args: DrillArgs): Promise<number> {
  const external = Boolean(process.env.AWS_ENDPOINT_URL);
  const scenario = args.scenario ?? 'healthy';
  if (external && (scenario !== 'healthy' || args.keep)) {
    throw new ConfigurationError(
      `--scenario ${scenario}${args.keep ? ' --keep' : ''} runs on the local models only; unset AWS_ENDPOINT_URL`,
    );
  }
  let models:
    | { secretsManager: SecretsManagerModel; cloudWatch: CloudWatchModel; lambda: LambdaModel }
    | undefined;
  if (!external) {
    // Nothing leaves this machine: the AWS services are answered in memory.
    process.env.AWS_REGION ??= 'us-east-1';
    const cloudWatch = new CloudWatchModel();
    models = {
      secretsManager: new SecretsManagerModel(),
      cloudWatch,
      lambda: new LambdaModel({ cloudWatch }),
    };
    installSecretsManagerModel(models.secretsManager);
    installCloudWatchModel(models.cloudWatch);
    installLambdaModel(models.lambda);
  }
  const interactive = process.stderr.isTTY && !args.json;
  const err = (line: string) => process.stderr.write(`${line}\n`);
  for (const line of header(args, scenario, external)) err(line);
  const keep = (target: { secretName: string; caBundlePath?: string }, print: () => void) =>
    args.keep && models
      ? (async () => {
          print();
          await keepServing({ ...target, models: models! }, { print: err });
        })()
      : Promise.resolve();
  const out = (text: string) => process.stdout.write(`${text}\n`);

  if (scenario !== 'healthy') {
    let printed = false;
    const show = (r: ScenarioReport) => {
      if (printed) return;
      printed = true;
      out(args.json ? JSON.stringify(r, null, 2) : formatScenario(r));
    };
    const report = await runScenario(SCENARIOS[scenario], {
      secretsManagerModel: models!.secretsManager,
      lambdaModel: models!.lambda,
      refreshSeconds: args.refresh,
      onProgress: err,
      keep: (stand, r) =>
        keep({ secretName: stand.secretName, caBundlePath: stand.caBundlePath }, () => show(r)),
    });
    show(report);
    return report.ok ? 0 : 1;
  }

  let printed = false;
  const show = (r: DrillReport) => {
    if (printed) return;
    printed = true;
    if (interactive) process.stderr.write('\n');
    out(args.json ? JSON.stringify({ scenario, ...r }, null, 2) : formatDrill(r, external));
  };
  const report = await runDrill({
    consumers: args.consumers,
    rotations: args.rotations,
    durationSeconds: args.duration,
    refreshSeconds: args.refresh,
    secretsManagerModel: models?.secretsManager,
    lambdaModel: models?.lambda,
    failStep: args.fail,
    keep: (target, r) => keep(target, () => show(r)),
    onProgress: (p) => {
      const line =
        `[${p.elapsedSeconds.toFixed(1)}s] rotation ${p.rotation}/${args.rotations}: ${p.phase} | ` +
        `${p.labels ?? p.generations.map((g) => g ?? '-').join(' ')} | queries ${p.queries}, failed ${p.failed}`;
      if (interactive) process.stderr.write(`\r\x1b[K${line}`);
      else err(line);
    },
  });
  show(report);
  return report.summary.failedQueries === 0 &&
    report.summary.rotationsFailed === 0 &&
    report.summary.allConverged
    ? 0
    : 1;
}

/** What the drill is about to do, printed before PostgreSQL starts. */
function header(args: DrillArgs, scenario: ScenarioName, external: boolean): string[] {
  const where = external
    ? `endpoint ${process.env.AWS_ENDPOINT_URL}`
    : 'local Secrets Manager, CloudWatch and Lambda models';
  if (scenario === 'healthy') {
    return [
      `converge drill --scenario healthy: ${args.consumers} consumers, ${args.rotations} rotation(s) through the real rotation handler with both gates on`,
      `  embedded PostgreSQL with TLS, ${where}; staleness 10 s, reports every 1 s, live refresh every ${args.refresh} s${args.fail ? `; ${args.fail} of rotation 1 fails on purpose` : ''}`,
      ...(args.keep ? ['  then --keep: the stand-ins stay up until Ctrl-C'] : []),
    ];
  }
  const s = SCENARIOS[scenario];
  return [
    `converge drill --scenario ${scenario}: ${s.summary}`,
    `  consumers ${SCENARIO_CONSUMERS.map((c) => c.name).join(', ')}; embedded PostgreSQL with TLS, ${where}; staleness 10 s, reports every 1 s`,
    '  plan:',
    ...s.plan.map((step, i) => `    ${i + 1}. ${step}`),
    ...(args.keep ? [`    ${s.plan.length + 1}. --keep: the stand-ins stay up until Ctrl-C`] : []),
  ];
}

/**
 * The human-readable report of a scenario.
 *
 * @example
 * process.stdout.write(`${formatScenario(report)}\n`);
 */
export function formatScenario(r: ScenarioReport): string {
  const lines: string[] = [];
  lines.push(
    `converge drill --scenario ${r.scenario}: ${r.ok ? 'ended as expected' : 'DID NOT END AS EXPECTED'} after ${r.elapsedSeconds}s`,
  );
  for (const b of r.blocking) {
    lines.push(
      `  blocking: ${b.consumer}${b.blocks ? ` (${b.blocks}${b.reason ? `, ${b.reason}` : ''})` : ''}${b.since ? ` since ${b.since}` : ''}; processes ${b.processes.map((p) => `${p.host}:${p.pid} g${p.generation ?? '-'}`).join(', ')}`,
    );
  }
  for (const h of r.holds) {
    lines.push(
      `  status at ${h.atSeconds}s: rotation ${h.rotationState}, health ${h.health}, next action ${h.nextAction ? `${h.nextAction.kind}${h.nextAction.command ? ` (${h.nextAction.command})` : ''}` : '-'}`,
    );
  }
  for (const a of r.operatorActions) lines.push(`  operator at ${a.atSeconds}s: ${a.command}`);
  for (const x of r.rotations) {
    lines.push(
      `  rotation ${x.rotation}${x.emergency ? ' (emergency)' : ''}: ${x.ok ? `promoted after ${((x.timeToPromotionMs ?? 0) / 1000).toFixed(1)}s` : `not promoted${x.error ? `: ${x.error}` : ''}`}${x.guardHolds > 0 ? `; setSecret refused ${x.guardHolds}x by the revocation guard` : ''}`,
    );
  }
  if (r.terminatedSessions)
    lines.push(
      `  terminated sessions: ${r.terminatedSessions.length} (${[...new Set(r.terminatedSessions.map((s) => String(s.applicationName)))].join(', ')})`,
    );
  const f = r.final;
  lines.push(
    `  final: AWSCURRENT generation ${f.awsCurrent.generation} (${f.awsCurrent.username}), ${f.pendingVersionId ? `AWSPENDING on ${f.pendingVersionId}` : 'nothing pending'}`,
  );
  lines.push(
    `  consumers: ${f.consumers.map((c) => `${c.name} g${c.generation ?? '-'}${c.failedQueries > 0 ? ` (${c.failedQueries} failed)` : ''}`).join(', ')}`,
  );
  lines.push(
    `  queries ${f.queries}, failed ${f.failedQueries}${f.firstFailure ? ` (first: ${f.firstFailure})` : ''}`,
  );
  for (const n of r.notes) lines.push(`  note: ${n}`);
  for (const p of r.problems) lines.push(`  PROBLEM: ${p}`);
  const indent = (text: string) => text.split('\n').map((l) => `    ${l}`);
  r.statusDuringHold.forEach((s, i) => {
    lines.push(
      '',
      `converge status --sessions during the hold (capture ${i + 1} of ${r.statusDuringHold.length}):`,
      ...indent(formatStatus(s)),
    );
  });
  if (r.statusAtEnd)
    lines.push(
      '',
      'converge status --sessions at the end:',
      ...indent(formatStatus(r.statusAtEnd)),
    );
  return lines.join('\n');
}

/**
 * The human-readable drill report.
 *
 * @example
 * process.stdout.write(`${formatDrill(await runDrill({ secretsManagerModel: model }))}\n`);
 */
export function formatDrill(r: DrillReport, external = false): string {
  const lines: string[] = [];
  lines.push(
    `converge drill: ${r.consumers.length} consumers (${r.consumers.map((c) => c.mode).join(', ')}), ${external ? 'endpoint ' + process.env.AWS_ENDPOINT_URL : 'local Secrets Manager and CloudWatch models'}, embedded PostgreSQL with TLS`,
  );
  lines.push('');
  lines.push(
    ' #  gen  user                      create    set   test  finish  promoted  converged  queries  failed',
  );
  for (const x of r.rotations) {
    const ms = (v?: number) => (v === undefined ? '-' : `${v}`).padStart(6);
    const s = (v?: number) => (v === undefined ? '-' : `${(v / 1000).toFixed(1)}s`).padStart(8);
    lines.push(
      `${String(x.rotation).padStart(2)}  ${String(x.generation).padStart(3)}  ${x.username.slice(0, 24).padEnd(24)}  ${ms(x.stepsMs.createSecret)} ${ms(x.stepsMs.setSecret)} ${ms(x.stepsMs.testSecret)} ${ms(x.stepsMs.finishSecret)}  ${s(x.timeToPromotionMs)}  ${s(x.timeToConvergenceMs).padStart(9)}  ${String(x.queries).padStart(7)}  ${String(x.failedQueries).padStart(6)}`,
    );
    if (x.error) lines.push(`    FAILED: ${x.error}`);
    if (x.abortedVersionId)
      lines.push(
        `    aborted: version ${x.abortedVersionId} is no longer AWSPENDING (as converge abort does); AWSCURRENT unchanged`,
      );
  }
  lines.push(
    '    (steps in ms; promoted: RotateSecret until AWSCURRENT moved; converged: until CloudWatch showed every consumer on the new generation, as the revocation guard of the next rotation requires)',
  );
  const m = r.summary;
  lines.push('');
  lines.push(
    `Summary: ${m.rotationsOk}/${m.rotationsOk + m.rotationsFailed} rotations completed${m.rotationsFailed > 0 ? ` (${m.rotationsFailed} FAILED)` : ''}, ${m.allConverged ? 'every rotation converged' : 'NOT ALL CONVERGED'}, ` +
      `${m.queries} queries, ${m.failedQueries} failed, ${m.throughputQps} queries/s over ${m.elapsedSeconds}s`,
  );
  if (m.firstFailure) lines.push(`First failed query: ${m.firstFailure}`);
  return lines.join('\n');
}
