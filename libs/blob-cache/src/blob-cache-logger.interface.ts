/** The slice of a pino-style logger the cache needs; the gateway injects its application logger. */
export interface BlobCacheLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}
