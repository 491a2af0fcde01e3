export type RangeHeaderResult =
  { kind: 'range'; start: number; end: number } | { kind: 'unsatisfiable' } | { kind: 'ignore' };

const SINGLE_RANGE = /^bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*$/i;

/**
 * Interprets a `Range` header against a blob of `size` bytes (RFC 9110 §14). `end` is inclusive.
 * - `ignore`: no header, another unit, several ranges or a malformed value; serve 200 with the
 *   whole blob, which RFC 9110 allows and every registry client handles.
 * - `unsatisfiable`: a well-formed range that selects no byte; answer 416 with `Content-Range: bytes *\/size`.
 */
export function parseRangeHeader(header: string | undefined, size: number): RangeHeaderResult {
  if (header === undefined) return { kind: 'ignore' };
  const match = SINGLE_RANGE.exec(header.trim());
  if (!match) return { kind: 'ignore' };
  const [, first, last] = match;
  if (first === '' && last === '') return { kind: 'ignore' };
  const start = first === '' ? undefined : toSafeInteger(first);
  const end = last === '' ? undefined : toSafeInteger(last);
  if (start === null || end === null) return { kind: 'ignore' };

  if (start === undefined) {
    // Suffix range: the last `suffix` bytes.
    const suffix = end ?? 0;
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - suffix), end: size - 1 };
  }
  if (end !== undefined && end < start) return { kind: 'ignore' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, end: end === undefined ? size - 1 : Math.min(end, size - 1) };
}

function toSafeInteger(digits: string): number | null {
  const value = Number(digits);
  return Number.isSafeInteger(value) ? value : null;
}
