/**
 * `converge drill --scenario restart-only`: a restart-only consumer nobody restarted holds the
 * next rotation at the revocation guard; status names it; after its restart the rotation completes.
 */
import type { ScenarioReport } from '../../cli/drill/scenario';
import { consumerInStatus, nextActionInStatus, scenarioReport } from './drill-scenario-support';

describe('drill --scenario restart-only', () => {
  let report: ScenarioReport;

  beforeAll(async () => {
    // Prepare / Act
    report = await scenarioReport('restart-only');
  }, 180_000);

  it('names drill-restart-only-4 as blocking the revocation, and the guard refused rotation 2 until the restart', () => {
    // Assess
    expect(report.problems).toEqual([]);
    expect(report.blocking).toEqual([
      expect.objectContaining({ consumer: 'drill-restart-only-4', blocks: 'revocation' }),
    ]);
    expect(report.blocking[0].processes[0]).toEqual(
      expect.objectContaining({ pid: expect.any(Number), generation: 0 }),
    );
    expect(report.rotations[1].guardHolds).toBeGreaterThan(0);
    expect(report.guardHolds[0].error).toMatch(/^RevocationBlockedError: .*drill-restart-only-4/);
  });

  it('captured status: held by the guard, drill-restart-only-4 BLOCKING with since, next action restart', () => {
    // Assess
    expect(report.holds[0].rotationState).toBe('held-by-guard');
    expect(consumerInStatus(report, 'drill-restart-only-4')).toMatchObject({
      state: 'BLOCKING',
      blocks: 'revocation',
      since: expect.any(String),
    });
    expect(nextActionInStatus(report)).toMatchObject({
      kind: 'restart',
      consumer: 'drill-restart-only-4',
    });
  });

  it('ends with rotation 2 promoted, nothing pending, every consumer on generation 2, no failed query', () => {
    // Assess
    expect(report.rotations.map((r) => r.ok)).toEqual([true, true]);
    expect(report.final).toMatchObject({
      awsCurrent: expect.objectContaining({ generation: 2 }),
      failedQueries: 0,
    });
    expect(report.final.pendingVersionId).toBeUndefined();
    expect(report.final.consumers.map((c) => c.generation)).toEqual([2, 2, 2, 2]);
  });
});
