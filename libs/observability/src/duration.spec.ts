import { parseDuration } from './duration';

describe('parseDuration', () => {
  it.each<[string, number]>([
    ['45s', 45_000],
    ['30m', 1_800_000],
    ['6h', 21_600_000],
    ['1d', 86_400_000],
    ['2w', 1_209_600_000],
    ['2 W', 1_209_600_000],
    [' 90m ', 5_400_000],
  ])('%j → %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', '5', '5y', '1mo', '1.5h', '-1d', '1d2h', 'd', '1e3d'])('refuses %j', (text) =>
    expect(parseDuration(text)).toBeNull(),
  );
});
