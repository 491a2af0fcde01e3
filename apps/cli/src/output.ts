import { Command, Option } from 'commander';
import Table from 'cli-table3';

export type OutputFormat = 'table' | 'json';

export interface Column<T> {
  header: string;
  value: (row: T) => unknown;
}

/** Where a command writes. Injected so commands can be run and checked in-process. */
export interface CliIo {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown };
}

/** `--format table|json` for commands that print records. */
export function formatOption(): Option {
  return new Option('--format <format>', 'output format').choices(['table', 'json']).default('table');
}

export function cell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(cell).join(', ');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Plain-bordered table; the same rows as JSON with `--format json`. */
export function renderTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const table = new Table({ head: columns.map((c) => c.header), style: { head: [], border: [] } });
  for (const row of rows) table.push(columns.map((c) => cell(c.value(row))));
  return table.toString() + '\n';
}

export function renderJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

export class Output {
  constructor(readonly io: CliIo) {}

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
    this.io.stdout.write(renderTable(rows, columns));
  }
}

export function commandFormat(cmd: Command): OutputFormat {
  return (cmd.opts().format as OutputFormat | undefined) ?? 'table';
}
