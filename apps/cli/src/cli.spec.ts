import { ConfigValidationError } from '@gatehouse/config';
import { runCli } from './cli';
import { describeError } from './cli-error';
import fc from 'fast-check';
import { cliTable3, drawTable, fitWidths, Output, renderTable, terminalWidth, wrapText } from './output';
import { captureIo } from './test/capture-io';

describe('gatehouse CLI', () => {
  it('lists its commands in the help', async () => {
    const io = captureIo();
    expect(await runCli(['--help'], io, {})).toBe(0);
    expect(io.out()).toMatch(/Usage: gatehouse/);
    expect(io.out()).toMatch(/migrate .*apply pending database migrations/);
  });

  it('exits 2 on an unknown command or option, naming it', async () => {
    const io = captureIo();
    expect(await runCli(['frobnicate'], io, {})).toBe(2);
    expect(io.err()).toMatch(/unknown command 'frobnicate'/);
    const io2 = captureIo();
    expect(await runCli(['migrate', '--bogus'], io2, {})).toBe(2);
    expect(io2.err()).toMatch(/unknown option '--bogus'/);
  });

  it('exits 2 with the configuration problems, without a stack trace', async () => {
    const io = captureIo();
    expect(await runCli(['migrate'], io, { PORT: 'not-a-port' })).toBe(2);
    expect(io.err()).toMatch(/Invalid configuration/);
    expect(io.err()).toMatch(/PORT/);
    expect(io.err()).not.toMatch(/\n\s+at /);
  });
});

describe('describeError', () => {
  it('turns a refused connection into one line with the fix', () => {
    const e = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {
      code: 'ECONNREFUSED',
      address: '127.0.0.1',
      port: 1,
    });
    expect(describeError(e)).toBe(
      'Cannot connect to the database at 127.0.0.1:1 (connection refused). Fix: check DATABASE_URL and that PostgreSQL is running.',
    );
  });

  it('keeps only the first line of other errors', () => {
    expect(describeError(new Error('first\nsecond'))).toBe('first');
    expect(describeError(new ConfigValidationError(['PORT must be a number']))).toMatch(
      /PORT must be a number/,
    );
  });
});

describe('output', () => {
  const rows = [
    { name: 'alice', keys: ['a', 'b'], created: new Date('2030-01-02T03:04:05Z'), note: null },
    { name: 'bob', keys: [], created: new Date('2030-01-03T00:00:00Z'), note: 'x' },
  ];
  const columns = [
    { header: 'NAME', value: (r: (typeof rows)[number]) => r.name },
    { header: 'KEYS', value: (r: (typeof rows)[number]) => r.keys },
    { header: 'CREATED', value: (r: (typeof rows)[number]) => r.created },
    { header: 'NOTE', value: (r: (typeof rows)[number]) => r.note },
  ];

  it('renders a table with one row per record', () => {
    const text = renderTable(rows, columns);
    expect(text).toMatch(/NAME\s*│\s*KEYS\s*│\s*CREATED/);
    expect(text).toMatch(/alice\s*│\s*a, b\s*│\s*2030-01-02T03:04:05.000Z/);
    expect(text.trim().split('\n')).toHaveLength(7);
  });

  it('prints the records themselves as JSON', () => {
    const io = captureIo();
    new Output(io).records(rows, columns, 'json');
    expect(JSON.parse(io.out())).toEqual(JSON.parse(JSON.stringify(rows)));
  });

  it('says so when there is nothing to show', () => {
    const io = captureIo();
    new Output(io).records([], columns, 'table', 'No members.');
    expect(io.out()).toBe('No members.\n');
  });

  it('fits a table in the width by wrapping the widest columns, and never cuts text off', () => {
    const long = [{ name: 'alice', note: 'word '.repeat(30).trim(), id: 'x'.repeat(36) }];
    const cols = [
      { header: 'name', value: (r: (typeof long)[number]) => r.name },
      { header: 'note', value: (r: (typeof long)[number]) => r.note, wrapFirst: true },
      { header: 'id', value: (r: (typeof long)[number]) => r.id, keep: true },
    ];
    const text = renderTable(long, cols, { width: 60 });
    for (const line of text.trimEnd().split('\n')) expect(line.length).toBeLessThanOrEqual(60);
    expect(text).toContain('x'.repeat(36));
    expect(text.match(/word/g)).toHaveLength(30);
    // Unlimited: one line per row.
    expect(renderTable(long, cols).trimEnd().split('\n')).toHaveLength(5);
  });

  it('shrinks the wrap-first columns before the others, and keeps what must stay whole', () => {
    // The wrap-first column gives way down to 20 characters, then every column to 20, then it to 8.
    const keepLast = [false, false, true];
    const firstFirst = [true, false, false];
    expect(fitWidths([40, 10, 20], [4, 4, 4], keepLast, 3 * 3 + 1 + 55, firstFirst)).toEqual([25, 10, 20]);
    expect(fitWidths([40, 30, 20], [4, 4, 4], keepLast, 3 * 3 + 1 + 60, firstFirst)).toEqual([20, 20, 20]);
    expect(fitWidths([10, 30, 20], [4, 4, 4], keepLast, 3 * 3 + 1 + 40, firstFirst)).toEqual([8, 12, 20]);
    expect(wrapText('a bb ccccccc', 4)).toBe('a bb\ncccc\nccc');
  });

  it('takes the width from COLUMNS, then the terminal, else 100', () => {
    const io = captureIo();
    expect(terminalWidth(io, { COLUMNS: '120' })).toBe(120);
    expect(terminalWidth(io, {})).toBe(100);
    expect(terminalWidth({ ...io, stdout: { write: () => true, isTTY: true, columns: 90 } }, {})).toBe(90);
  });

  it('draws tables exactly as cli-table3 does, fitted or wide, and leaves wide characters to it', () => {
    const text = fc.stringMatching(/^[ -~\u2026]{0,12}$/);
    const table = fc.integer({ min: 1, max: 4 }).chain((n) =>
      fc.record({
        head: fc.array(text, { minLength: n, maxLength: n }),
        body: fc.array(fc.array(text, { minLength: n, maxLength: n }), { maxLength: 4 }),
        widths: fc.option(fc.array(fc.integer({ min: 1, max: 8 }), { minLength: n, maxLength: n })),
      }),
    );
    fc.assert(
      fc.property(table, ({ head, body, widths }) => {
        // As renderTable hands them over: every line already fits its column.
        const fit = (r: string[]) => (widths ? r.map((v, i) => wrapText(v, widths[i])) : r);
        expect(drawTable(fit(head), body.map(fit), widths)).toBe(cliTable3(fit(head), body.map(fit), widths));
      }),
      { numRuns: 300 },
    );
    // A double-width character takes two cells; cli-table3 measures it.
    expect(drawTable(['名前'], [['x']], null)).toBe(cliTable3(['名前'], [['x']], null));
    expect(drawTable(['名前'], [['x']], null).split('\n')[0]).toBe('┌──────┐');
  });

  it('escapes control characters in table cells', () => {
    const text = renderTable(
      [{ u: 'a\u001b]0;x\u0007b\nc' }],
      [{ header: 'u', value: (r: { u: string }) => r.u }],
    );
    expect(text).toContain('a\\x1b]0;x\\x07b\\nc');
    // eslint-disable-next-line no-control-regex
    expect(/[\u0000-\u0009\u000b-\u001f]/.test(text)).toBe(false);
  });
});
