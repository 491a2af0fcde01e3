import { randomUUID } from 'node:crypto';
import { AppLogger, MetricsService, RequestContext } from '@gatehouse/observability';
import { GATEHOUSE_API_VERSION, GATEHOUSE_API_VERSION_HEADER } from '@gatehouse/upstream';
import type { FastifyInstance, FastifyRequest } from 'fastify';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** A mirror's member tag: one value of the request id's characters, at most 64 of them. */
const SAFE_MEMBER_TAG = /^[A-Za-z0-9._:-]{1,64}$/;

/** The route label for metrics: a template, never a raw path (paths hold names and digests). */
export function setMetricsRoute(request: FastifyRequest, route: string): void {
  (request as FastifyRequest & { metricsRoute?: string }).metricsRoute = route;
}

function metricsRoute(request: FastifyRequest): string {
  return (
    (request as FastifyRequest & { metricsRoute?: string }).metricsRoute ??
    request.routeOptions?.url ??
    'unmatched'
  );
}

/**
 * Every request gets an id minted here, whatever the client sent: a client-chosen id could repeat
 * another request's and make support read two requests as one. The client's own `X-Request-Id`
 * is kept apart (`clientRequestId`), so a proxy's id still finds the request.
 */
export function genRequestId(): string {
  return randomUUID();
}

/** The client's `X-Request-Id` when it is one value of safe characters (it reaches logs and audit). */
export function clientRequestId(req: {
  headers: Record<string, string | string[] | undefined>;
}): string | undefined {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && SAFE_REQUEST_ID.test(incoming) ? incoming : undefined;
}

/** `/v2/…` and `/downloads/…`: the surfaces a mirror Gatehouse uses upstream. */
function servesMirrors(url: string): boolean {
  return url === '/v2' || url.startsWith('/v2/') || url.startsWith('/downloads/');
}

/**
 * A mirror Gatehouse's `X-Gatehouse-Member-Tag` when it is one safe value; the audit records it
 * only after the request's credentials are accepted (RequestContext.authenticated).
 */
export function offeredMemberTag(req: {
  headers: Record<string, string | string[] | undefined>;
}): string | undefined {
  const incoming = req.headers['x-gatehouse-member-tag'];
  return typeof incoming === 'string' && SAFE_MEMBER_TAG.test(incoming) ? incoming : undefined;
}

export function installRequestHooks(
  fastify: FastifyInstance,
  metrics: MetricsService,
  logger: AppLogger,
): void {
  const duration = metrics.histogram(
    'gatehouse_http_request_duration_seconds',
    'HTTP request duration by route template',
    ['method', 'route', 'status_code'],
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  );

  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('X-Request-Id', String(request.id));
    // Another Gatehouse in front of this one (a mirror) learns from this what its upstream is.
    if (servesMirrors(request.url)) reply.header(GATEHOUSE_API_VERSION_HEADER, GATEHOUSE_API_VERSION);
    const ua = request.headers['user-agent'];
    // Everything after this hook (guards, handlers, streams) sees the context.
    RequestContext.run(
      {
        requestId: String(request.id),
        clientRequestId: clientRequestId(request),
        offeredMemberTag: offeredMemberTag(request),
        clientIp: request.ip,
        userAgent: typeof ua === 'string' ? ua.slice(0, 512) : undefined,
      },
      done,
    );
  });

  fastify.addHook('onResponse', (request, reply, done) => {
    const seconds = reply.elapsedTime / 1000;
    duration.observe(
      { method: request.method, route: metricsRoute(request), status_code: String(reply.statusCode) },
      seconds,
    );
    // A failing readiness probe is its own signal (and polled often); don't repeat it as a warning.
    if (reply.statusCode >= 500 && metricsRoute(request) !== '/readyz') {
      logger.warn(
        {
          method: request.method,
          route: metricsRoute(request),
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime),
        },
        'request failed',
      );
    } else {
      logger.debug(
        {
          method: request.method,
          route: metricsRoute(request),
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime),
        },
        'request',
      );
    }
    done();
  });
}
