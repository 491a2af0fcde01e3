import { unreachableRealm, evaluateChallenge } from './challenge.check';

const headers = (h: Record<string, string>) => ({ get: (name: string) => h[name.toLowerCase()] ?? null });
const OK = {
  'docker-distribution-api-version': 'registry/2.0',
  'www-authenticate': 'Bearer realm="https://registry.example.com/auth/token",service="registry.example.com"',
};

describe('evaluateChallenge', () => {
  it('accepts 401 with the API version and a Bearer realm and service', () => {
    const v = evaluateChallenge(401, headers(OK));
    expect(v).toMatchObject({ ok: true, service: 'registry.example.com' });
    expect(v.realm?.href).toBe('https://registry.example.com/auth/token');
    expect(v.evidence).toBe(
      'GET /v2/ → 401 Bearer realm="https://registry.example.com/auth/token",service="registry.example.com"',
    );
  });

  it('finds the Bearer challenge next to a Basic one a proxy added', () => {
    const v = evaluateChallenge(
      401,
      headers({ ...OK, 'www-authenticate': `Basic realm="proxy", ${OK['www-authenticate']}` }),
    );
    expect(v.ok).toBe(true);
  });

  it.each<[number, Record<string, string>, RegExp]>([
    [200, OK, /→ 200 \(anonymous pulls are open\), expected 401/],
    [503, OK, /→ 503, expected 401/],
    [
      401,
      { ...OK, 'docker-distribution-api-version': '' },
      /without Docker-Distribution-API-Version: registry\/2\.0/,
    ],
    [
      401,
      { ...OK, 'www-authenticate': 'Basic realm="x"' },
      /without a Bearer challenge; WWW-Authenticate: Basic realm="x"/,
    ],
    [401, { ...OK, 'www-authenticate': 'Bearer service="s"' }, /Bearer challenge without realm/],
    [
      401,
      { ...OK, 'www-authenticate': 'Bearer realm="/auth/token",service="s"' },
      /realm "\/auth\/token" is not an http\(s\) URL/,
    ],
    [401, { ...OK, 'www-authenticate': 'Bearer realm="ftp://h/t",service="s"' }, /not an http\(s\) URL/],
    [401, { ...OK, 'www-authenticate': 'Bearer realm="https://h/t"' }, /Bearer challenge without service/],
  ])('fails %i with %j', (status, h, evidence) => {
    const v = evaluateChallenge(status, headers(h));
    expect(v.ok).toBe(false);
    expect(v.evidence).toMatch(evidence);
  });
});

describe('unreachableRealm', () => {
  it('says in words that an https realm answers plain HTTP', () => {
    const text = unreachableRealm(
      new URL('https://localhost:18097/auth/token'),
      'ERR_SSL_WRONG_VERSION_NUMBER 80EBB8C5A27F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number',
    );
    expect(text).toMatch(/is https, but the server at localhost:18097 answers plain HTTP/);
    expect(text).toContain('OCI_REGISTRY_REALM=http://localhost:18097/auth/token');
    expect(text).not.toMatch(/SSL routines|0A00010B/);
  });

  it('names an untrusted certificate, and passes other failures through', () => {
    expect(
      unreachableRealm(new URL('https://r.example/t'), 'DEPTH_ZERO_SELF_SIGNED_CERT self-signed certificate'),
    ).toMatch(/certificate this machine does not trust/);
    expect(unreachableRealm(new URL('https://r.example/t'), 'ECONNREFUSED connect ECONNREFUSED')).toBe(
      'realm https://r.example/t is not reachable from here: ECONNREFUSED connect ECONNREFUSED',
    );
  });
});
