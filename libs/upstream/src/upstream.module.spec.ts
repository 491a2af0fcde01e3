import { Writable } from 'node:stream';
import { Test } from '@nestjs/testing';
import { ConfigModule, loadGatewayConfig } from '@gatehouse/config';
import { AppLogger, createPinoLogger, ObservabilityModule } from '@gatehouse/observability';
import { UpstreamHealth } from './upstream-health.service';
import { UpstreamModule } from './upstream.module';
import { UpstreamRegistryClient } from './upstream-registry.client';

describe('UpstreamModule', () => {
  it('provides the client and the health check; without FORGEJO_* the self-check reports not_configured once', async () => {
    const out: string[] = [];
    const dest = new Writable({
      write(chunk, _e, cb) {
        out.push(String(chunk));
        cb();
      },
    });
    const logger = new AppLogger(createPinoLogger('info', dest as unknown as never));
    const moduleRef = await Test.createTestingModule({
      imports: [
        ConfigModule.forRoot(loadGatewayConfig({ DATA_DIR: '/tmp/gatehouse-upstream-module-spec' })),
        ObservabilityModule.forRoot(logger),
        UpstreamModule.forRoot({ selfCheckOnStart: false }),
      ],
    }).compile();
    const client = moduleRef.get(UpstreamRegistryClient);
    const health = moduleRef.get(UpstreamHealth);
    expect(client.enabled).toBe(false);
    const status = await health.selfCheck();
    expect(status).toMatchObject({ ok: false, reason: 'not_configured' });
    expect(status.message).toBe(
      'The upstream is not configured: FORGEJO_BASE_URL and FORGEJO_API_TOKEN not set. Fix: set FORGEJO_BASE_URL to the Forgejo root URL and FORGEJO_API_TOKEN to a token with scope read:package.',
    );
    const errors = out
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ reason: 'not_configured', component: 'upstream' });
    await moduleRef.close();
  });
});
