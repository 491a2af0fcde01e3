// Text that came from outside (usernames, user agents, references stored verbatim in the audit
// log) is printed to support's terminal and opened in support's spreadsheet. These are the two
// ways it is made harmless there; JSON output stays exact.

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * C0 and C1 controls, DEL, and the Unicode bidirectional overrides/isolates and line separators
 * (they reorder or break what the terminal shows).
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** Shows control characters visibly (`\x1b`, `\n`, `\u202e`), so no byte of `text` drives the terminal. */
export function visible(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const named = NAMED[c];
    if (named) return named;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  });
}

// The spreadsheet-safe CSV cell lives with the audit CSV writer.
export { csvSafe } from '@gatehouse/audit/query';
