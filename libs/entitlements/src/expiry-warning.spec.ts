import { expiryWarning, warningHeader } from './expiry-warning';

describe('expiry warnings', () => {
  const now = new Date('2026-12-07T00:00:00Z');
  const inDays = (d: number) => new Date(now.getTime() + d * 86_400_000);

  it('warns within the window only, never for no expiry or a past one', () => {
    expect(expiryWarning('your access to acme/app', inDays(5), now, 14)).toBe(
      '299 - "your access to acme/app expires on 2026-12-12T00:00:00Z"',
    );
    expect(expiryWarning('x', inDays(15), now, 14)).toBeNull();
    expect(expiryWarning('x', null, now, 14)).toBeNull();
    expect(expiryWarning('x', inDays(-1), now, 14)).toBeNull();
    expect(expiryWarning('x', inDays(5), now, 0)).toBeNull();
  });

  it('sends one header line per warning, and none when there is none', () => {
    expect(warningHeader(null, undefined)).toEqual({});
    expect(warningHeader('299 - "a"', null)).toEqual({ Warning: '299 - "a"' });
    expect(warningHeader('299 - "a"', null, '299 - "b"')).toEqual({ Warning: ['299 - "a"', '299 - "b"'] });
    expect(warningHeader(['299 - "a"', '299 - "b"'], '299 - "c"')).toEqual({
      Warning: ['299 - "a"', '299 - "b"', '299 - "c"'],
    });
  });
});
