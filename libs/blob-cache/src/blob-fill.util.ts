import type { UpstreamBlob } from '@gatehouse/oci';

/** Resolves like `pending` unless `signal` aborts first (a late body is then destroyed). */
export function untilAborted<T extends UpstreamBlob | string>(
  pending: Promise<T>,
  signal: AbortSignal,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) {
          if (typeof value !== 'string') value.body.destroy();
        } else resolve(value);
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
