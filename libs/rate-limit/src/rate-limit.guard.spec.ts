import { Writable } from 'node:stream';
import {
  All,
  ArgumentsHost,
  CanActivate,
  Catch,
  Controller,
  ExceptionFilter,
  ExecutionContext,
  Get,
  Global,
  HttpCode,
  Injectable,
  Module,
  Post,
  UseGuards,
} from '@nestjs/common';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { ThrottlerStorage } from '@nestjs/throttler';
import { Test } from '@nestjs/testing';
import type { FastifyReply } from 'fastify';
import { AuditEventInput, AuditService } from '@gatehouse/audit';
import { REGISTRY_CONTEXT_PROPERTY, RegistryIdentity, RegistryRequestContext } from '@gatehouse/auth';
import { ConfigModule, loadGatewayConfig } from '@gatehouse/config';
import { AppLogger, createPinoLogger, MetricsService, ObservabilityModule } from '@gatehouse/observability';
import { OciError, parseRegistryUrl } from '@gatehouse/oci';
import { RateLimitGuard } from './rate-limit.guard';
import { RateLimitModule } from './rate-limit.module';
import { RateLimited, rateLimitSkips } from './rate-limited.decorator';

/** Valid tokens are `valid:<memberId>`; anything else failed verification. */
function identityOf(authorization: string | undefined): RegistryIdentity {
  const m = /^Bearer valid:(.+)$/.exec(authorization ?? '');
  if (!authorization) return { kind: 'anonymous', refusal: 'token_missing' };
  if (!m) return { kind: 'anonymous', refusal: 'token_signature' };
  const now = Date.now();
  const token = {
    memberId: m[1],
    username: `user-${m[1]}`,
    accessKeyId: 'k',
    jti: 'j',
    issuedAt: new Date(now),
    expiresAt: new Date(now + 300_000),
    access: [],
  };
  return { kind: 'token', token };
}

/** Stands in for the registry pipeline's first guard: the route and the identity, decided once. */
@Injectable()
class FakeIdentifyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<{ url: string; headers: Record<string, string> }>();
    const gatehouse: RegistryRequestContext = {
      startedAt: performance.now(),
      route: parseRegistryUrl(request.url),
      routeRefusal: null,
      identity: identityOf(request.headers.authorization),
    };
    Object.assign(request, { [REGISTRY_CONTEXT_PROPERTY]: gatehouse });
    return true;
  }
}

@Controller()
@rateLimitSkips('registry')
@UseGuards(FakeIdentifyGuard, RateLimitGuard)
class FakeRegistryController {
  @All(['v2', 'v2/*'])
  handle(): object {
    return {};
  }
}

@Controller('auth/token')
@RateLimited('token')
class FakeTokenController {
  @Get()
  get(): object {
    return { token: 't' };
  }
  @Post()
  @HttpCode(200)
  post(): object {
    return { token: 't' };
  }
}

/** Stands in for the gateway's filter: OciError → status, headers, envelope. */
@Catch(OciError)
class OciTestFilter implements ExceptionFilter {
  catch(error: OciError, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    reply.status(error.status).headers(error.headers).send(error.toEnvelope());
  }
}

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

class FailingStorage implements ThrottlerStorage {
  calls = 0;
  increment(): Promise<ThrottlerStorageRecord> {
    this.calls += 1;
    return Promise.reject(new Error('connection refused'));
  }
}

describe('RateLimitGuard', () => {
  let app: NestFastifyApplication;
  let audited: AuditEventInput[];
  let logs: string;

  async function start(env: Record<string, string>, storage?: ThrottlerStorage): Promise<void> {
    audited = [];
    logs = '';
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logs += String(chunk);
        cb();
      },
    });
    @Global()
    @Module({
      providers: [{ provide: AuditService, useValue: { record: (e: AuditEventInput) => audited.push(e) } }],
      exports: [AuditService],
    })
    class FakeDepsModule {}

    const moduleRef = await Test.createTestingModule({
      imports: [
        ConfigModule.forRoot(loadGatewayConfig(env)),
        ObservabilityModule.forRoot(new AppLogger(createPinoLogger('info', sink as never))),
        FakeDepsModule,
        RateLimitModule.forRoot({ storage }),
      ],
      controllers: [FakeRegistryController, FakeTokenController],
    }).compile();
    app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter());
    app.useGlobalFilters(new OciTestFilter());
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
  }

  afterEach(async () => {
    await app?.close();
  });

  const request = (
    url: string,
    opts: { token?: string; method?: 'GET' | 'HEAD' | 'POST'; ip?: string } = {},
  ) =>
    app.inject({
      method: opts.method ?? 'GET',
      url,
      remoteAddress: opts.ip ?? '10.0.0.1',
      headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
    });

  async function metric(name: string): Promise<string> {
    const text = await app.get(MetricsService).registry.metrics();
    return text
      .split('\n')
      .filter((l) => l.startsWith(name))
      .join('\n');
  }

  it('limits each member on their own budget, keyed by the verified token subject', async () => {
    await start({ RATE_LIMIT_V2_PER_MEMBER: '3', RATE_LIMIT_WINDOW_SECONDS: '60' });
    for (let i = 0; i < 3; i++) {
      expect((await request('/v2/acme/app/manifests/v1', { token: 'valid:m1' })).statusCode).toBe(200);
    }
    const limited = await request('/v2/acme/app/blobs/sha256:' + 'a'.repeat(64), { token: 'valid:m1' });
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toEqual({
      errors: [expect.objectContaining({ code: 'TOOMANYREQUESTS' })],
    });
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);

    // Another member, even from the same IP, has a budget of their own.
    expect((await request('/v2/acme/app/manifests/v1', { token: 'valid:m2' })).statusCode).toBe(200);

    expect(audited).toEqual([
      expect.objectContaining({
        action: 'blob.get',
        outcome: 'denied',
        reason: 'rate_limited',
        httpStatus: 429,
        memberId: 'm1',
        username: 'user-m1',
        repository: 'acme/app',
        digest: 'sha256:' + 'a'.repeat(64),
        details: expect.objectContaining({ limiter: 'v2_member', limit: 3, windowSeconds: 60 }),
      }),
    ]);
    expect(await metric('gatehouse_rate_limited_total')).toContain(
      'gatehouse_rate_limited_total{scope="v2_member"} 1',
    );
  });

  it('counts requests without a valid token per client IP, a forged token included', async () => {
    await start({ RATE_LIMIT_ANONYMOUS_PER_IP: '2', RATE_LIMIT_V2_PER_MEMBER: '100' });
    expect((await request('/v2/')).statusCode).toBe(200);
    expect((await request('/v2/', { token: 'forged' })).statusCode).toBe(200);
    const limited = await request('/v2/', { token: 'forged-again' });
    expect(limited.statusCode).toBe(429);
    expect(audited[0]).toMatchObject({
      action: 'registry.ping',
      memberId: null,
      details: expect.objectContaining({ limiter: 'anonymous_ip' }),
    });
    // Another address, and a member with a valid token from the limited address, go on.
    expect((await request('/v2/', { ip: '10.0.0.2' })).statusCode).toBe(200);
    expect((await request('/v2/', { token: 'valid:m1' })).statusCode).toBe(200);
  });

  it('shares one token-endpoint budget between GET and POST, per IP', async () => {
    await start({ RATE_LIMIT_TOKEN_PER_IP: '2' });
    expect((await request('/auth/token')).statusCode).toBe(200);
    expect((await request('/auth/token', { method: 'POST' })).statusCode).toBe(200);
    const limited = await request('/auth/token');
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['retry-after']).toBeDefined();
    expect(audited[0]).toMatchObject({ action: 'token.refuse', reason: 'rate_limited' });
    // The token limit does not touch /v2/ and vice versa.
    expect((await request('/v2/')).statusCode).toBe(200);
  });

  it('does not limit when a limit is 0', async () => {
    await start({
      RATE_LIMIT_V2_PER_MEMBER: '0',
      RATE_LIMIT_ANONYMOUS_PER_IP: '0',
      RATE_LIMIT_TOKEN_PER_IP: '0',
    });
    for (let i = 0; i < 50; i++) {
      expect((await request('/v2/', { token: i % 2 ? 'valid:m1' : undefined })).statusCode).toBe(200);
      expect((await request('/auth/token')).statusCode).toBe(200);
    }
    expect(audited).toEqual([]);
  });

  it('lets requests through when the storage fails, counts every failure and logs once', async () => {
    const storage = new FailingStorage();
    await start({ RATE_LIMIT_V2_PER_MEMBER: '1', RATE_LIMIT_TOKEN_PER_IP: '1' }, storage);
    for (let i = 0; i < 5; i++) {
      expect((await request('/v2/acme/app/tags/list', { token: 'valid:m1' })).statusCode).toBe(200);
    }
    expect((await request('/auth/token')).statusCode).toBe(200);
    expect(storage.calls).toBe(6);
    expect(await metric('gatehouse_rate_limit_storage_failures_total')).toContain(
      'gatehouse_rate_limit_storage_failures_total 6',
    );
    const lines = logs.split('\n').filter((l) => l.includes('rate limiter storage failed'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('connection refused');
    expect(audited).toEqual([]);
  });
});
