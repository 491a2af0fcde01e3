import { connectionLimit, openFileLimit } from './connection-limits';

describe('connection limits', () => {
  const limits = (soft: string) =>
    [
      'Limit                     Soft Limit           Hard Limit           Units     ',
      'Max processes             63459                63459                processes ',
      `Max open files            ${soft.padEnd(20)} 1048576              files     `,
    ].join('\n');

  it('reads the soft open-file limit', () => {
    expect(openFileLimit(limits('1024'))).toBe(1024);
    expect(openFileLimit(limits('unlimited'))).toBeNull();
    expect(openFileLimit('nothing here')).toBeNull();
    // This process (Linux): a number.
    expect(openFileLimit()).toBeGreaterThan(0);
  });

  it('derives half of what the reserve leaves, unless configured', () => {
    expect(connectionLimit(null, 1024)).toBe(448);
    expect(connectionLimit(null, 20_000)).toBe(9936);
    expect(connectionLimit(null, 200)).toBe(64);
    expect(connectionLimit(500, 1024)).toBe(500);
    expect(connectionLimit(null, null)).toBeNull();
  });
});
