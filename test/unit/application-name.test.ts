import {
  MAX_APPLICATION_NAME_BYTES,
  attributedTo,
  formatApplicationName,
  parseApplicationName,
} from '../../lambda/shared/application-name';
import { ConfigurationError } from '../../lambda/shared/errors';

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

describe('Function: formatApplicationName', () => {
  it('writes cv1:<consumer>:<generation>:<host>:<pid>', () => {
    expect(
      formatApplicationName({ consumer: 'orders-api', generation: 7, host: 'host-a', pid: 4242 }),
    ).toBe('cv1:orders-api:7:host-a:4242');
  });

  it('round-trips a consumer name that contains ":" (the last three fields are generation, host, pid)', () => {
    const name = formatApplicationName({
      consumer: 'billing:jobs/nightly',
      generation: 12,
      host: 'ip-10-0-1-23',
      pid: 99,
    });
    expect(parseApplicationName(name)).toEqual({
      consumer: 'billing:jobs/nightly',
      generation: 12,
      host: 'ip-10-0-1-23',
      pid: 99,
    });
  });

  it('stays within 63 bytes with a 255-character consumer and a long host, keeping generation and pid whole', () => {
    const consumer = `orders-${'x'.repeat(248)}`;
    const host = 'ip-10-0-1-23.eu-west-1.compute.internal';
    const name = formatApplicationName({ consumer, generation: 123456, host, pid: 4194304 });
    expect(bytes(name)).toBeLessThanOrEqual(MAX_APPLICATION_NAME_BYTES);
    const parsed = parseApplicationName(name)!;
    expect(parsed).toMatchObject({ generation: 123456, pid: 4194304 });
    expect(parsed.host).toBe('ip-10-0~');
    expect(parsed.consumer.endsWith('~')).toBe(true);
    expect(attributedTo(parsed, consumer)).toBe(true);
    expect(attributedTo(parsed, 'orders-api')).toBe(false);
  });

  it('shortens the host before the consumer', () => {
    const consumer = 'orders-api';
    const host = `pod-${'h'.repeat(80)}`;
    const parsed = parseApplicationName(
      formatApplicationName({ consumer, generation: 3, host, pid: 17 }),
    )!;
    expect(parsed.consumer).toBe('orders-api');
    expect(parsed.host.endsWith('~')).toBe(true);
    expect(bytes(formatApplicationName({ consumer, generation: 3, host, pid: 17 }))).toBe(
      MAX_APPLICATION_NAME_BYTES,
    );
  });

  it('is ASCII only: a multibyte host becomes "?" per character, so PostgreSQL shows exactly what was set', () => {
    const name = formatApplicationName({
      consumer: 'orders-api',
      generation: 1,
      host: 'hôte-ünï-東京',
      pid: 5,
    });
    expect(name).toBe('cv1:orders-api:1:h?te-?n?-??:5');
    expect(/^[\x20-\x7e]+$/.test(name)).toBe(true);
    expect(parseApplicationName(name)).toMatchObject({
      host: 'h?te-?n?-??',
      consumer: 'orders-api',
    });
  });

  it('keeps a long multibyte host within 63 bytes', () => {
    const name = formatApplicationName({
      consumer: 'c',
      generation: 1,
      host: '東'.repeat(100),
      pid: 5,
    });
    expect(bytes(name)).toBeLessThanOrEqual(MAX_APPLICATION_NAME_BYTES);
    expect(parseApplicationName(name)).toMatchObject({ consumer: 'c', generation: 1, pid: 5 });
  });

  it('replaces ":" in the host so the fields stay separable', () => {
    const name = formatApplicationName({ consumer: 'a', generation: 2, host: 'fe80::1', pid: 3 });
    expect(parseApplicationName(name)).toEqual({
      consumer: 'a',
      generation: 2,
      host: 'fe80??1',
      pid: 3,
    });
  });

  it.each([
    [{ consumer: 'a', generation: -1, host: 'h', pid: 1 }, /generation/],
    [{ consumer: 'a', generation: 1.5, host: 'h', pid: 1 }, /generation/],
    [{ consumer: 'a', generation: 1, host: 'h', pid: 0 }, /pid/],
    [{ consumer: '', generation: 1, host: 'h', pid: 1 }, /consumer/],
  ])('refuses %o with a ConfigurationError', (input, message) => {
    expect(() => formatApplicationName(input)).toThrow(ConfigurationError);
    expect(() => formatApplicationName(input)).toThrow(message);
  });
});

describe('Function: parseApplicationName', () => {
  it.each([
    '',
    'psql',
    'converge',
    'converge-drill:orders',
    'cv1:orders:7:host',
    'cv2:orders:7:host:1',
    'cv1::7:host:1',
    'cv1:orders:x:host:1',
    'cv1:orders:07:host:1',
    'cv1:orders:7:host:0',
    'cv1:orders:7:host:1a',
    'cv1:orders:7::1',
    'cv1:orders:7:ho st:1',
    'cv1:or ders:7:host:1',
    'CV1:orders:7:host:1',
    ' cv1:orders:7:host:1',
    'cv1:orders:7:host:1 ',
    'cv1:orders:99999999999999999:h:1',
    `cv1:${'a'.repeat(60)}:7:h:1`,
  ])('rejects %j (not opened through the library)', (value) => {
    expect(parseApplicationName(value)).toBeUndefined();
  });

  it('accepts null (pg_stat_activity may show no application_name)', () => {
    expect(parseApplicationName(null)).toBeUndefined();
  });

  it('parses generation 0', () => {
    expect(parseApplicationName('cv1:orders:0:h:1')).toEqual({
      consumer: 'orders',
      generation: 0,
      host: 'h',
      pid: 1,
    });
  });
});
