import { UpstreamError } from './upstream.error';
import {
  closeFakes,
  MANIFEST,
  MANIFEST_DIGEST,
  PAT,
  fake,
  serveManifest,
  setup,
} from './testing/upstream-fakes';

// The client through its facade, against local HTTP fakes (testing/upstream-fakes.ts).

afterEach(closeFakes);

describe('UpstreamRegistryClient: Basic registries', () => {
  it('sends Basic credentials to the registry and classifies a refusal', async () => {
    const good = `Basic ${Buffer.from(`svc:${PAT}`).toString('base64')}`;
    const f = await fake((req, res) => {
      if (req.headers.authorization !== good) {
        res
          .writeHead(401, { 'www-authenticate': 'Basic realm="test"', 'content-type': 'application/json' })
          .end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      serveManifest(MANIFEST)(req, res);
    });
    const ok = setup(f.url, { username: 'svc' });
    await expect(ok.client.getManifest('acme/app', MANIFEST_DIGEST)).resolves.toMatchObject({
      found: true,
      digest: MANIFEST_DIGEST,
    });
    await ok.client.close();

    const bad = setup(f.url, { username: 'other' });
    const err = (await bad.client.getManifest('acme/app', 'v1').catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('token_invalid');
    expect(bad.errorLines()[0].msg).toBe(
      'The upstream registry at FORGEJO_BASE_URL rejected the service credentials (401 Basic realm="test"): FORGEJO_API_USERNAME / FORGEJO_API_TOKEN are wrong or revoked. Fix: set FORGEJO_API_USERNAME and FORGEJO_API_TOKEN to a user and password (or token) that the registry accepts.',
    );
    expect(bad.log.raw()).not.toContain(PAT);
    expect(bad.log.raw()).not.toContain(Buffer.from(`other:${PAT}`).toString('base64'));
    await bad.client.close();
  });
});

describe('UpstreamRegistryClient: not configured', () => {
  it('names a Forgejo token, or for UPSTREAM_KIND=gatehouse the member and its access key', async () => {
    const message = async (kind: 'forgejo' | 'gatehouse') => {
      const h = setup('http://up.test', {
        kind,
        enabled: false,
        token: null,
        missing: ['FORGEJO_API_TOKEN'],
      });
      const result = await h.client.checkAccess();
      await h.client.close();
      return result.ok ? '' : result.message;
    };
    expect(await message('forgejo')).toContain('a token with scope read:package');
    const gatehouse = await message('gatehouse');
    expect(gatehouse).toContain('FORGEJO_API_TOKEN not set');
    expect(gatehouse).toContain("FORGEJO_API_TOKEN to that member's access key");
    expect(gatehouse).not.toContain('read:package');
  });
});
