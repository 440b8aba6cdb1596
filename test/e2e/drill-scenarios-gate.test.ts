/**
 * `converge drill --scenario stuck-live | silent`: a live consumer holds the promotion gate; the
 * report names it with its processes, the status captured during the hold shows it BLOCKING with
 * since and says restart it, and after the operator's restart the rotation completes.
 */
import type { ScenarioReport } from '../../cli/drill/scenario';
import { consumerInStatus, nextActionInStatus, scenarioReport } from './drill-scenario-support';

describe.each([
  ['stuck-live', 'stale'],
  ['silent', 'silent'],
] as const)('drill --scenario %s', (name, reason) => {
  let report: ScenarioReport;

  beforeAll(async () => {
    // Prepare / Act: the scenario breaks drill-live-2, captures status, restarts it.
    report = await scenarioReport(name);
  }, 150_000);

  it('names drill-live-2 as the blocking consumer, with its processes', () => {
    // Assess
    expect(report.problems).toEqual([]);
    expect(report.blocking.map((b) => b.consumer)).toEqual(['drill-live-2']);
    expect(report.blocking[0]).toMatchObject({ blocks: 'promotion', reason });
    expect(report.blocking[0].processes.length).toBeGreaterThan(0);
    expect(report.blocking[0].processes[0]).toEqual(
      expect.objectContaining({ host: expect.any(String), pid: expect.any(Number) }),
    );
  });

  it('captured status during the hold: drill-live-2 BLOCKING with since, next action restart', () => {
    // Assess
    expect(report.holds[0]).toMatchObject({
      rotationState: 'waiting-at-gate',
      blocking: ['drill-live-2'],
    });
    expect(consumerInStatus(report, 'drill-live-2')).toMatchObject({
      state: 'BLOCKING',
      blocks: 'promotion',
      reason,
      since: expect.any(String),
    });
    expect(consumerInStatus(report, 'drill-live-1')).toMatchObject({ state: 'OK' });
    expect(nextActionInStatus(report)).toMatchObject({ kind: 'restart', consumer: 'drill-live-2' });
  });

  it('after the operator restarts it the rotation completes with no failed query', () => {
    // Assess
    expect(report.operatorActions.map((a) => a.command)).toEqual(['restart drill-live-2']);
    expect(report.rotations).toEqual([
      expect.objectContaining({ ok: true, timeToPromotionMs: expect.any(Number) }),
    ]);
    expect(report.final.awsCurrent.generation).toBe(1);
    expect(report.final.pendingVersionId).toBeUndefined();
    expect(report.final.consumers.map((c) => c.generation)).toEqual([1, 1, 1, 1]);
    expect(report.final.failedQueries).toBe(0);
  });
});
