import { BlobCacheException } from './blob-cache.exception';

export function assertRange(start: number, endInclusive: number, size: number): void {
  const wholeEmptyBlob = size === 0 && start === 0 && endInclusive === -1;
  const valid =
    Number.isSafeInteger(start) &&
    Number.isSafeInteger(endInclusive) &&
    start >= 0 &&
    start <= endInclusive &&
    endInclusive < size;
  if (!valid && !wholeEmptyBlob) {
    throw new BlobCacheException('RANGE_NOT_SATISFIABLE', `bytes ${start}-${endInclusive} of ${size}`);
  }
}

export function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;
}

/** Decrements a reference count, removing the key at zero. */
export function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 0) - 1;
  if (n > 0) map.set(key, n);
  else map.delete(key);
}
