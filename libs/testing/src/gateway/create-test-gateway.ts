import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { GatewayConfig, loadGatewayConfig } from '@gatehouse/config';
import { Clock, createCapturingLogger } from '@gatehouse/observability';
// Test code may reach into the app: it must boot exactly what production boots.
import { createGatewayApp } from '../../../../apps/gateway/src/bootstrap';
import { createTestDatabase } from '../postgres';
import { getFreePort } from '../upstream/ports';
import { makeTempDir, TempDir } from '../upstream/tmp';

export interface TestGateway {
  app: NestFastifyApplication;
  /** http://127.0.0.1:<port> */
  url: string;
  /** 127.0.0.1:<port>, what clients log in to. */
  host: string;
  port: number;
  config: GatewayConfig;
  dataDir: string;
  databaseUrl: string;
  /** Every log line the gateway wrote, parsed (tests grep them for leaked secrets). */
  logs: Array<Record<string, unknown>>;
  rawLogs: () => string;
  close(): Promise<void>;
}

export interface TestGatewayOptions {
  /** Extra or overriding environment variables. */
  env?: Record<string, string>;
  /** Reuse an existing database (e.g. to restart a gateway on the same data). */
  databaseUrl?: string;
  dataDir?: string;
  /** Keep the database when closing (for restart tests). */
  keepDatabase?: boolean;
  /** The gateway's one clock (e.g. a ManualClock, so TTLs pass without waiting). */
  clock?: Clock;
}

/**
 * Boots the real gateway (Fastify, every module, migrations) on a free loopback port with its
 * own PostgreSQL database and DATA_DIR. Service and realm point at that port so real clients
 * (skopeo, podman) can log in over plain http with --tls-verify=false.
 */
export async function createTestGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const db = options.databaseUrl ? null : await createTestDatabase();
  const databaseUrl = options.databaseUrl ?? db!.url;
  let tmp: TempDir | null = null;
  const dataDir = options.dataDir ?? (tmp = await makeTempDir('gateway-data')).path;
  const port = await getFreePort();
  const env: Record<string, string> = {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: process.env.GATEHOUSE_TEST_LOG_LEVEL ?? 'info',
    OCI_REGISTRY_SERVICE: `127.0.0.1:${port}`,
    OCI_REGISTRY_REALM: `http://127.0.0.1:${port}/auth/token`,
    ...options.env,
  };
  const config = loadGatewayConfig(env);

  const capture = createCapturingLogger(config.server.logLevel, process.env.GATEHOUSE_TEST_LOGS === '1');
  const logger = capture.logger;
  const app = await createGatewayApp(config, logger, { clock: options.clock });
  await app.listen({ port, host: '127.0.0.1' });

  return {
    app,
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    port,
    config,
    dataDir,
    databaseUrl,
    get logs() {
      return capture.lines();
    },
    rawLogs: () => capture.raw(),
    async close() {
      await app.close();
      if (db && !options.keepDatabase) await db.drop();
      if (tmp) await tmp.cleanup();
    },
  };
}
