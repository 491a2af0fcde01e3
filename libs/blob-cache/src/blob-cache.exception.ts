import { OciError, OciErrorCode } from '@gatehouse/oci';

/**
 * Why a cache operation failed. The OCI code decides what a client sees (through the one OCI
 * error filter); the failure names the true cause for logs, metrics and the audit row.
 */
export type BlobCacheFailure =
  | 'DIGEST_NOT_CACHEABLE'
  | 'RANGE_NOT_SATISFIABLE'
  | 'SIZE_MISMATCH'
  | 'DIGEST_MISMATCH'
  | 'UPSTREAM_TRUNCATED'
  | 'UPSTREAM_FAILED'
  | 'FILL_TIMEOUT'
  | 'FILL_ABANDONED'
  | 'CACHE_READ_FAILED';

const OCI_CODE_BY_FAILURE: Record<BlobCacheFailure, OciErrorCode> = {
  DIGEST_NOT_CACHEABLE: 'DIGEST_INVALID',
  RANGE_NOT_SATISFIABLE: 'RANGE_INVALID',
  SIZE_MISMATCH: 'UPSTREAM_ERROR',
  DIGEST_MISMATCH: 'UPSTREAM_ERROR',
  UPSTREAM_TRUNCATED: 'UPSTREAM_ERROR',
  UPSTREAM_FAILED: 'UPSTREAM_ERROR',
  FILL_TIMEOUT: 'UPSTREAM_ERROR',
  FILL_ABANDONED: 'UPSTREAM_ERROR',
  CACHE_READ_FAILED: 'INTERNAL_ERROR',
};

export class BlobCacheException extends OciError {
  constructor(
    readonly failure: BlobCacheFailure,
    detail: string,
    cause?: unknown,
  ) {
    // The audit gets the failure as a code; the prose detail is for the log line.
    super(OCI_CODE_BY_FAILURE[failure], { reason: failure.toLowerCase(), logDetail: detail, cause });
    this.name = 'BlobCacheException';
  }
}
