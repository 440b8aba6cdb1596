import { decidePromotion, decideRevocation, unverifiedConsumers, type GenerationReadout } from '../../../lambda/rotation/gates/decision';
import { REVOCATION_STATISTICS, type GenerationDatapoint } from '../../../lambda/shared/metric-contract';
import { T0, registry } from './gate-fixtures';

const EVERYONE = ['api', 'worker', 'nightly', 'legacy', 'job'];

/**
 * A readout of buckets `[ageMs, minimum]` or `[ageMs, minimum, maximum]` per consumer, every
 * consumer read at 60 s; with a maximum anywhere, the readout carries Minimum and Maximum.
 */
function readout(data: Record<string, ([number, number] | [number, number, number])[]>, now = T0 + 10_000): GenerationReadout {
  const series = new Map<string, GenerationDatapoint[]>();
  let withMaximum = false;
  for (const [consumer, points] of Object.entries(data)) {
    series.set(
      consumer,
      points.map(([ageMs, minimum, maximum]) => {
        withMaximum ||= maximum !== undefined;
        return maximum === undefined ? { timestamp: T0 - ageMs, minimum } : { timestamp: T0 - ageMs, minimum, maximum };
      }),
    );
  }
  return { series, periods: new Map(EVERYONE.map((c) => [c, 60])), statistics: withMaximum ? REVOCATION_STATISTICS : ['Minimum'], now };
}

/** The guard's readout: every bucket with its Maximum (equal to the Minimum unless given). */
function guardReadout(data: Record<string, ([number, number] | [number, number, number])[]>): GenerationReadout {
  const r = readout(data);
  const series = new Map([...r.series].map(([c, points]) => [c, points.map((p) => ({ ...p, maximum: p.maximum ?? p.minimum }))]));
  return { ...r, series, statistics: REVOCATION_STATISTICS };
}

describe('Function: decidePromotion', () => {
  const consumers = registry([
    ['api', 'live'],
    ['worker', 'live'],
    ['nightly', 'scheduled', 86_400],
    ['legacy', 'restart-only'],
  ]);

  it('promotes when every live consumer reports the pending generation, whatever the other modes report', () => {
    // Act
    const d = decidePromotion(consumers, readout({ api: [[0, 5]], worker: [[60_000, 6]], legacy: [[0, 3]] }), 5);
    // Assess
    expect(d.admit).toBe(true);
    expect(d.blocking).toEqual([]);
    expect(d.consumers.map((c) => c.consumer)).toEqual(['api', 'worker']);
  });

  it('holds and names a live consumer still reporting the old generation', () => {
    // Act
    const d = decidePromotion(consumers, readout({ api: [[0, 5]], worker: [[0, 5], [120_000, 4]] }), 5);
    // Assess
    expect(d.admit).toBe(false);
    expect(d.blocking).toEqual([{ consumer: 'worker', reason: 'stale', lastGeneration: 4 }]);
  });

  it('holds and names a silent live consumer, with the generation it was last seen on', () => {
    // Act
    const d = decidePromotion(consumers, readout({ api: [[0, 5]], worker: [[900_000, 4]] }), 5);
    // Assess
    expect(d.blocking).toEqual([{ consumer: 'worker', reason: 'silent', lastGeneration: 4 }]);
  });

  it('holds for a registered live consumer that never reported at all', () => {
    // Act
    const d = decidePromotion(consumers, readout({ api: [[0, 5]] }), 5);
    // Assess
    expect(d.blocking).toEqual([{ consumer: 'worker', reason: 'silent', lastGeneration: undefined }]);
  });

  it('admits an empty live registry', () => {
    // Act / Assess
    expect(decidePromotion(registry([['job', 'scheduled']]), readout({}), 9).admit).toBe(true);
  });
});

describe('Function: decideRevocation', () => {
  it('requires every mode to be fresh and not behind the current generation', () => {
    // Prepare
    const consumers = registry([
      ['api', 'live'],
      ['nightly', 'scheduled', 86_400],
      ['legacy', 'restart-only'],
    ]);
    // Act
    const d = decideRevocation(consumers, guardReadout({ api: [[0, 6]], nightly: [[7_200_000, 4]], legacy: [[0, 5]] }), { current: 5, pending: 6 });
    // Assess: the job ran two hours ago on generation 4 (inside its one-day window)
    expect(d.blocking).toEqual([{ consumer: 'nightly', reason: 'stale', lastGeneration: 4 }]);
  });

  it('blocks on a silent consumer of any mode (silence does not prove the old credential is unused)', () => {
    // Act
    const d = decideRevocation(registry([['legacy', 'restart-only'], ['job', 'scheduled', 3600]]), guardReadout({ legacy: [[0, 5]] }), { current: 5 });
    // Assess
    expect(d.blocking).toEqual([{ consumer: 'job', reason: 'silent', lastGeneration: undefined }]);
  });

  it('admits when every consumer reports exactly the current generation', () => {
    // Act
    const d = decideRevocation(registry([['legacy', 'restart-only'], ['api', 'live']]), guardReadout({ legacy: [[0, 5]], api: [[0, 5], [60_000, 5]] }), { current: 5 });
    // Assess
    expect(d).toMatchObject({ admit: true, blocking: [], requiredGeneration: 5, acceptedGenerations: [5] });
  });

  it('admits a live consumer whose processes are split between current and this rotation\'s pending generation', () => {
    // Act
    const d = decideRevocation(registry([['api', 'live'], ['legacy', 'restart-only']]), guardReadout({ api: [[0, 5, 6], [60_000, 6]], legacy: [[0, 5]] }), {
      current: 5,
      pending: 6,
    });
    // Assess
    expect(d).toMatchObject({ admit: true, acceptedGenerations: [5, 6] });
  });

  it('blocks a consumer whose processes are split between current and a burnt generation, naming the generation ahead', () => {
    // Prepare: generation 6 was an aborted rotation's; one process still holds it, the others are on 5
    const consumers = registry([['api', 'live'], ['legacy', 'restart-only']]);
    // Act
    const d = decideRevocation(consumers, guardReadout({ api: [[0, 5, 6], [60_000, 5]], legacy: [[0, 5]] }), { current: 5 });
    // Assess
    expect(d.admit).toBe(false);
    expect(d.blocking).toEqual([{ consumer: 'api', reason: 'ahead', lastGeneration: 6 }]);
  });

  it('blocks a consumer on a burnt generation between current and this rotation\'s pending one', () => {
    // Act: current 5, generation 6 aborted, this rotation stages 7; every process of api holds 6
    const d = decideRevocation(registry([['api', 'live']]), guardReadout({ api: [[0, 6]] }), { current: 5, pending: 7 });
    // Assess
    expect(d.blocking).toEqual([{ consumer: 'api', reason: 'ahead', lastGeneration: 6 }]);
  });

  describe('after an operator abort (the converge:aborted record)', () => {
    // Current 5; the aborted rotation's generation 6; the abort happened 60 s before T0. Buckets are
    // 60 s: one that started 180 s before T0 ended before the abort, one that started at T0 after it.
    const aborted = { generation: 6, at: T0 - 60_000 };
    const consumers = registry([['api', 'live'], ['legacy', 'restart-only']]);

    it('sets aside points of the aborted generation from before the abort once the consumer reported current after it', () => {
      // Act
      const d = decideRevocation(consumers, guardReadout({ api: [[180_000, 6], [0, 5]], legacy: [[0, 5]] }), { current: 5, aborted });
      // Assess
      expect(d).toMatchObject({ admit: true, blocking: [], abortedBefore: ['api'] });
    });

    it('still blocks a consumer that reported the aborted generation after the abort (it kept the aborted credential)', () => {
      // Act: one process fell back, another still reports 6 after the abort
      const d = decideRevocation(consumers, guardReadout({ api: [[180_000, 6], [0, 5, 6]], legacy: [[0, 5]] }), { current: 5, aborted });
      // Assess
      expect(d.admit).toBe(false);
      expect(d.blocking).toEqual([{ consumer: 'api', reason: 'ahead', lastGeneration: 6 }]);
    });

    it('still blocks a consumer with no data point after the abort (nothing shows it moved)', () => {
      // Act: api's newest bucket ended before the abort; it is still fresh
      const d = decideRevocation(consumers, guardReadout({ api: [[180_000, 6], [240_000, 5]], legacy: [[0, 5]] }), { current: 5, aborted });
      // Assess
      expect(d.blocking).toEqual([{ consumer: 'api', reason: 'ahead', lastGeneration: 6 }]);
    });

    it('still blocks on a bucket of the aborted generation that straddles the abort (before or after cannot be told)', () => {
      // Act: the bucket that started 90 s before T0 ended 30 s before it, after the abort
      const d = decideRevocation(consumers, guardReadout({ api: [[90_000, 6], [0, 5]], legacy: [[0, 5]] }), { current: 5, aborted });
      // Assess
      expect(d.blocking).toEqual([{ consumer: 'api', reason: 'ahead', lastGeneration: 6 }]);
    });

    it('sets aside nothing of another burnt generation than the aborted one', () => {
      // Act: generation 7 was aborted; api's old points are of 6, burnt by an earlier abort
      const d = decideRevocation(consumers, guardReadout({ api: [[180_000, 6], [0, 5]], legacy: [[0, 5]] }), {
        current: 5,
        aborted: { generation: 7, at: aborted.at },
      });
      // Assess
      expect(d.blocking).toEqual([{ consumer: 'api', reason: 'ahead', lastGeneration: 6 }]);
    });

    it('ignores a record of a generation a rotation stands behind (the pending one, or not newer than current)', () => {
      // Act: the record names 6, but 6 is this rotation's pending generation; and a record of 5 (current)
      const pending = decideRevocation(consumers, guardReadout({ api: [[180_000, 6], [0, 5]], legacy: [[0, 5]] }), { current: 5, pending: 6, aborted });
      const current = decideRevocation(consumers, guardReadout({ api: [[180_000, 4], [0, 5]], legacy: [[0, 5]] }), {
        current: 5,
        aborted: { generation: 5, at: aborted.at },
      });
      // Assess
      expect(pending).toMatchObject({ admit: true, acceptedGenerations: [5, 6] });
      expect(pending.abortedBefore).toBeUndefined();
      expect(current.blocking).toEqual([{ consumer: 'api', reason: 'stale', lastGeneration: 4 }]);
    });
  });

  it('refuses a readout without the Maximum (a process ahead would be invisible)', () => {
    // Act / Assess
    expect(() => decideRevocation(registry([['api', 'live']]), readout({ api: [[0, 5]] }), { current: 5 })).toThrow(/needs each bucket's Maximum/);
  });

  it('refuses to judge a consumer the readout did not read', () => {
    // Act / Assess
    expect(() => decideRevocation(registry([['ghost', 'live']]), guardReadout({}), { current: 5 })).toThrow(/no period for consumer "ghost"/);
  });
});

describe('Function: unverifiedConsumers', () => {
  it('marks every consumer unverified', () => {
    // Act / Assess
    expect(unverifiedConsumers(registry([['a', 'live'], ['b', 'scheduled']]))).toEqual([
      { consumer: 'a', reason: 'unverified' },
      { consumer: 'b', reason: 'unverified' },
    ]);
  });
});
