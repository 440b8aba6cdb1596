/**
 * `converge drill` / `npm run drill`: runs {@link runDrill} against local models of Secrets Manager
 * and CloudWatch (or a compatible endpoint when AWS_ENDPOINT_URL is set), shows a progress line,
 * and prints a table per rotation and a summary (or JSON). Exit code 1 if any query or rotation
 * failed (also a rotation failed on purpose with `--fail <step>`, see ./fault.ts).
 */
import { CloudWatchModel } from '../local/cloudwatch-model';
import { installCloudWatchModel, installSecretsManagerModel } from '../local/install';
import { SecretsManagerModel } from '../local/secrets-manager-model';
import type { DrillArgs } from '../main';
import { runDrill, type DrillReport } from './drill';

/**
 * Runs the drill for `converge drill` and returns its exit code: 0 when every rotation completed
 * and converged with no failed query, 1 otherwise. The caller (cli/main.ts `main()`) exits with it.
 *
 * @example
 * const code = await runDrillCommand({ consumers: 1, rotations: 1, refresh: 1, json: true, fail: 'setSecret' }); // 1
 */
export async function runDrillCommand(args: DrillArgs): Promise<number> {
  const external = Boolean(process.env.AWS_ENDPOINT_URL);
  let model: SecretsManagerModel | undefined;
  if (!external) {
    // Nothing leaves this machine: both AWS services are answered in memory.
    process.env.AWS_REGION ??= 'us-east-1';
    model = new SecretsManagerModel();
    installSecretsManagerModel(model);
    installCloudWatchModel(new CloudWatchModel());
  }
  const interactive = process.stderr.isTTY && !args.json;
  const report = await runDrill({
    consumers: args.consumers,
    rotations: args.rotations,
    durationSeconds: args.duration,
    refreshSeconds: args.refresh,
    secretsManagerModel: model,
    failStep: args.fail,
    onProgress: (p) => {
      const line =
        `[${p.elapsedSeconds.toFixed(1)}s] rotation ${p.rotation}/${args.rotations}: ${p.phase} | ` +
        `queries ${p.queries}, failed ${p.failed} | generations ${p.generations.map((g) => g ?? '-').join(' ')}`;
      if (interactive) process.stderr.write(`\r\x1b[K${line}`);
      else if (!args.json) process.stderr.write(`${line}\n`);
    },
  });
  if (interactive) process.stderr.write('\n');
  process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatDrill(report, external)}\n`);
  return report.summary.failedQueries === 0 && report.summary.rotationsFailed === 0 && report.summary.allConverged ? 0 : 1;
}

/**
 * The human-readable drill report.
 *
 * @example
 * process.stdout.write(`${formatDrill(await runDrill({ secretsManagerModel: model }))}\n`);
 */
export function formatDrill(r: DrillReport, external = false): string {
  const lines: string[] = [];
  lines.push(`converge drill: ${r.consumers.length} consumers (${r.consumers.map((c) => c.mode).join(', ')}), ${external ? 'endpoint ' + process.env.AWS_ENDPOINT_URL : 'local Secrets Manager and CloudWatch models'}, embedded PostgreSQL with TLS`);
  lines.push('');
  lines.push(' #  gen  user                      create    set   test  finish  promoted  converged  queries  failed');
  for (const x of r.rotations) {
    const ms = (v?: number) => (v === undefined ? '-' : `${v}`).padStart(6);
    const s = (v?: number) => (v === undefined ? '-' : `${(v / 1000).toFixed(1)}s`).padStart(8);
    lines.push(
      `${String(x.rotation).padStart(2)}  ${String(x.generation).padStart(3)}  ${x.username.slice(0, 24).padEnd(24)}  ${ms(x.stepsMs.createSecret)} ${ms(x.stepsMs.setSecret)} ${ms(x.stepsMs.testSecret)} ${ms(x.stepsMs.finishSecret)}  ${s(x.timeToPromotionMs)}  ${s(x.timeToConvergenceMs).padStart(9)}  ${String(x.queries).padStart(7)}  ${String(x.failedQueries).padStart(6)}`,
    );
    if (x.error) lines.push(`    FAILED: ${x.error}`);
    if (x.abortedVersionId) lines.push(`    aborted: version ${x.abortedVersionId} is no longer AWSPENDING (as converge abort does); AWSCURRENT unchanged`);
  }
  lines.push('    (steps in ms; promoted: RotateSecret until AWSCURRENT moved; converged: until CloudWatch showed every consumer on the new generation, as the revocation guard of the next rotation requires)');
  const m = r.summary;
  lines.push('');
  lines.push(
    `Summary: ${m.rotationsOk}/${m.rotationsOk + m.rotationsFailed} rotations completed${m.rotationsFailed > 0 ? ` (${m.rotationsFailed} FAILED)` : ''}, ${m.allConverged ? 'every rotation converged' : 'NOT ALL CONVERGED'}, ` +
      `${m.queries} queries, ${m.failedQueries} failed, ${m.throughputQps} queries/s over ${m.elapsedSeconds}s`,
  );
  if (m.firstFailure) lines.push(`First failed query: ${m.firstFailure}`);
  return lines.join('\n');
}
