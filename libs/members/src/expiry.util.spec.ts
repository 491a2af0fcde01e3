import { parseExpiry } from './expiry.util';
import { MembersError } from './members.exception';

describe('parseExpiry', () => {
  const now = new Date('2026-03-10T12:00:00Z');
  it.each([
    ['2026-12-31', '2027-01-01T00:00:00.000Z'],
    ['2026-12-31T18:00:00Z', '2026-12-31T18:00:00.000Z'],
    ['2026-12-31T18:00:00+02:00', '2026-12-31T16:00:00.000Z'],
    ['30d', '2026-04-09T12:00:00.000Z'],
    ['12h', '2026-03-11T00:00:00.000Z'],
    ['90m', '2026-03-10T13:30:00.000Z'],
    ['2w', '2026-03-24T12:00:00.000Z'],
  ])('%s → %s', (text, iso) => expect(parseExpiry(text, now).toISOString()).toBe(iso));

  it.each(['tomorrow', '2026-02-30', '2026-12-31T18:00:00', '31/12/2026', '', '5y'])('refuses %j', (text) => {
    expect(() => parseExpiry(text, now)).toThrow(MembersError);
  });

  it('refuses a duration beyond year 9999 instead of returning an invalid date', () => {
    expect(() => parseExpiry('999999999999999d', now)).toThrow(/too far away/);
  });

  it('refuses the past', () => {
    expect(() => parseExpiry('2026-03-01', now)).toThrow(/in the past/);
  });
});
