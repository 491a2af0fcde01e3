import { loadGatewayConfig } from '@gatehouse/config';
import { rateLimitThrottlerOptions } from './rate-limit.module';
import { OciRoute, parseRegistryUrl } from '@gatehouse/oci';
import { limitedRequestFacts } from './rate-limited-request.util';

/** The route the registry pipeline would have parsed (null when the path is refused or unknown). */
function routeOf(url: string): OciRoute | null {
  if (!url.startsWith('/v2')) return null;
  try {
    return parseRegistryUrl(url);
  } catch {
    return null;
  }
}

describe('limitedRequestFacts', () => {
  const digest = 'sha256:' + 'b'.repeat(64);
  it.each([
    ['GET', '/v2/', 'registry.ping', null],
    ['GET', '/v2/_catalog?n=10', 'catalog.list', null],
    ['GET', '/v2/acme/tools/cli/tags/list', 'tags.list', 'acme/tools/cli'],
    ['HEAD', '/v2/acme/app/manifests/v1.0.0', 'manifest.head', 'acme/app'],
    ['GET', `/v2/acme/app/blobs/${digest}`, 'blob.get', 'acme/app'],
    ['GET', '/v2/ACME%2Fapp/manifests/x', 'registry.request', null],
    ['GET', '/v2/a//b/manifests/x', 'registry.request', null],
    ['POST', '/auth/token', 'token.refuse', null],
  ])('%s %s is audited as %s', (method, url, action, repository) => {
    expect(limitedRequestFacts(method, url, routeOf(url))).toMatchObject({ action, repository });
  });

  it('keeps the reference and digest of by-digest requests', () => {
    const url = `/v2/acme/app/manifests/${digest}`;
    expect(limitedRequestFacts('GET', url, routeOf(url))).toEqual({
      action: 'manifest.get',
      repository: 'acme/app',
      reference: digest,
      digest,
    });
  });
});

describe('rate-limit configuration', () => {
  it('defaults to limits a normal pull never reaches, on a 60 s window', () => {
    const { rateLimit } = loadGatewayConfig({});
    expect(rateLimit).toEqual({
      windowSeconds: 60,
      v2PerMember: 3000,
      tokenPerIp: 600,
      anonymousPerIp: 600,
      blobStreamsPerMember: 64,
      redisUrl: null,
    });
    expect(rateLimitThrottlerOptions(rateLimit)).toMatchObject({
      setHeaders: false,
      throttlers: [
        { name: 'v2_member', limit: 3000, ttl: 60_000, blockDuration: 0 },
        { name: 'anonymous_ip', limit: 600, ttl: 60_000, blockDuration: 0 },
        { name: 'token_ip', limit: 600, ttl: 60_000, blockDuration: 0 },
      ],
    });
  });

  it('reads the variables and refuses bad values naming the variable', () => {
    expect(
      loadGatewayConfig({ RATE_LIMIT_V2_PER_MEMBER: '0', RATE_LIMIT_WINDOW_SECONDS: '10' }).rateLimit,
    ).toMatchObject({ v2PerMember: 0, windowSeconds: 10 });
    expect(() => loadGatewayConfig({ RATE_LIMIT_TOKEN_PER_IP: '-1' })).toThrow(/RATE_LIMIT_TOKEN_PER_IP/);
    expect(() => loadGatewayConfig({ RATE_LIMIT_WINDOW_SECONDS: 'soon' })).toThrow(
      /RATE_LIMIT_WINDOW_SECONDS must be a whole number/,
    );
    expect(() => loadGatewayConfig({ RATE_LIMIT_ANONYMOUS_PER_IP: '1.5' })).toThrow(
      /RATE_LIMIT_ANONYMOUS_PER_IP/,
    );
  });
});
