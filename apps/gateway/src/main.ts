import 'reflect-metadata';
import { ConfigValidationError, GatewayConfig, loadGatewayConfig } from '@gatehouse/config';
import { AppLogger, createPinoLogger } from '@gatehouse/observability';
import { createGatewayApp } from './bootstrap';

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
  logger.info(
    {
      port: config.server.port,
      service: config.registry.service,
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
