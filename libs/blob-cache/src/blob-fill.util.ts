/**
 * Resolves like `pending` unless `signal` aborts first; a value that arrives after the abort is
 * handed to `discard` (an upstream body to destroy).
 */
export function untilAborted<T>(
  pending: Promise<T>,
  signal: AbortSignal,
  discard: (late: T) => void = () => undefined,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) discard(value);
        else resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
