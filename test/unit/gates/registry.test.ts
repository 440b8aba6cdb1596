import { ENV, loadConfig } from '../../../lambda/rotation/config';
import { ConfigurationError } from '../../../lambda/shared/errors';
import { DEFAULT_MAX_STALENESS_SECONDS, blastRadius, parseRegistry } from '../../../lambda/shared/registry';

describe('Function: parseRegistry', () => {
  it('accepts the three modes and applies the default maxStaleness', () => {
    // Act
    const r = parseRegistry([
      { name: 'orders-api', mode: 'live' },
      { name: 'nightly-report', mode: 'scheduled', maxStalenessSeconds: 90_000 },
      { name: 'legacy/billing', mode: 'restart-only', maxStalenessSeconds: 600 },
    ]);
    // Assess
    expect(r).toEqual([
      { name: 'orders-api', mode: 'live', maxStalenessSeconds: DEFAULT_MAX_STALENESS_SECONDS },
      { name: 'nightly-report', mode: 'scheduled', maxStalenessSeconds: 90_000 },
      { name: 'legacy/billing', mode: 'restart-only', maxStalenessSeconds: 600 },
    ]);
  });

  it.each([
    ['not an array', { name: 'x' }, /must be a JSON array of consumers, got an object/],
    ['an entry that is not an object', ['x'], /\[0\] must be an object, got string "x"/],
    ['a missing name', [{ mode: 'live' }], /\[0\]\.name must be .* got undefined/],
    ['a name with a space', [{ name: 'orders api', mode: 'live' }], /\[0\]\.name .* got "orders api"/],
    ['a name of 256 characters', [{ name: 'a'.repeat(256), mode: 'live' }], /\[0\]\.name/],
    ['a duplicate name', [{ name: 'a', mode: 'live' }, { name: 'a', mode: 'scheduled' }], /\[1\]\.name duplicates consumer "a"/],
    ['an unknown mode', [{ name: 'a', mode: 'sometimes' }], /\[0\]\.mode must be one of live, scheduled, restart-only, got "sometimes"/],
    ['a maxStaleness under the 10-second minimum', [{ name: 'a', mode: 'live', maxStalenessSeconds: 5 }], /at least 10, got 5/],
    ['a maxStaleness that is a string', [{ name: 'a', mode: 'live', maxStalenessSeconds: '300' }], /got "300"/],
  ])('rejects %s with a ConfigurationError that shows what was received', (_name, value, message) => {
    // Act
    const act = () => parseRegistry(value, 'CONVERGE_CONSUMERS');
    // Assess
    expect(act).toThrow(ConfigurationError);
    expect(act).toThrow(message);
  });
});

describe('Function: loadConfig (consumer registry and gate settings)', () => {
  it('reads the registry and the gate settings from the environment at cold start', () => {
    // Act
    const config = loadConfig(
      {
        [ENV.consumers]: JSON.stringify([{ name: 'api', mode: 'live', maxStalenessSeconds: 120 }]),
        [ENV.gateMaxWaitSeconds]: '240',
        [ENV.gatePollSeconds]: '15',
        [ENV.gateLookbackSeconds]: '600',
        [ENV.metricNamespace]: 'Custom/Rotation',
      },
      () => false,
    );
    // Assess
    expect(config.consumers).toEqual([{ name: 'api', mode: 'live', maxStalenessSeconds: 120 }]);
    expect(config.gate).toEqual({ maxWaitSeconds: 240, pollSeconds: 15, lookbackSeconds: 600 });
    expect(config.metricNamespace).toBe('Custom/Rotation');
  });

  it('defaults to an empty registry and the documented gate settings', () => {
    // Act
    const config = loadConfig({}, () => false);
    // Assess
    expect(config.consumers).toEqual([]);
    expect(config.gate).toEqual({ maxWaitSeconds: 600, pollSeconds: 20, lookbackSeconds: 900 });
  });

  it.each([
    ['registry JSON that does not parse', { [ENV.consumers]: '[{name:' }, /CONVERGE_CONSUMERS is not valid JSON/],
    ['a registry entry with a bad mode', { [ENV.consumers]: '[{"name":"a","mode":"x"}]' }, /CONVERGE_CONSUMERS\[0\]\.mode/],
    ['a gate wait above the Lambda maximum', { [ENV.gateMaxWaitSeconds]: '901' }, /CONVERGE_GATE_MAX_WAIT_SECONDS must be an integer from 0 to 900, got "901"/],
    ['a zero poll interval', { [ENV.gatePollSeconds]: '0' }, /CONVERGE_GATE_POLL_SECONDS .* got "0"/],
  ])('fails the cold start on %s', (_name, env, message) => {
    // Act / Assess
    expect(() => loadConfig(env, () => false)).toThrow(message);
  });
});

describe('Function: blastRadius', () => {
  it('counts consumers by refresh mode', () => {
    // Act
    const counts = blastRadius(
      parseRegistry([
        { name: 'a', mode: 'live' },
        { name: 'b', mode: 'live' },
        { name: 'c', mode: 'restart-only' },
      ]),
    );
    // Assess
    expect(counts).toEqual({ live: 2, scheduled: 0, 'restart-only': 1 });
  });
});
