import { runDrill, type DrillReport } from '../../cli/drill/drill';
import { formatDrill } from '../../cli/drill/run';
import { CloudWatchModel } from '../../cli/local/cloudwatch-model';
import { installCloudWatchModel } from '../../cli/local/install';
import { tlsServer } from '../support/database';
import { localSecretsManager } from '../support/rotation-harness';

describe('Drill: a full rotation under load, in process', () => {
  let report: DrillReport;
  const cw = installCloudWatchModel(new CloudWatchModel());
  afterAll(() => cw.restore());

  beforeAll(async () => {
    // Prepare / Act: one consumer of each mode plus a second live one, one rotation, on the shared
    // PostgreSQL and the local models (the real handler, both gates on).
    const { model } = localSecretsManager();
    report = JSON.parse(
      JSON.stringify(await runDrill({ consumers: 4, rotations: 1, refreshSeconds: 1, database: tlsServer(), secretsManagerModel: model })),
    ) as DrillReport;
  }, 120_000);

  it('reports a completed, converged rotation with zero failed queries in its JSON summary', () => {
    // Assess
    expect(report.summary).toMatchObject({ rotationsOk: 1, rotationsFailed: 0, allConverged: true, failedQueries: 0, finalGeneration: 1 });
    expect(report.summary.queries).toBeGreaterThan(0);
    expect(report.consumers.map((c) => c.mode)).toEqual(['live', 'live', 'scheduled', 'restart-only']);
  });

  it('measures each step, the time to promotion and the time to convergence', () => {
    // Assess
    const [r] = report.rotations;
    expect(Object.keys(r.stepsMs).sort()).toEqual(['createSecret', 'finishSecret', 'setSecret', 'testSecret']);
    expect(r.timeToPromotionMs).toBeGreaterThan(0);
    expect(r.timeToConvergenceMs).toBeGreaterThanOrEqual(r.timeToPromotionMs!);
    expect(r.username).toMatch(/_clone$/);
  });

  it('prints a table row per rotation and the summary line', () => {
    // Act
    const text = formatDrill(report);
    // Assess
    expect(text).toMatch(/^ 1\s+1\s+drill_app_\w+_clone/m);
    expect(text).toMatch(/Summary: 1\/1 rotations completed, every rotation converged, \d+ queries, 0 failed/);
  });
});
