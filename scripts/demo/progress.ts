import { existsSync, readFileSync } from 'node:fs';

/** Thrown by a step with what the person running the demo should read (and where to look). */
export class DemoStepError extends Error {
  constructor(
    message: string,
    readonly logFile?: string,
  ) {
    super(message);
    this.name = 'DemoStepError';
  }
}

export function tailOf(file: string, lines = 25): string {
  if (!existsSync(file)) return '(no log yet)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/**
 * One progress line per step, numbered across scripts/demo.sh and this driver:
 * `[5/8] starting the gateway ... ok (1.2 s)`. A failing step prints the reason and the log to
 * read, then exits the process.
 */
export class Progress {
  private current: number;

  constructor(
    first: number,
    private readonly total: number,
  ) {
    this.current = first;
  }

  async step<T>(label: string, run: () => Promise<T>, detail?: (result: T) => string): Promise<T> {
    const n = this.current++;
    process.stdout.write(`[${n}/${this.total}] ${label} ... `);
    const started = Date.now();
    try {
      const result = await run();
      const extra = detail ? `, ${detail(result)}` : '';
      process.stdout.write(`ok (${seconds(Date.now() - started)}${extra})\n`);
      return result;
    } catch (err) {
      process.stdout.write(`FAILED (${seconds(Date.now() - started)})\n`);
      const e = err as Error;
      process.stderr.write(`\n${label} failed: ${e.message}\n`);
      if (err instanceof DemoStepError && err.logFile) {
        process.stderr.write(`\nLog: ${err.logFile} (last lines):\n${tailOf(err.logFile)}\n`);
      } else if (!(err instanceof DemoStepError) && e.stack) {
        process.stderr.write(`${e.stack}\n`);
      }
      process.stderr.write(
        '\nAnything the demo already started is still running, for inspection. Stop it with: bash scripts/demo-stop.sh\n',
      );
      process.exit(1);
    }
  }
}
