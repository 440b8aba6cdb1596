import { decidePromotion, decideRevocation, unverifiedConsumers, type GenerationReadout } from '../../../lambda/rotation/gates/decision';
import type { GenerationDatapoint } from '../../../lambda/shared/metric-contract';
import { T0, registry } from './gate-fixtures';

function readout(data: Record<string, [number, number][]>, now = T0 + 10_000): GenerationReadout {
  const series = new Map<string, GenerationDatapoint[]>();
  for (const [consumer, points] of Object.entries(data)) {
    series.set(consumer, points.map(([ageMs, minimum]) => ({ timestamp: T0 - ageMs, minimum })));
  }
  return { series, period: 60, now };
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
  it('requires every mode to be fresh and at least on the current generation', () => {
    // Prepare
    const consumers = registry([
      ['api', 'live'],
      ['nightly', 'scheduled', 86_400],
      ['legacy', 'restart-only'],
    ]);
    // Act
    const d = decideRevocation(consumers, readout({ api: [[0, 6]], nightly: [[7_200_000, 4]], legacy: [[0, 5]] }), 5);
    // Assess: the job ran two hours ago on generation 4 (inside its one-day window)
    expect(d.blocking).toEqual([{ consumer: 'nightly', reason: 'stale', lastGeneration: 4 }]);
  });

  it('blocks on a silent consumer of any mode (silence does not prove the old credential is unused)', () => {
    // Act
    const d = decideRevocation(registry([['legacy', 'restart-only'], ['job', 'scheduled', 3600]]), readout({ legacy: [[0, 5]] }), 5);
    // Assess
    expect(d.blocking).toEqual([{ consumer: 'job', reason: 'silent', lastGeneration: undefined }]);
  });

  it('admits when every consumer moved', () => {
    // Act / Assess
    expect(decideRevocation(registry([['legacy', 'restart-only']]), readout({ legacy: [[0, 5]] }), 5).admit).toBe(true);
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
