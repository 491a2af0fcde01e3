import { csvSafe, visible } from './terminal-text';

describe('visible', () => {
  it('shows control characters escaped, so none reaches the terminal', () => {
    expect(visible('esc\u001b[31mred\u001b[0m')).toBe('esc\\x1b[31mred\\x1b[0m');
    expect(visible('osc\u001b]0;title\u0007')).toBe('osc\\x1b]0;title\\x07');
    expect(visible('a\nb\r\nc\td')).toBe('a\\nb\\r\\nc\\td');
    expect(visible('c1 \u009b31m del \u007f nul \u0000')).toBe('c1 \\x9b31m del \\x7f nul \\x00');
    // Bidirectional overrides reorder what is shown.
    expect(visible('user\u202eevil')).toBe('user\\u202eevil');
  });

  it('leaves ordinary text alone, non-ASCII included', () => {
    for (const text of ['docker/27.0 go/1.22', 'Zoë – 東京', '=cmd|x', 'back\\slash'])
      expect(visible(text)).toBe(text);
  });
});

describe('csvSafe', () => {
  it.each(["=cmd|' /C calc'!A0", '@SUM(1+1)', '+1', '-2+3', '\tindent', '\rcr'])(
    'neutralises %j with a leading single quote',
    (text) => {
      expect(csvSafe(text)).toBe(`'${text}`);
    },
  );

  it('keeps every other cell as stored', () => {
    for (const text of ['', 'alice', '2026-03-01T00:00:00.000Z', '404', 'a=b', '{"a":1}'])
      expect(csvSafe(text)).toBe(text);
  });
});
