import { Command, Option } from 'commander';
import type TableType from 'cli-table3';
import { visible } from './terminal-text';

export type OutputFormat = 'table' | 'json';

export interface Column<T> {
  header: string;
  value: (row: T) => unknown;
  /** Never wrapped when the table is fitted to the terminal (ids support copies whole). */
  keep?: boolean;
  /** Wrapped before the other columns (free text, addresses), so short codes stay on one line. */
  wrapFirst?: boolean;
  /** Left out when the table would not fit unwrapped (`--wide` shows it). */
  optional?: boolean;
}

/** Where a command writes. Injected so commands can be run and checked in-process. */
export interface CliIo {
  stdout: { write(chunk: string): unknown; isTTY?: boolean; columns?: number };
  stderr: { write(chunk: string): unknown };
}

/** Width of a table when stdout is not a terminal and COLUMNS is unset. */
export const DEFAULT_TABLE_WIDTH = 100;

/** `--format table|json` for commands that print records. */
export function formatOption(): Option {
  return new Option('--format <format>', 'output format').choices(['table', 'json']).default('table');
}

/** A value as plain text (CSV cells, table cells before escaping). */
export function cell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(cell).join(', ');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * The width tables must fit: COLUMNS when set (as shells export it), the terminal's width when
 * stdout is one, otherwise DEFAULT_TABLE_WIDTH.
 */
export function terminalWidth(io: CliIo, env: NodeJS.ProcessEnv): number {
  const fromEnv = Number(env.COLUMNS);
  if (Number.isInteger(fromEnv) && fromEnv >= 20) return fromEnv;
  if (io.stdout.isTTY && io.stdout.columns && io.stdout.columns >= 20) return io.stdout.columns;
  return DEFAULT_TABLE_WIDTH;
}

/**
 * The order in which columns give way: wrap-first columns down to 20 characters, then every
 * column down to 20, then wrap-first columns down to 8, then every column down to its minimum.
 */
const SHRINK_ROUNDS: Array<{ onlyFirst: boolean; floor: number }> = [
  { onlyFirst: true, floor: 20 },
  { onlyFirst: false, floor: 20 },
  { onlyFirst: true, floor: 8 },
  { onlyFirst: false, floor: 0 },
];

/**
 * Cell widths (content only) that fit `width` with the borders, shrinking the widest column of
 * each round (SHRINK_ROUNDS) first; `keep` columns never shrink, and no column goes below its
 * minimum. When even that does not fit, the table is as narrow as it can be.
 */
export function fitWidths(
  natural: number[],
  minimum: number[],
  keep: boolean[],
  width: number,
  first: boolean[] = natural.map(() => false),
): number[] {
  const widths = [...natural];
  // Each column costs its content plus one space either side and one border; plus the last border.
  const budget = width - (3 * widths.length + 1);
  let total = widths.reduce((a, b) => a + b, 0);
  for (const round of SHRINK_ROUNDS) {
    while (total > budget) {
      let widest = -1;
      for (let i = 0; i < widths.length; i++) {
        if (keep[i] || (round.onlyFirst && !first[i])) continue;
        if (widths[i] <= Math.max(minimum[i], round.floor)) continue;
        if (widest < 0 || widths[i] > widths[widest]) widest = i;
      }
      if (widest < 0) break; // Nothing left to shrink in this round.
      widths[widest]--;
      total--;
    }
  }
  return widths;
}

export interface TableOptions {
  /** null: no limit (`--wide`). */
  width?: number | null;
}

/** Lines of at most `width` characters: broken at spaces where possible, long words split. */
export function wrapText(text: string, width: number): string {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    let current = '';
    for (const word of line.split(' ')) {
      let rest = word;
      const joined = current ? `${current} ${rest}` : rest;
      if (joined.length <= width) {
        current = joined;
        continue;
      }
      if (current) out.push(current);
      while (rest.length > width) {
        out.push(rest.slice(0, width));
        rest = rest.slice(width);
      }
      current = rest;
    }
    out.push(current);
  }
  return out.join('\n');
}

/**
 * Plain-bordered table; the same rows as JSON with `--format json`. Control characters in the
 * values are shown escaped (a stored user agent must not drive support's terminal). Fitted to
 * `width` by wrapping the widest columns (nothing is cut off); with no width nothing is wrapped.
 */
export function renderTable<T>(
  rows: readonly T[],
  allColumns: readonly Column<T>[],
  options: TableOptions = {},
): string {
  const width = options.width ?? null;
  let columns = allColumns;
  let head = columns.map((c) => c.header);
  let body = rows.map((row) => columns.map((c) => visible(cell(c.value(row)))));
  if (width !== null && columns.some((c) => c.optional) && naturalWidth(head, body) > width) {
    columns = columns.filter((c) => !c.optional);
    head = columns.map((c) => c.header);
    body = rows.map((row) => columns.map((c) => visible(cell(c.value(row)))));
  }
  if (width === null) return drawTable(head, body, null) + '\n';
  const natural = naturalWidths(head, body);
  const minimum = head.map((h, i) =>
    Math.min(natural[i], Math.max(4, Math.min(10, Math.max(...h.split(' ').map((w) => w.length))))),
  );
  const widths = fitWidths(
    natural,
    minimum,
    columns.map((c) => !!c.keep),
    width,
    columns.map((c) => !!c.wrapFirst),
  );
  const wrapped = body.map((r) => r.map((v, i) => wrapText(v, widths[i])));
  return (
    drawTable(
      head.map((h, i) => wrapText(h, widths[i])),
      wrapped,
      widths,
    ) + '\n'
  );
}

/**
 * Text whose terminal width is its length: printable ASCII, line breaks (from wrapping) and the
 * ellipsis of shortened ids. Anything else (wide or combining characters) is measured by
 * cli-table3 (string-width).
 */
const NARROW = /^[\x20-\x7e\n\u2026]*$/;

/**
 * The table as cli-table3 draws it (its default box characters, one space of padding, a line
 * between rows), drawn directly for narrow text: cli-table3 spends ~1 ms a row measuring
 * each cell (a new ANSI regex per call), which was a third of `gatehouse audit`'s 100-row
 * answer. Other text goes through cli-table3 itself; output.spec.ts checks both agree.
 * `widths`: content widths (lines already fit them); null: as wide as the widest line.
 */
export function drawTable(head: string[], body: string[][], widths: number[] | null): string {
  if (![head, ...body].every((r) => r.every((v) => NARROW.test(v)))) return cliTable3(head, body, widths);
  const w = widths ?? naturalWidths(head, body);
  const rule = (l: string, m: string, r: string) => l + w.map((n) => '─'.repeat(n + 2)).join(m) + r;
  const lines = (cells: string[]) => {
    const split = cells.map((c) => c.split('\n'));
    const height = Math.max(1, ...split.map((c) => c.length));
    return Array.from(
      { length: height },
      (_, y) => `│${split.map((c, i) => ` ${(c[y] ?? '').padEnd(w[i])} `).join('│')}│`,
    );
  };
  const out = [rule('┌', '┬', '┐'), ...lines(head)];
  for (const row of body) out.push(rule('├', '┼', '┤'), ...lines(row));
  out.push(rule('└', '┴', '┘'));
  return out.join('\n');
}

/** cli-table3 itself, for text the direct drawing cannot measure; loaded only then. */
export function cliTable3(head: string[], body: string[][], widths: number[] | null): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Table = require('cli-table3') as typeof TableType;
  const style = { head: [], border: [] };
  const table = new Table(
    widths === null ? { head, style } : { head, style, colWidths: widths.map((n) => n + 2) },
  );
  table.push(...body);
  return table.toString();
}

const longestLine = (s: string) => Math.max(0, ...s.split('\n').map((l) => l.length));

function naturalWidths(head: string[], body: string[][]): number[] {
  return head.map((h, i) => Math.max(h.length, ...body.map((r) => longestLine(r[i]))));
}

/** The line length of the table unwrapped: contents, one space either side, the borders. */
function naturalWidth(head: string[], body: string[][]): number {
  return naturalWidths(head, body).reduce((a, b) => a + b + 3, 1);
}

export function renderJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

export class Output {
  /** Set from `--wide` before a command runs. */
  wide = false;

  constructor(
    readonly io: CliIo,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** The table width for this invocation; null with `--wide`. */
  get width(): number | null {
    return this.wide ? null : terminalWidth(this.io, this.env);
  }

  line(text = ''): void {
    this.io.stdout.write(text + '\n');
  }

  error(text: string): void {
    this.io.stderr.write(text + '\n');
  }

  json(value: unknown): void {
    this.io.stdout.write(renderJson(value));
  }

  /** Records as a table or JSON. JSON carries the objects themselves, not the column text. */
  records<T>(
    rows: readonly T[],
    columns: readonly Column<T>[],
    format: OutputFormat,
    emptyText = 'Nothing found.',
  ): void {
    if (format === 'json') return this.json(rows);
    if (rows.length === 0) return this.line(emptyText);
    this.io.stdout.write(renderTable(rows, columns, { width: this.width }));
  }
}

export function commandFormat(cmd: Command): OutputFormat {
  return (cmd.opts().format as OutputFormat | undefined) ?? 'table';
}
