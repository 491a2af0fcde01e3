import {
  accessKeyDisplayPrefix,
  generateAccessKey,
  isWellFormedAccessKey,
  normalizeUsername,
  usernameProblem,
} from './access-key-format.util';

describe('access key format', () => {
  it('generates ghk_ + 43 base64url characters (32 random bytes), all different', () => {
    const keys = Array.from({ length: 200 }, generateAccessKey);
    for (const k of keys) {
      expect(k).toMatch(/^ghk_[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(k.slice(4), 'base64url')).toHaveLength(32);
      expect(isWellFormedAccessKey(k)).toBe(true);
    }
    expect(new Set(keys).size).toBe(keys.length);
  });

  it.each([
    ['ghk_' + 'A'.repeat(43), true],
    ['ghk_' + 'A'.repeat(42), false],
    ['ghk_' + 'A'.repeat(44), false],
    ['ghx_' + 'A'.repeat(43), false],
    ['ghk_' + 'A'.repeat(42) + '=', false],
    ['', false],
  ])('%j well-formed: %s', (key, ok) => expect(isWellFormedAccessKey(key)).toBe(ok));

  it('shows 8 characters after the prefix in listings', () => {
    expect(accessKeyDisplayPrefix('ghk_AbCdEfGh' + 'x'.repeat(35))).toBe('ghk_AbCdEfGh');
  });
});

describe('usernames', () => {
  it.each([
    ['alice', null],
    ['Alice', null],
    ['acme-ci.bot_1', null],
    ['a', null],
    ['', /empty/],
    ['-alice', /not a valid username/],
    ['alice-', /not a valid username/],
    ['ali ce', /not a valid username/],
    ['ali:ce', /not a valid username/],
    ['a'.repeat(65), /at most 64/],
    ['émile', /not a valid username/],
  ])('%j', (username, problem) => {
    const p = usernameProblem(username);
    if (problem === null) expect(p).toBeNull();
    else expect(p).toMatch(problem);
  });

  it('normalises to lowercase without surrounding space', () => {
    expect(normalizeUsername('  Alice ')).toBe('alice');
  });
});
