import { parseVerifyImage, RawVerifyOptions, resolveVerifyOptions } from './verify-options';

const base: RawVerifyOptions = {
  url: 'https://registry.example.com',
  username: 'verify',
  password: 'gh_secret',
  image: 'acme/app:v1.0.0',
  unentitledTag: 'v1.1.0',
};

describe('verify-oci options', () => {
  it('splits repository and tag, nested names and registry ports included', () => {
    expect(parseVerifyImage('acme/app:v1.0.0')).toEqual({ repository: 'acme/app', tag: 'v1.0.0' });
    expect(parseVerifyImage('acme/group/app:1.2')).toEqual({ repository: 'acme/group/app', tag: '1.2' });
    expect(() => parseVerifyImage('acme/app')).toThrow(/<repository>:<tag>/);
    expect(() => parseVerifyImage(`acme/app:v1@sha256:${'a'.repeat(64)}`)).toThrow(/<repository>:<tag>/);
    expect(() => parseVerifyImage('Acme/App:v1')).toThrow(/not a valid repository name/);
    expect(() => parseVerifyImage('acme/app:-bad')).toThrow(/not a valid tag/);
  });

  it('resolves defaults: metrics at <url>/metrics, an unknown repository under the same owner, the real client on', () => {
    const o = resolveVerifyOptions(base);
    expect(o.url.origin).toBe('https://registry.example.com');
    expect(o).toMatchObject({
      repository: 'acme/app',
      tag: 'v1.0.0',
      unknownRepository: 'acme/gatehouse-verify-oci-unknown',
      metricsUrl: null,
      adminUrl: null,
      checkRateLimit: false,
      rateLimitMaxRequests: 50,
      realClient: true,
      timeoutMs: 30_000,
    });
    expect(o.missingTag).toMatch(/^gatehouse-verify-oci-missing-[0-9a-f]{8}$/);
    expect(resolveVerifyOptions({ ...base, client: false, rateLimitMax: '5', timeout: '2' })).toMatchObject({
      realClient: false,
      rateLimitMaxRequests: 5,
      timeoutMs: 2000,
    });
  });

  it('names every missing option with its environment variable', () => {
    expect(() => resolveVerifyOptions({ url: base.url })).toThrow(
      'missing --username (VERIFY_OCI_USERNAME), --password (VERIFY_OCI_PASSWORD), --image (VERIFY_OCI_IMAGE), --unentitled-tag (VERIFY_OCI_UNENTITLED_TAG)',
    );
  });

  it.each<[RawVerifyOptions, RegExp]>([
    [{ url: 'registry.example.com' }, /--url must be an http\(s\) URL/],
    [{ url: 'ftp://registry.example.com' }, /--url must be an http\(s\) URL/],
    [{ url: 'https://registry.example.com/v2/' }, /without a path/],
    [{ unentitledTag: 'v1.0.0' }, /must differ from the tag/],
    [{ unentitledTag: 'V1.0.0' }, /must differ from the tag .*letter case/],
    [{ unknownRepository: 'acme/app' }, /must differ from the repository/],
    [{ adminUrl: 'http://127.0.0.1:9' }, /--admin-url and --admin-token go together/],
    [{ rateLimitMax: '0' }, /--rate-limit-max must be a positive integer/],
    [{ metricsUrl: 'nope' }, /--metrics-url must be an http\(s\) URL/],
  ])('refuses %j', (override, message) => {
    expect(() => resolveVerifyOptions({ ...base, ...override })).toThrow(message);
  });

  it('never puts the password in an error message', () => {
    try {
      resolveVerifyOptions({ ...base, url: 'not a url' });
    } catch (e) {
      expect((e as Error).message).not.toContain(base.password);
      return;
    }
    throw new Error('expected a refusal');
  });
});
