import type { Server } from 'node:http';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { GatewayConfig } from '@gatehouse/config';
import { AppLogger, Clock, MetricsService } from '@gatehouse/observability';
import { AdminModule } from './admin/admin.module';
import { installAdminOpenApi } from './admin/admin-openapi';
import { GatewayModule } from './gateway.module';
import { ociClientErrorHandler, ociFrameworkErrors } from './http/client-error.handler';
import {
  connectionLimit,
  installPerAddressConnectionLimit,
  installSendStallTimeout,
  openFileLimit,
} from './http/connection-limits';
import { OciExceptionFilter } from './http/oci-exception.filter';
import { genRequestId, installRequestHooks } from './http/request-hooks';
import { trustedPeer, trustProxyList } from './http/trust-proxy';

/**
 * Builds the configured (not yet listening) gateway. main.ts and the test harness share it, so
 * tests run exactly the hooks, filter and adapter options production runs.
 */
export async function createGatewayApp(
  config: GatewayConfig,
  logger: AppLogger,
  options: { clock?: Clock } = {},
): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    trustProxy: trustProxyList(config.server.trustProxy),
    genReqId: genRequestId,
    requestIdHeader: false,
    // Nested repository names plus a digest make long paths; the default 100 would 404 them.
    routerOptions: { maxParamLength: 4096 },
    bodyLimit: 64 * 1024,
    // Generous but bounded: a client may not send kilobytes of headers to tie up parsing.
    // Headers are checked for their deadline (HTTP_HEADER_TIMEOUT_SECONDS) once a second, not every 30 s.
    http: { maxHeaderSize: 16 * 1024, connectionsCheckingInterval: 1_000 },
    // Requests that never reach a route still get the OCI envelope, not Fastify's own JSON.
    clientErrorHandler: ociClientErrorHandler,
    frameworkErrors: ociFrameworkErrors,
    logger: false,
    return503OnClosing: true,
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    GatewayModule.forRoot(config, logger, options.clock),
    adapter,
    {
      logger,
      bufferLogs: false,
    },
  );
  app.useGlobalFilters(new OciExceptionFilter(logger));
  if (config.admin.token) installAdminOpenApi(app, AdminModule);
  else logger.info('admin API disabled: set ADMIN_TOKEN to enable /admin/');
  installRequestHooks(app.getHttpAdapter().getInstance(), app.get(MetricsService), logger);
  installConnectionLimits(app.getHttpServer() as Server, config, app.get(MetricsService), logger);
  return app;
}

/**
 * Bounds what clients can hold: a connection limit below the open-file limit, so the process
 * keeps descriptors for the database, upstream and health checks; a cap per client address and a
 * header deadline, so one host cannot take that limit; and a send-stall timeout, so a client that
 * stops reading gives its socket, cache file and buffers back.
 */
function installConnectionLimits(
  server: Server,
  config: GatewayConfig,
  metrics: MetricsService,
  logger: AppLogger,
): void {
  const nofile = openFileLimit();
  const max = connectionLimit(config.server.maxConnections, nofile);
  if (max !== null) server.maxConnections = max;
  // Trickling headers (one line every few seconds) would hold a descriptor each for minutes.
  server.headersTimeout = config.server.headerTimeoutSeconds * 1000;
  const perAddress = config.server.maxConnectionsPerAddress;
  if (perAddress > 0) {
    const trusted = trustedPeer(config.server.trustProxy);
    const stop = installPerAddressConnectionLimit(server, perAddress, trusted, metrics, logger);
    server.once('close', stop);
  }
  logger.info(
    {
      maxConnections: max,
      openFileLimit: nofile,
      perAddress,
      headerTimeoutSeconds: config.server.headerTimeoutSeconds,
    },
    'client connection limits',
  );
  if (config.server.sendStallSeconds > 0) {
    const stop = installSendStallTimeout(server, config.server.sendStallSeconds * 1000, metrics, logger);
    server.once('close', stop);
  }
}
