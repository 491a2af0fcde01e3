import type { UpstreamConfig } from '@gatehouse/config';
import { DigestMismatchError } from '@gatehouse/oci';
import { AppLogger, Clock, MetricsService, scrubSecrets } from '@gatehouse/observability';
import { CREDENTIAL_BACKOFF_MAX_MS, CREDENTIAL_BACKOFF_MS, CredentialBackoff } from './credential-backoff';
import { explainHint, refusedKeyMessage, upstreamMember } from './explain-hint';
import { errorCode } from './retry.policy';
import { Exchange, UpstreamDeadlineError } from './upstream-exchange';
import type { UpstreamKind } from './upstream-kind';
import { classifyUpstreamAnswer, UpstreamAnswer } from './upstream-failure.classifier';
import {
  UpstreamAuthError,
  UpstreamError,
  UpstreamIntegrityError,
  UpstreamProtocolError,
  UpstreamUnavailableError,
} from './upstream.error';

/**
 * The wording and the one report of every upstream failure: each is logged once at error level
 * with the cause and the fix (secrets redacted) and counted in
 * gatehouse_upstream_failures_total{reason}.
 */
export class UpstreamFailureReporter {
  private readonly failures;
  /** Shared with the transport: refused credentials hold back further attempts. */
  readonly backoff: CredentialBackoff;

  constructor(
    private readonly config: UpstreamConfig,
    private readonly log: AppLogger,
    metrics: MetricsService,
    clock: Clock = new Clock(),
    /** The upstream's kind now (configured or detected): it decides the wording of refusals. */
    private readonly kind: () => UpstreamKind = () => config.kind ?? 'forgejo',
  ) {
    this.backoff = new CredentialBackoff(clock);
    this.failures = metrics.counter(
      'gatehouse_upstream_failures_total',
      'Upstream failures by classified reason (token_invalid, token_missing_scope, unreachable, ...)',
      ['reason'],
    );
  }

  /** Logs the operator line once at error level, counts the reason, and returns the error to throw. */
  fail<E extends UpstreamError>(err: E): E {
    this.inGatehouseTerms(err);
    this.explainWithBackoff(err);
    this.failures.inc({ reason: err.reason });
    const fields: Record<string, unknown> = { reason: err.reason };
    if (err.upstreamStatus !== undefined) fields.upstreamStatus = err.upstreamStatus;
    if (err.request) fields.upstreamRequest = this.redact(err.request);
    if (err.cause !== undefined) fields.cause = this.redact(describeCause(err.cause));
    this.log.error(fields, this.redact(err.message));
    return err;
  }

  /**
   * Through another Gatehouse (UPSTREAM_KIND=gatehouse) the service credentials are a member's
   * username and access key there: a refusal names that key and `gatehouse explain`, never
   * Forgejo's token scopes.
   */
  private inGatehouseTerms(err: UpstreamError): void {
    if (this.kind() !== 'gatehouse' || !(err instanceof UpstreamAuthError)) return;
    if (err.message.startsWith('The upstream Gatehouse')) return;
    const who = upstreamMember(this.config.username);
    const on = err.request ? ` on ${err.request}` : '';
    const status = err.upstreamStatus !== undefined ? ` (${err.upstreamStatus})` : '';
    err.message =
      err.reason === 'token_invalid'
        ? refusedKeyMessage(who, err.request, err.upstreamStatus)
        : `The upstream Gatehouse does not let this gateway's member ${who} read this${on}${status}. ` +
          `Fix: ask the upstream operator to grant it (\`${explainHint(who, err.request)}\` there shows why it is refused).`;
  }

  /** Says that the gateway backs off after refused credentials, and when a 429 follows them. */
  private explainWithBackoff(err: UpstreamError): void {
    if (!this.backoff.recentlyRefused()) return;
    if (err instanceof UpstreamAuthError && err.reason === 'token_invalid') {
      if (this.backoff.remember(err))
        this.log.warn(
          {
            reason: 'credentials_backoff',
            backoffSeconds: CREDENTIAL_BACKOFF_MS / 1000,
            maxBackoffSeconds: CREDENTIAL_BACKOFF_MAX_MS / 1000,
          },
          `Backing off after the upstream refused this gateway's credentials: the next attempt upstream in ` +
            `${CREDENTIAL_BACKOFF_MS / 1000} s, each refusal after it doubling the wait up to ` +
            `${CREDENTIAL_BACKOFF_MAX_MS / 1000} s, until they are accepted; requests meanwhile fail at once.`,
        );
    } else if (err.upstreamStatus === 429) {
      err.message =
        `The upstream answered 429 on ${err.request ?? 'a request'} after refusing this gateway's credentials (401): ` +
        'it is locking out failed logins, not rate limiting traffic. Fix: set FORGEJO_API_USERNAME and ' +
        'FORGEJO_API_TOKEN to credentials the upstream accepts and restart; the lock-out then ends on its own.';
    }
  }

  /** scrubSecrets knows token shapes; this also removes the configured secret whatever its shape. */
  redact(text: string): string {
    let out = scrubSecrets(text);
    const token = this.config.token;
    if (token && token.length >= 4) {
      out = out.split(token).join('[REDACTED]');
      out = out.split(Buffer.from(`${this.config.username}:${token}`).toString('base64')).join('[REDACTED]');
    }
    return out;
  }

  mismatch(
    name: string,
    kind: 'manifest' | 'blob',
    expected: string,
    actual: string,
    request: string,
  ): UpstreamError {
    return new UpstreamIntegrityError(
      'digest_mismatch',
      `The upstream served ${name} ${kind} ${expected} as ${actual}: the bytes were refused and not cached. Fix: check the upstream's storage for corruption, or a proxy that rewrites answers.`,
      { request, upstreamStatus: 200 },
    );
  }

  bodyFailure(
    err: unknown,
    what: string,
    seen: number,
    expected: number | undefined,
    request: string,
  ): UpstreamError {
    if (err instanceof UpstreamDeadlineError) return this.deadlineFailure(request, err, seen);
    if (errorCode(err) === 'UND_ERR_BODY_TIMEOUT') {
      return new UpstreamUnavailableError(
        'timeout',
        `The upstream body of ${what} stalled: no data for ${this.config.bodyTimeoutMs} ms after ${seen} bytes. Fix: check the upstream's load and the network, or raise UPSTREAM_BODY_TIMEOUT_MS.`,
        { request, cause: err },
      );
    }
    const code = errorCode(err) ?? (err instanceof Error ? err.message : String(err));
    return new UpstreamIntegrityError(
      'truncated',
      `The upstream body of ${what} ended after ${seen}${expected !== undefined ? ` of ${expected}` : ''} bytes (${code}): the connection to the upstream was cut. Nothing was cached. Fix: check the network between the gateway and FORGEJO_BASE_URL and the upstream's logs.`,
      { request, cause: err },
    );
  }

  /** A request that passed its overall deadline (UPSTREAM_MANIFEST_DEADLINE_MS): an upstream timeout. */
  deadlineFailure(request: string, err: UpstreamDeadlineError, seen?: number): UpstreamError {
    const after = seen !== undefined ? ` (${seen} bytes received)` : '';
    return new UpstreamUnavailableError(
      'timeout',
      `The upstream did not finish ${request} within ${err.ms} ms${after}: it answers too slowly. Fix: check the upstream's load and the network, or raise UPSTREAM_MANIFEST_DEADLINE_MS.`,
      { request, cause: err },
    );
  }

  /** The error a blob body stream fails with: short, mismatched or cut, reported once. */
  blobStreamError(
    err: unknown,
    seen: number,
    expectedSize: number | undefined,
    ctx: { name: string; digest: string; request: string; signal?: AbortSignal },
  ): Error {
    if (err instanceof UpstreamError) return err;
    if (ctx.signal?.aborted) return err instanceof Error ? err : new Error(String(err));
    if (err instanceof DigestMismatchError) {
      const short =
        err.expectedSize !== undefined && err.actualSize !== undefined && err.actualSize < err.expectedSize;
      if (short)
        return this.fail(
          this.bodyFailure(
            new Error('the body ended early'),
            `${ctx.name} blob ${ctx.digest}`,
            seen,
            expectedSize,
            ctx.request,
          ),
        );
      return this.fail(
        this.mismatch(
          ctx.name,
          'blob',
          ctx.digest,
          err.actualSize !== undefined && err.expectedSize !== err.actualSize
            ? `${err.actualSize}+ bytes instead of ${err.expectedSize}`
            : err.actual,
          ctx.request,
        ),
      );
    }
    return this.fail(
      this.bodyFailure(err, `${ctx.name} blob ${ctx.digest}`, seen, expectedSize, ctx.request),
    );
  }
}

/** The classifier's view of an exchange (the body snippet is added by the caller). */
export function answerBase(
  ex: Exchange,
  request: string,
  repository: string | undefined,
): Omit<UpstreamAnswer, 'bodySnippet'> {
  return {
    status: ex.status,
    headers: ex.headers,
    request,
    target: ex.target,
    sentAuth: ex.sentAuth,
    repository,
  };
}

// The classifier returns "not found" for 404s; where only an error makes sense (token endpoint, ping) force one.
export function classifyAnswerAsError(a: UpstreamAnswer): UpstreamError {
  const r = classifyUpstreamAnswer(a);
  if (r instanceof UpstreamError) return r;
  return new UpstreamProtocolError(
    `The upstream answered ${a.status} to ${a.request}. Fix: check that FORGEJO_BASE_URL is the registry root and that the realm it announces exists.`,
    { request: a.request, upstreamStatus: a.status },
  );
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const code = errorCode(cause);
    return `${cause.name}${code ? ` ${code}` : ''}: ${cause.message}`;
  }
  return String(cause);
}
