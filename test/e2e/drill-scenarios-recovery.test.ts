/**
 * `converge drill --scenario abort-midway | emergency`: the two ways out of a rotation that cannot
 * wait, and the states they end with (README.md, "The drill").
 */
import type { ScenarioReport } from '../../cli/drill/scenario';
import { scenarioReport } from './drill-scenario-support';

describe('drill --scenario abort-midway', () => {
  let report: ScenarioReport;

  beforeAll(async () => {
    // Prepare / Act
    report = await scenarioReport('abort-midway');
  }, 180_000);

  it('aborts the held rotation (not promoted), the adopter falls back, and the next rotation completes', () => {
    // Assess
    expect(report.problems).toEqual([]);
    expect(report.blocking.map((b) => b.consumer)).toEqual(['drill-live-2']);
    expect(report.operatorActions.map((a) => a.action)).toEqual([
      'converge abort',
      'restart drill-live-2',
      'converge rotate',
    ]);
    expect(report.rotations[0]).toMatchObject({
      ok: false,
      // finishSecret notices the abort while it waits, or a retry finds the version gone from the stages
      error: expect.stringMatching(
        /^(RotationAbortedError|RotationStateError: token \S+ is not a version)/,
      ),
    });
    expect(report.rotations[1]).toMatchObject({ ok: true });
    // Generation 1 was burnt by the aborted rotation.
    expect(report.final.awsCurrent.generation).toBe(2);
    expect(report.final.pendingVersionId).toBeUndefined();
    expect(report.final.consumers.map((c) => c.generation)).toEqual([2, 2, 2, 2]);
    expect(report.final.failedQueries).toBe(0);
  });

  it('the rotation after the abort is not refused by the revocation guard for a healthy consumer', () => {
    // Assess: the abort-then-rotate trap (issue 12): drill-live-1 adopted the aborted credential and fell back.
    expect(report.rotations[1].guardHolds).toBe(0);
  });
});

describe('drill --scenario emergency', () => {
  let report: ScenarioReport;

  beforeAll(async () => {
    // Prepare / Act
    report = await scenarioReport('emergency');
  }, 180_000);

  it('completes the emergency rotation without waiting for the stuck consumer, and logs its terminated sessions attributed', () => {
    // Assess
    expect(report.problems).toEqual([]);
    expect(report.blocking).toEqual([
      expect.objectContaining({ consumer: 'drill-restart-only-4', blocks: 'revocation' }),
    ]);
    expect(report.rotations[1]).toMatchObject({ emergency: true, ok: true, guardHolds: 0 });
    expect(report.terminatedSessions!.length).toBeGreaterThan(0);
    expect(report.terminatedSessions!.map((s) => String(s.applicationName))).toEqual(
      expect.arrayContaining([expect.stringContaining('drill-restart-only-4')]),
    );
  });

  it('ends on the new generation with nothing pending; failed queries are counted, only for consumers on a revoked credential', () => {
    // Assess
    expect(report.final.awsCurrent.generation).toBe(2);
    expect(report.final.pendingVersionId).toBeUndefined();
    const failed = Object.fromEntries(report.final.consumers.map((c) => [c.name, c.failedQueries]));
    expect(failed['drill-live-1']).toBe(0);
    expect(failed['drill-live-2']).toBe(0);
    expect(report.final.failedQueries).toBe(Object.values(failed).reduce((a, b) => a + b, 0));
  });
});
