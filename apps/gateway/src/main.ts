import 'reflect-metadata';
import type { Server } from 'node:http';
import {
  ConfigValidationError,
  GatewayConfig,
  loadGatewayConfig,
  unwritableDirectories,
} from '@gatehouse/config';
import { AppLogger, createPinoLogger } from '@gatehouse/observability';
import { createGatewayApp } from './bootstrap';

/** Container runtimes send SIGKILL 30 s after SIGTERM by default; finish before that. */
const SHUTDOWN_GRACE_MS = 25_000;

async function main(): Promise<void> {
  let config: GatewayConfig;
  try {
    config = loadGatewayConfig();
  } catch (e) {
    if (e instanceof ConfigValidationError) {
      // Plain text on stderr: this is read by a person fixing .env, before any logger exists.
      process.stderr.write(`gatehouse: cannot start.\n${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  // Before anything writes: a volume the service user cannot write fails here, in one line
  // per directory, rather than as 502s on every blob later.
  const unwritable = unwritableDirectories(config);
  if (unwritable.length > 0) {
    for (const line of unwritable) process.stderr.write(`gatehouse: cannot start: ${line}\n`);
    process.exit(2);
  }
  const logger = new AppLogger(createPinoLogger(config.server.logLevel));
  for (const warning of config.warnings) logger.warn({ config: true }, warning);
  if (!config.upstream.enabled) {
    logger.warn(
      { missing: config.upstream.missing },
      `Registry disabled: set ${config.upstream.missing.join(' and ')} to serve images. /v2/ answers 503 until then.`,
    );
  }

  const app = await createGatewayApp(config, logger);
  await app.listen({ port: config.server.port, host: config.server.host });

  // Graceful stop: refuse new requests, let transfers in flight finish (bounded), flush the
  // audit queue and stop the embedded PostgreSQL (module shutdown hooks), then exit 0.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, `received ${signal}: draining requests and shutting down`);
    const force = setTimeout(() => {
      logger.error(
        { graceMs: SHUTDOWN_GRACE_MS },
        'shutdown took too long; exiting with transfers still open',
      );
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    force.unref();
    // Drain HTTP first: Nest's close() runs the module hooks (upstream pools closed, audit
    // queue flushed) BEFORE it closes the server, which would cut the transfers in flight and
    // record their audit rows after the flush. Closing the adapter first stops accepting, lets
    // those transfers finish, and makes Nest's own close of it a no-op. A keep-alive connection
    // whose transfer has finished would hold the close open for the keep-alive timeout (72 s),
    // so idle connections are closed as they become idle.
    const server = app.getHttpServer() as Server;
    setInterval(() => server.closeIdleConnections(), 200).unref();
    app
      .getHttpAdapter()
      .close()
      .then(() => app.close())
      .then(
        () => process.exit(0),
        (e: unknown) => {
          logger.error({ err: e }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  logger.info(
    {
      port: config.server.port,
      registryService: config.registry.service,
      realm: config.registry.realm,
      upstream: config.upstream.baseUrl,
      database: config.database.url ? 'external' : 'embedded',
    },
    `Gatehouse listening on ${config.server.host}:${config.server.port}`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`gatehouse: failed to start: ${(e as Error).message}\n`);
  process.exit(1);
});
