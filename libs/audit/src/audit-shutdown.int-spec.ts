import { NestFactory } from '@nestjs/core';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { ConfigModule, loadGatewayConfig } from '@gatehouse/config';
import { DatabaseModule, EmbeddedPostgresService } from '@gatehouse/database';
import { AppLogger, createPinoLogger, ObservabilityModule } from '@gatehouse/observability';
import { AuditModule, AuditService } from '@gatehouse/audit';

const logger = new AppLogger(createPinoLogger('silent'));

function boot(dataDir: string, flushIntervalMs: number) {
  return NestFactory.createApplicationContext(
    {
      module: class EmbeddedAuditTestModule {},
      imports: [
        ConfigModule.forRoot(loadGatewayConfig({ DATA_DIR: dataDir })),
        ObservabilityModule.forRoot(logger),
        DatabaseModule.forRoot(),
        AuditModule.withOptions({ flushIntervalMs }),
      ],
    },
    { logger: false },
  );
}

describe('audit on the embedded PostgreSQL across a restart', () => {
  let root: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-audit-restart-'));
    fs.chmodSync(root, 0o755);
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('flushes queued events at shutdown, before the pool and the server stop', async () => {
    const dataDir = path.join(root, 'data');
    const first = await boot(dataDir, 60_000);
    const embedded = first.get(EmbeddedPostgresService);
    expect(embedded.role).toBe('owner');
    // The interval is far away: only the shutdown flush can store these.
    for (let i = 0; i < 3; i++)
      first.get(AuditService).record({ action: 'token.issue', outcome: 'allowed', requestId: 'at-shutdown' });
    await first.close();
    expect(fs.existsSync(path.join(dataDir, 'postgres.json'))).toBe(false);

    const second = await boot(dataDir, 50);
    try {
      const c = new Client({ connectionString: second.get(EmbeddedPostgresService).url! });
      await c.connect();
      const { rows } = await c.query(
        `SELECT count(*)::int AS n FROM audit_events WHERE request_id = 'at-shutdown'`,
      );
      await c.end();
      expect(rows).toEqual([{ n: 3 }]);
    } finally {
      await second.close();
    }
  });
});
