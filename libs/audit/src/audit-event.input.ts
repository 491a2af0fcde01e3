/** Known actions; others may be added by later features. */
export type AuditAction =
  | 'token.issue'
  | 'token.refuse'
  | 'manifest.get'
  | 'manifest.head'
  | 'blob.get'
  | 'blob.head'
  | 'tags.list'
  | 'catalog.list'
  | 'upstream.failure'
  | (string & {});

export type AuditOutcome = 'allowed' | 'denied' | 'error';

export type AuditCache = 'hit' | 'miss' | 'joined' | 'bypass';

/**
 * What a caller records. Only action and outcome are required: id and occurredAt are filled by the
 * writer, and the request facts (request id, client, member) come from the RequestContext when not
 * given.
 */
export interface AuditEventInput {
  action: AuditAction;
  outcome: AuditOutcome;
  id?: string;
  occurredAt?: Date;
  requestId?: string | null;
  clientRequestId?: string | null;
  clientMemberTag?: string | null;
  memberId?: string | null;
  username?: string | null;
  clientIp?: string | null;
  userAgent?: string | null;
  repository?: string | null;
  reference?: string | null;
  digest?: string | null;
  /** Reason code, e.g. bad_credentials, tag_not_entitled, upstream_unauthorized. */
  reason?: string | null;
  httpStatus?: number | null;
  bytes?: number | null;
  cache?: AuditCache | null;
  durationMs?: number | null;
  upstreamStatus?: number | null;
  details?: Record<string, unknown> | null;
}
