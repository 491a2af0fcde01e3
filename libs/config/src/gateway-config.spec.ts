import { ConfigValidationError, loadGatewayConfig } from './gateway-config';
import { realmProblem } from './realm-rules';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadGatewayConfig(env);
  } catch (e) {
    if (e instanceof ConfigValidationError) return e.problems;
    throw e;
  }
  return [];
}

describe('loadGatewayConfig', () => {
  it('starts with defaults and the registry disabled when Forgejo is not configured', () => {
    const c = loadGatewayConfig({});
    expect(c.server.port).toBe(8080);
    expect(c.upstream.enabled).toBe(false);
    expect(c.upstream.missing).toEqual(['FORGEJO_BASE_URL', 'FORGEJO_API_TOKEN']);
    expect(c.database.url).toBeNull();
    expect(c.auth.tokenTtlSeconds).toBe(300);
    expect(c.cache.tagTtlSeconds).toBe(60);
  });

  it('enables the upstream when both variables are set, trimming a trailing slash', () => {
    const c = loadGatewayConfig({
      FORGEJO_BASE_URL: 'https://git.example.com/',
      FORGEJO_API_TOKEN: 'a'.repeat(40),
    });
    expect(c.upstream.enabled).toBe(true);
    expect(c.upstream.baseUrl).toBe('https://git.example.com');
    expect(c.upstream.username).toBe('');
  });

  it('reports one problem per bad variable, naming it and the fix', () => {
    const problems = problemsOf({
      PORT: 'eighty',
      TOKEN_TTL: '5',
      OCI_CACHE_MAX_BYTES: 'lots',
      DATABASE_URL: 'mysql://x',
    });
    expect(problems).toHaveLength(4);
    expect(problems.find((p) => p.startsWith('PORT'))).toMatch(/whole number/);
    expect(problems.find((p) => p.startsWith('TOKEN_TTL'))).toMatch(/at least 60/);
    expect(problems.find((p) => p.startsWith('OCI_CACHE_MAX_BYTES'))).toMatch(/Fix:/);
    expect(problems.find((p) => p.startsWith('DATABASE_URL'))).toMatch(/postgres:\/\//);
  });

  it('treats empty strings as unset (compose passes VAR= through)', () => {
    expect(loadGatewayConfig({ PORT: '', OCI_REGISTRY_REALM: '' }).server.port).toBe(8080);
  });

  it('matches tags case-insensitively unless told the upstream is case-sensitive', () => {
    expect(loadGatewayConfig({}).upstream.tagsCaseInsensitive).toBe(true);
    expect(loadGatewayConfig({ UPSTREAM_TAGS_CASE_INSENSITIVE: 'false' }).upstream.tagsCaseInsensitive).toBe(
      false,
    );
    expect(problemsOf({ UPSTREAM_TAGS_CASE_INSENSITIVE: 'sometimes' })).toEqual([
      expect.stringMatching(/^UPSTREAM_TAGS_CASE_INSENSITIVE must be true or false\. Fix: true for Forgejo/),
    ]);
  });

  it('takes the upstream kind forgejo or gatehouse (unset: detected), and refuses anything else with the fix', () => {
    expect(loadGatewayConfig({}).upstream.kind).toBeNull();
    expect(loadGatewayConfig({ UPSTREAM_KIND: 'forgejo' }).upstream.kind).toBe('forgejo');
    expect(loadGatewayConfig({ UPSTREAM_KIND: 'gatehouse' }).upstream.kind).toBe('gatehouse');
    expect(problemsOf({ UPSTREAM_KIND: 'Gatehouse' })).toEqual([
      expect.stringMatching(
        /^UPSTREAM_KIND must be forgejo or gatehouse\. Fix: forgejo for a Forgejo instance/,
      ),
    ]);
  });

  it('parses cache sizes with units', () => {
    expect(loadGatewayConfig({ OCI_CACHE_MAX_BYTES: '2GiB' }).cache.maxBytes).toBe(2 * 1024 ** 3);
    expect(loadGatewayConfig({ OCI_CACHE_MAX_BYTES: '500MB' }).cache.maxBytes).toBe(500 * 1024 ** 2);
    expect(loadGatewayConfig({ OCI_CACHE_MAX_BYTES: '123' }).cache.maxBytes).toBe(123);
  });

  it('pins the embedded PostgreSQL port only when told (0: a free port at each start)', () => {
    expect(loadGatewayConfig({}).database.embeddedPort).toBe(0);
    expect(loadGatewayConfig({ DATABASE_EMBEDDED_PORT: '15433' }).database.embeddedPort).toBe(15433);
    expect(problemsOf({ DATABASE_EMBEDDED_PORT: '70000' })).toEqual([
      expect.stringMatching(/^DATABASE_EMBEDDED_PORT must be between 0 and 65535/),
    ]);
  });

  it('rejects AUTH_STATE_CACHE_SECONDS above 10 (revocation must apply within 10 s)', () => {
    expect(problemsOf({ AUTH_STATE_CACHE_SECONDS: '30' })[0]).toMatch(
      /^AUTH_STATE_CACHE_SECONDS.*10 seconds/,
    );
  });
});

describe('realm rules', () => {
  it('defaults the realm to https://<service>/auth/token when the service is set', () => {
    const c = loadGatewayConfig({ OCI_REGISTRY_SERVICE: 'registry.example.com', TRUST_PROXY: 'private' });
    expect(c.registry.realm).toBe('https://registry.example.com/auth/token');
    expect(c.warnings).toEqual([]);
  });

  it('uses local defaults with a warning when neither is set', () => {
    const c = loadGatewayConfig({ PORT: '18081' });
    expect(c.registry.service).toBe('localhost:18081');
    expect(c.registry.realm).toBe('http://localhost:18081/auth/token');
    expect(c.warnings.join()).toMatch(/OCI_REGISTRY_SERVICE is not set/);
  });

  it('accepts an http realm override (local verification without TLS)', () => {
    const c = loadGatewayConfig({
      PORT: '18081',
      OCI_REGISTRY_SERVICE: 'localhost:18081',
      OCI_REGISTRY_REALM: 'http://localhost:18081/auth/token',
    });
    expect(c.registry.realm).toBe('http://localhost:18081/auth/token');
    expect(c.warnings).toEqual([]);
  });

  it.each([
    ['ftp://registry.example.com/auth/token', /http or https/],
    ['registry.example.com/auth/token', /not a URL/],
    ['https://registry.example.com/auth/token"', /quote/],
    ["https://registry.example.com/auth/'token", /quote/],
    ['https://registry.example.com/auth/token\r\nX-Evil: 1', /control character/],
    ['https://registry.example.com/auth/\ttoken', /control character/],
    ['https://user:pw@registry.example.com/auth/token', /credentials/],
  ])('rejects realm %j', (realm, why) => {
    expect(realmProblem(realm)).toMatch(why);
    const problems = problemsOf({ OCI_REGISTRY_SERVICE: 'registry.example.com', OCI_REGISTRY_REALM: realm });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^OCI_REGISTRY_REALM/);
    expect(problems[0]).toMatch(/Fix:/);
  });

  it('warns when the realm host differs from the service host', () => {
    const c = loadGatewayConfig({
      OCI_REGISTRY_SERVICE: 'registry.example.com',
      OCI_REGISTRY_REALM: 'https://auth.other.com/token',
      TRUST_PROXY: '10.0.0.0/8',
    });
    expect(c.warnings).toHaveLength(1);
    expect(c.warnings[0]).toMatch(/auth\.other\.com.*differs.*registry\.example\.com/);
  });

  it('does not warn when only the port differs', () => {
    const c = loadGatewayConfig({
      OCI_REGISTRY_SERVICE: 'registry.example.com:5000',
      OCI_REGISTRY_REALM: 'https://registry.example.com/auth/token',
      TRUST_PROXY: 'private',
    });
    expect(c.warnings).toEqual([]);
  });

  it.each([
    // The verification doc's local check: an http gateway advertising the https default realm.
    [
      { PORT: '18097', OCI_REGISTRY_SERVICE: 'localhost:18097' },
      /it is https but this gateway serves plain http/,
    ],
    [
      {
        HOST: '127.0.0.1',
        PORT: '8080',
        OCI_REGISTRY_SERVICE: 'localhost:9000',
        OCI_REGISTRY_REALM: 'http://localhost:9000/auth/token',
      },
      /its port 9000 is not this gateway's PORT 8080/,
    ],
    [
      {
        HOST: '127.0.0.1',
        OCI_REGISTRY_SERVICE: 'registry.example.com:8080',
        OCI_REGISTRY_REALM: 'http://registry.example.com:8080/auth/token',
      },
      /listens on 127\.0\.0\.1 only/,
    ],
  ])('warns when the realm cannot be this gateway without a proxy: %j', (env, why) => {
    const c = loadGatewayConfig(env);
    const w = c.warnings.find((x) => x.includes("cannot be this gateway's own listener"));
    expect(w).toMatch(why);
    expect(w).toMatch(/OCI_REGISTRY_REALM.*OCI_REGISTRY_SERVICE.*TRUST_PROXY.*Fix:/);
    expect(w).toContain('OCI_REGISTRY_REALM=http://');
    // Behind a proxy (TRUST_PROXY set) the same realm is the proxy's business.
    expect(loadGatewayConfig({ ...env, TRUST_PROXY: 'loopback' }).warnings.join()).not.toMatch(
      /own listener/,
    );
  });

  it('rejects a service with a scheme', () => {
    expect(problemsOf({ OCI_REGISTRY_SERVICE: 'https://registry.example.com' })[0]).toMatch(
      /^OCI_REGISTRY_SERVICE.*no scheme/,
    );
  });
  describe('blob offload', () => {
    it('is off by default, at the default location', () => {
      expect(loadGatewayConfig({}).cache.offload).toEqual({ mode: 'off', location: '/_gatehouse/blobs/' });
    });

    it('takes x-accel-redirect and a location of its own', () => {
      const c = loadGatewayConfig({
        OCI_BLOB_OFFLOAD: 'x-accel-redirect',
        OCI_BLOB_OFFLOAD_LOCATION: '/_gatehouse/blobs/gateway-2/',
      });
      expect(c.cache.offload).toEqual({ mode: 'x-accel-redirect', location: '/_gatehouse/blobs/gateway-2/' });
    });

    it('refuses another mode, naming the variable and the fix', () => {
      expect(problemsOf({ OCI_BLOB_OFFLOAD: 'sendfile' })).toEqual([
        expect.stringMatching(/^OCI_BLOB_OFFLOAD must be off or x-accel-redirect\. Fix: /),
      ]);
    });

    it.each([
      ['_gatehouse/blobs/', "start and end with '/'"],
      ['/_gatehouse/blobs', "start and end with '/'"],
      ['/', "start and end with '/'"],
      ['/_gatehouse/../blobs/', "'.' or '..'"],
      ['/_gatehouse/./', "'.' or '..'"],
      ['/_gatehouse//blobs/', 'may hold only'],
      ['/_gatehouse/blobs?x/', 'may hold only'],
      ['/_gate house/', 'may hold only'],
    ])('refuses the location %j at start', (location, why) => {
      const problems = problemsOf({ OCI_BLOB_OFFLOAD_LOCATION: location });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^OCI_BLOB_OFFLOAD_LOCATION (must|may) /);
      expect(problems[0]).toContain(why);
      expect(problems[0]).toContain('Fix: e.g. OCI_BLOB_OFFLOAD_LOCATION=/_gatehouse/blobs/');
    });
  });
});
