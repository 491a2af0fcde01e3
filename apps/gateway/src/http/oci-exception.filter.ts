import { ArgumentsHost, Catch, ExceptionFilter, HttpException } from '@nestjs/common';
import { databaseUnavailableOciError } from '@gatehouse/database';
import { AppLogger, RequestContext } from '@gatehouse/observability';
import { ociCodeForHttpStatus, OciError, OciErrorTranslator, toOciError } from '@gatehouse/oci';
import type { FastifyReply, FastifyRequest } from 'fastify';

const CLIENT_ABORT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED']);

export function isClientAbort(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  return (
    !!e &&
    (CLIENT_ABORT_CODES.has(e.code ?? '') || e.message === 'aborted' || e.message === 'Premature close')
  );
}

/** The translators of errors that cannot convert themselves, for every caller in the gateway. */
const GATEWAY_ERROR_TRANSLATORS: readonly OciErrorTranslator[] = [databaseUnavailableOciError];

/**
 * The member-facing form of an error whose meaning is known (libs/oci `toOciError`, with an
 * unreachable database as 503 UNAVAILABLE: fail closed, nothing is decided without the member's
 * current state). Null for anything else.
 */
export function knownOciError(exception: unknown): OciError | null {
  // The lib that raised it has already logged the operator's side (cause and fix).
  return toOciError(exception, GATEWAY_ERROR_TRANSLATORS);
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
      // Operator prose stays in the log; the audit row holds the reason code only.
      else if (known.logDetail) {
        const fields = { code: known.code, reason: known.reason, detail: known.logDetail, url: request.url };
        if (known.status >= 500) this.logger.warn(fields, 'request failed');
        else this.logger.debug(fields, 'request refused');
      }
      return known;
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const body = exception.getResponse();
      const message =
        typeof body === 'object' && body && 'message' in body
          ? [body.message].flat().join('; ')
          : exception.message;
      return new OciError(ociCodeForHttpStatus(status), { message });
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
