import { encodeAbortRecord, readAbortRecord, TAG_ABORTED } from '../../../lambda/rotation/aborted';
import { T0 } from './gate-fixtures';

const tags = (value: string) => ({
  Tags: [
    { Key: 'team', Value: 'orders' },
    { Key: TAG_ABORTED, Value: value },
  ],
});

describe('The converge:aborted record', () => {
  it('round-trips through a tag value Secrets Manager accepts', () => {
    // Prepare
    const record = {
      versionId: '3f0c1e9a-52e6-4e8c-9593-7c0ae5662a90',
      generation: 8,
      at: T0 + 7_123,
    };
    // Act
    const value = encodeAbortRecord(record);
    // Assess
    expect(value).toBe('3f0c1e9a-52e6-4e8c-9593-7c0ae5662a90 8 2031-03-04T05:06:07.123Z');
    expect(value).toMatch(/^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,256}$/u);
    expect(readAbortRecord(tags(value))).toEqual(record);
  });

  it.each([
    ['no tag', undefined],
    ['two fields', 'v1 8'],
    ['a generation that is not a number', 'v1 eight 2031-03-04T05:06:07.123Z'],
    ['a negative generation', 'v1 -8 2031-03-04T05:06:07.123Z'],
    ['a time that is not a time', 'v1 8 yesterday'],
  ])('reads %s as no record (the guard then sets nothing aside)', (_name, value) => {
    // Act / Assess
    expect(readAbortRecord(value === undefined ? { Tags: [] } : tags(value))).toBeUndefined();
  });

  it('refuses a version id a tag value cannot hold', () => {
    // Act / Assess
    expect(() => encodeAbortRecord({ versionId: 'a b', generation: 1, at: T0 })).toThrow(
      /cannot be recorded/,
    );
    expect(() => encodeAbortRecord({ versionId: 'v#1', generation: 1, at: T0 })).toThrow(
      /cannot be recorded/,
    );
  });
});
