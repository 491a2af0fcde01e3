import { AuditTimeError, parseAuditTime } from './audit-time.util';

describe('parseAuditTime', () => {
  const now = new Date('2030-06-15T12:00:00.000Z');

  it.each([
    ['30m', '2030-06-15T11:30:00.000Z'],
    ['6h', '2030-06-15T06:00:00.000Z'],
    ['1d', '2030-06-14T12:00:00.000Z'],
    ['2w', '2030-06-01T12:00:00.000Z'],
    ['45s', '2030-06-15T11:59:15.000Z'],
    ['2030-06-01', '2030-06-01T00:00:00.000Z'],
    ['2030-06-01T08:30:00Z', '2030-06-01T08:30:00.000Z'],
    ['2030-06-01T08:30', '2030-06-01T08:30:00.000Z'],
    ['2030-06-01 08:30:00+02:00', '2030-06-01T06:30:00.000Z'],
  ])('%s', (value, expected) => {
    expect(parseAuditTime(value, now).toISOString()).toBe(expected);
  });

  it.each(['yesterday', '1y', '-1d', '2030-13-01', '2030-06-01T25:00', ''])('refuses %p', (value) => {
    expect(() => parseAuditTime(value, now)).toThrow(AuditTimeError);
  });

  it.each(['99999999999999d', '9999999999w', '999999999999999999999s', '3000000d', '0000-06-01'])(
    'refuses %p as out of range instead of handing the database an impossible time',
    (value) => {
      expect(() => parseAuditTime(value, now)).toThrow(
        /out of range: times must fall between 0001-01-01 and 9999-12-31/,
      );
    },
  );
});
