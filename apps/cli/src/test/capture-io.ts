import { CliIo } from '../output';

/** Captures what a CLI invocation writes, for in-process command tests. */
export function captureIo(): CliIo & { out: () => string; err: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    stdout: { write: (s: string) => out.push(s) },
    stderr: { write: (s: string) => err.push(s) },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}
