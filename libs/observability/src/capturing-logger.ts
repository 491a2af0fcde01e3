import { Writable } from 'node:stream';
import { AppLogger, createPinoLogger } from './app-logger.service';

export interface CapturingLogger {
  logger: AppLogger;
  /** Everything written, as the JSON lines an operator would read. */
  raw(): string;
  /** The lines parsed. */
  lines(): Array<Record<string, unknown>>;
}

/**
 * An AppLogger whose output is kept in memory (and echoed to stdout when `echo` is set): tests
 * assert on log lines, and grep them for secrets that must never appear.
 */
export function createCapturingLogger(level = 'debug', echo = false): CapturingLogger {
  let captured = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      captured += String(chunk);
      if (echo) process.stdout.write(chunk);
      cb();
    },
  });
  return {
    logger: new AppLogger(createPinoLogger(level, sink as unknown as never)),
    raw: () => captured,
    lines: () =>
      captured
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
