import { GetMetricDataCommand, type GetMetricDataCommandInput } from '@aws-sdk/client-cloudwatch';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { CloudWatchModel } from '../../../cli/local/cloudwatch-model';
import { installCloudWatchModel, wireCloudWatch, type CloudWatchStub } from '../../../cli/local/install';
import { decidePromotion, decideRevocation } from '../../../lambda/rotation/gates/decision';
import { consumerEvidence } from '../../../lambda/rotation/gates/evidence';
import { readGenerations } from '../../../lambda/rotation/gates/read-generations';
import { RevocationBlockedError } from '../../../lambda/shared/errors';
import { DEFAULT_NAMESPACE, REVOCATION_STATISTICS } from '../../../lambda/shared/metric-contract';
import { FakeClock, SECRET_NAME, gateConfig, registry, report, stepContext } from './gate-fixtures';

/** 05:10:30: the live consumer's last report, 5 minutes earlier, falls in the first minute of a 5-minute bucket. */
const NOW = Date.parse('2031-03-04T05:10:30.000Z');
const MINUTE = 60_000;

describe('Gate evidence read from CloudWatch (model)', () => {
  let clock: FakeClock;
  const model = new CloudWatchModel({ now: () => clock.now() });
  let cw: CloudWatchStub;

  beforeAll(() => {
    cw = installCloudWatchModel(model);
  });

  afterAll(() => {
    cw.restore();
  });

  beforeEach(() => {
    clock = new FakeClock(NOW);
    model.clear();
    cw.reset();
    wireCloudWatch(cw, model);
  });

  /** The GetMetricData requests sent so far. */
  const requests = () => cw.commandCalls(GetMetricDataCommand).map((c) => c.args[0].input as GetMetricDataCommandInput);

  describe('A period per consumer', () => {
    const consumers = registry([
      ['api', 'live', 60],
      ['nightly', 'scheduled', 90_000],
    ]);

    /** api reported generation 5 every minute until 5 minutes ago and then went silent; the job ran 2 hours ago. */
    function liveWentSilentFiveMinutesAgo(): void {
      for (let m = 5; m <= 20; m++) report(model, 'api', 5, NOW - m * MINUTE);
      report(model, 'nightly', 5, NOW - 120 * MINUTE);
    }

    it('reads a live consumer silent for 5 minutes as silent when a 25-hour scheduled consumer shares the read', async () => {
      // Prepare
      liveWentSilentFiveMinutesAgo();
      // Act
      const readout = await readGenerations(new CloudWatchClient({}), {
        namespace: DEFAULT_NAMESPACE,
        secretName: SECRET_NAME,
        consumers,
        now: NOW,
        lookbackSeconds: 900,
      });
      const d = decidePromotion(consumers, readout, 5);
      // Assess
      expect(d.blocking).toEqual([{ consumer: 'api', reason: 'silent', lastGeneration: 5 }]);
      expect(requests()).toHaveLength(1);
    });

    it('makes the revocation guard block on that live consumer, in one GetMetricData call with each consumer at its own period', async () => {
      // Prepare
      liveWentSilentFiveMinutesAgo();
      const ctx = stepContext({ config: gateConfig(consumers), clock });
      // Act
      const { decision, blocking } = await consumerEvidence(ctx, consumers, (r) => decideRevocation(consumers, r, { current: 5 }), {
        statistics: REVOCATION_STATISTICS,
      });
      // Assess
      expect(blocking).toEqual([{ consumer: 'api', reason: 'silent', lastGeneration: 5 }]);
      expect(decision?.consumers.map((c) => [c.consumer, c.state, c.period])).toEqual([
        ['api', 'silent', 60],
        ['nightly', 'fresh', 300],
      ]);
      const [request] = requests();
      expect(requests()).toHaveLength(1);
      expect(request.MetricDataQueries?.map((q) => [q.Label, q.MetricStat?.Stat, q.MetricStat?.Period])).toEqual([
        ['api', 'Minimum', 60],
        ['api (Maximum)', 'Maximum', 60],
        ['nightly', 'Minimum', 300],
        ['nightly (Maximum)', 'Maximum', 300],
      ]);
    });

    it('still reads a live consumer that reported within its minute as fresh', async () => {
      // Prepare
      for (let m = 0; m <= 20; m++) report(model, 'api', 5, NOW - m * MINUTE);
      report(model, 'nightly', 5, NOW - 120 * MINUTE);
      const ctx = stepContext({ config: gateConfig(consumers), clock });
      // Act
      const { blocking } = await consumerEvidence(ctx, consumers, (r) => decideRevocation(consumers, r, { current: 5 }), {
        statistics: REVOCATION_STATISTICS,
      });
      // Assess
      expect(blocking).toEqual([]);
    });
  });

  describe('Revocation guard: exactly the current or the pending generation', () => {
    const consumers = registry([
      ['api', 'live', 300],
      ['legacy', 'restart-only', 300],
    ]);
    const guard = (accepted: { current: number; pending?: number }) =>
      consumerEvidence(stepContext({ config: gateConfig(consumers), clock }), consumers, (r) => decideRevocation(consumers, r, accepted), {
        statistics: REVOCATION_STATISTICS,
      });

    it('blocks when a consumer\'s processes are split between current and a burnt generation, and says so', async () => {
      // Prepare: two processes of api report every minute; one still holds generation 6 of an aborted rotation
      for (let m = 0; m < 10; m++) {
        report(model, 'api', 5, NOW - m * MINUTE);
        report(model, 'api', 6, NOW - m * MINUTE);
        report(model, 'legacy', 5, NOW - m * MINUTE);
      }
      // Act
      const { blocking } = await guard({ current: 5 });
      // Assess
      expect(blocking).toEqual([{ consumer: 'api', reason: 'ahead', lastGeneration: 6 }]);
      expect(new RevocationBlockedError('app_clone', blocking, 0).message).toContain(
        "api (a process still holds generation 6, the credential of an aborted rotation; not broken: live consumers fall back to AWSCURRENT on their next refresh)",
      );
      expect(requests()).toHaveLength(1);
      expect(requests()[0].MetricDataQueries).toHaveLength(4);
    });

    it('passes consumers on exactly the current generation', async () => {
      // Prepare
      for (let m = 0; m < 10; m++) {
        report(model, 'api', 5, NOW - m * MINUTE);
        report(model, 'legacy', 5, NOW - m * MINUTE);
      }
      // Act / Assess
      expect((await guard({ current: 5 })).blocking).toEqual([]);
    });

    it('passes a live consumer already on this rotation\'s pending generation', async () => {
      // Prepare
      for (let m = 0; m < 10; m++) {
        report(model, 'api', 5, NOW - m * MINUTE);
        report(model, 'api', 6, NOW - m * MINUTE);
        report(model, 'legacy', 5, NOW - m * MINUTE);
      }
      // Act / Assess
      expect((await guard({ current: 5, pending: 6 })).blocking).toEqual([]);
    });

    it('fails closed when the read carries no Maximum', async () => {
      // Prepare
      report(model, 'api', 5, NOW);
      report(model, 'legacy', 5, NOW);
      // Act
      const { blocking, error } = await consumerEvidence(stepContext({ config: gateConfig(consumers), clock }), consumers, (r) =>
        decideRevocation(consumers, r, { current: 5 }),
      );
      // Assess
      expect(blocking.map((b) => b.reason)).toEqual(['unverified', 'unverified']);
      expect(error?.message).toMatch(/Maximum/);
    });
  });
});
