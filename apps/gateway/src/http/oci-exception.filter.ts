import { ArgumentsHost, Catch, ExceptionFilter, HttpException } from '@nestjs/common';
import { isDatabaseUnavailableError } from '@gatehouse/database';
import { AppLogger, RequestContext } from '@gatehouse/observability';
import { isConvertibleToOciError, OciError, OciErrorCode } from '@gatehouse/oci';
import type { FastifyReply, FastifyRequest } from 'fastify';

const CLIENT_ABORT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED']);

export function isClientAbort(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  return (
    !!e &&
    (CLIENT_ABORT_CODES.has(e.code ?? '') || e.message === 'aborted' || e.message === 'Premature close')
  );
}

/**
 * The member-facing form of an error whose meaning is known: OciErrors, errors of other libs that
 * convert themselves, and an unreachable database, which is 503 UNAVAILABLE with Retry-After
 * (fail closed: nothing is decided without the member's current state). Null for anything else.
 */
export function knownOciError(exception: unknown): OciError | null {
  if (exception instanceof OciError) return exception;
  // The lib that raised it has already logged the operator's side (cause and fix).
  if (isConvertibleToOciError(exception)) return exception.toOciError();
  if (isDatabaseUnavailableError(exception)) {
    return new OciError('UNAVAILABLE', {
      headers: { 'Retry-After': String(DATABASE_RETRY_AFTER_SECONDS) },
      reason: 'database_unavailable',
      cause: exception,
    });
  }
  return null;
}

/**
 * An error's `detail` as the member receives it: what the error carries, plus the request id and
 * one line saying the vendor can look it up, so the row a customer pastes is found at once. The
 * same for every refusal: "not entitled" and "does not exist" still differ only in the id.
 */
export function supportDetail(detail: unknown, requestId: string): Record<string, unknown> {
  const own =
    detail === undefined || detail === null
      ? {}
      : typeof detail === 'object' && !Array.isArray(detail)
        ? (detail as Record<string, unknown>)
        : { info: detail };
  return {
    ...own,
    requestId,
    help: `quote this request id to your registry provider; they can look it up with: gatehouse audit --request-id ${requestId}`,
  };
}

/** The envelope of `error` with the request id in its detail. */
export function envelopeWithRequestId(
  error: OciError,
  requestId: string,
): ReturnType<OciError['toEnvelope']> {
  const envelope = error.toEnvelope();
  for (const entry of envelope.errors) entry.detail = supportDetail(entry.detail, requestId);
  return envelope;
}

/** Long enough for a database restart or fail-over, short enough that pulls resume promptly. */
const DATABASE_RETRY_AFTER_SECONDS = 5;

/** Nest's own HttpExceptions (unknown route, bad form) expressed in the registry's vocabulary. */
function codeForStatus(status: number): OciErrorCode {
  switch (status) {
    case 400:
      return 'MANIFEST_INVALID';
    case 401:
      return 'UNAUTHORIZED';
    case 403:
      return 'DENIED';
    case 404:
      return 'NAME_UNKNOWN';
    case 405:
      return 'UNSUPPORTED';
    case 413:
      return 'SIZE_INVALID';
    case 429:
      return 'TOOMANYREQUESTS';
    default:
      return status >= 500 ? 'INTERNAL_ERROR' : 'MANIFEST_INVALID';
  }
}

/**
 * The one place where errors become responses. OciErrors carry their code, status and headers;
 * registry and token routes always answer with the OCI envelope; anything unexpected is a 500
 * that names the request id and nothing else. Client aborts while streaming are not errors.
 */
@Catch()
export class OciExceptionFilter implements ExceptionFilter {
  constructor(private readonly logger: AppLogger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const reply = http.getResponse<FastifyReply>();
    const request = http.getRequest<FastifyRequest>();

    if (reply.sent || reply.raw.headersSent) {
      // Mid-stream: the status is gone; the only honest signal left is to cut the connection.
      if (!isClientAbort(exception)) {
        this.logger.error({ err: exception, url: request.url }, 'response failed after headers were sent');
      }
      reply.raw.destroy();
      return;
    }

    const error = this.toOciError(exception, request);
    const isRegistryPath = request.url.startsWith('/v2');
    const isOciPath = isRegistryPath || request.url.startsWith('/auth/');
    if (isRegistryPath) reply.header('Docker-Distribution-API-Version', 'registry/2.0');
    for (const [k, v] of Object.entries(error.headers)) reply.header(k, v);

    if (!isOciPath && exception instanceof HttpException) {
      reply.status(exception.getStatus()).send(exception.getResponse());
      return;
    }
    const requestId = RequestContext.current()?.requestId ?? String(request.id);
    reply
      .status(error.status)
      .header('Content-Type', 'application/json; charset=utf-8')
      .send(request.method === 'HEAD' ? undefined : envelopeWithRequestId(error, requestId));
  }

  private toOciError(exception: unknown, request: FastifyRequest): OciError {
    const known = knownOciError(exception);
    if (known) {
      // Readiness and the "request failed" line already tell the operator; the cause goes to debug.
      if (known.reason === 'database_unavailable')
        this.logger.debug({ err: exception }, 'database unavailable');
      return known;
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const body = exception.getResponse();
      const message =
        typeof body === 'object' && body && 'message' in body
          ? [body.message].flat().join('; ')
          : exception.message;
      return new OciError(codeForStatus(status), { status, message });
    }
    const requestId = RequestContext.current()?.requestId ?? String(request.id);
    if (isClientAbort(exception)) {
      this.logger.debug({ err: exception }, 'client went away');
    } else {
      this.logger.error({ err: exception, method: request.method, url: request.url }, 'unhandled error');
    }
    return new OciError('INTERNAL_ERROR', {
      message: `internal error; quote request id ${requestId} to support`,
    });
  }
}
