import { OciError } from '@gatehouse/oci';
import { classifyNetworkError, classifyUpstreamAnswer, UpstreamAnswer } from './upstream-failure.classifier';
import { UpstreamError } from './upstream.error';

const TEXT = { 'content-type': 'text/plain; charset=utf-8' };
const JSON_CT = { 'content-type': 'application/json' };

function answer(over: Partial<UpstreamAnswer>): UpstreamAnswer {
  return {
    status: 200,
    headers: {},
    bodySnippet: '',
    request: 'GET /v2/acme/app/manifests/v1',
    target: 'registry',
    sentAuth: 'bearer',
    repository: 'acme/app',
    ...over,
  };
}

describe('classifyUpstreamAnswer', () => {
  it.each<[string, Partial<UpstreamAnswer>, string, string, 'UPSTREAM_ERROR' | 'UNAVAILABLE']>([
    [
      'Forgejo: bad or expired JWT / revoked PAT',
      { status: 401, headers: TEXT, bodySnippet: 'authGroup.Verify\n' },
      'token_invalid',
      'Forgejo rejected the service token (401 authGroup.Verify): FORGEJO_API_TOKEN is invalid, expired or revoked. Fix: create a new token with scope read:package for the user that can read the owner and set FORGEJO_API_TOKEN.',
      'UPSTREAM_ERROR',
    ],
    [
      'Forgejo token endpoint refusing the PAT',
      {
        status: 401,
        headers: TEXT,
        bodySnippet: 'authGroup.Verify\n',
        target: 'realm',
        sentAuth: 'basic',
        request: 'GET http://f/v2/token',
      },
      'token_invalid',
      'Forgejo rejected the service token (401 authGroup.Verify): FORGEJO_API_TOKEN is invalid, expired or revoked. Fix: create a new token with scope read:package for the user that can read the owner and set FORGEJO_API_TOKEN.',
      'UPSTREAM_ERROR',
    ],
    [
      'Forgejo: token without read:package (reqPackageAccess)',
      {
        status: 401,
        headers: { ...TEXT, 'www-authenticate': 'Basic realm="Gitea Package API"' },
        bodySnippet: 'reqPackageAccess\n',
      },
      'token_missing_scope',
      'Forgejo refused the service token for owner "acme" (401 reqPackageAccess): FORGEJO_API_TOKEN lacks the read:package scope, or its user cannot read the owner "acme". Fix: create a token with scope read:package for a user that can read "acme" (the owner itself, a member of the organisation, or a site admin) and set FORGEJO_API_TOKEN.',
      'UPSTREAM_ERROR',
    ],
    [
      'Forgejo: public-only token on a private owner',
      { status: 403, headers: TEXT, bodySnippet: 'reqToken\n' },
      'token_public_only',
      'Forgejo refused the service token for owner "acme" (403 reqToken): FORGEJO_API_TOKEN is a public-only token and "acme" is private. Fix: create a token without the public-only restriction, with scope read:package, and set FORGEJO_API_TOKEN.',
      'UPSTREAM_ERROR',
    ],
    [
      'Forgejo: unknown owner',
      { status: 404, headers: TEXT, bodySnippet: 'Not found.\n' },
      'owner_unknown',
      'Forgejo does not know the owner "acme" (404 Not found.): it does not exist, was renamed, or is not visible to the user of FORGEJO_API_TOKEN. Fix: correct the owner of "acme/app" in the entitlement, or give the user of FORGEJO_API_TOKEN access to "acme".',
      'UPSTREAM_ERROR',
    ],
    [
      'Basic registry refusing the credentials',
      {
        status: 401,
        headers: { 'www-authenticate': 'Basic realm="gatehouse-test"', ...JSON_CT },
        bodySnippet: '{"errors":[{"code":"UNAUTHORIZED"}]}',
        sentAuth: 'basic',
      },
      'token_invalid',
      'The upstream registry at FORGEJO_BASE_URL rejected the service credentials (401 Basic realm="gatehouse-test"): FORGEJO_API_USERNAME / FORGEJO_API_TOKEN are wrong or revoked. Fix: set FORGEJO_API_USERNAME and FORGEJO_API_TOKEN to a user and password (or token) that the registry accepts.',
      'UPSTREAM_ERROR',
    ],
    [
      'token-auth registry: insufficient scope',
      {
        status: 401,
        headers: { 'www-authenticate': 'Bearer realm="https://a/t",error="insufficient_scope"', ...JSON_CT },
        bodySnippet: '{}',
      },
      'token_missing_scope',
      'The upstream registry refused the service token access to "acme/app" (401 insufficient_scope): the user of FORGEJO_API_TOKEN may not pull it. Fix: grant that user read access to "acme/app" (read:package on Forgejo) and set FORGEJO_API_TOKEN to a token that has it.',
      'UPSTREAM_ERROR',
    ],
    [
      'generic 403 DENIED',
      { status: 403, headers: JSON_CT, bodySnippet: '{"errors":[{"code":"DENIED","message":"x"}]}' },
      'token_missing_scope',
      'The upstream registry refused the service token access to "acme/app" (403 DENIED): the user of FORGEJO_API_TOKEN may not pull it. Fix: grant that user read access to "acme/app" (read:package on Forgejo) and set FORGEJO_API_TOKEN to a token that has it.',
      'UPSTREAM_ERROR',
    ],
    [
      'token endpoint refusing with JSON',
      {
        status: 401,
        headers: JSON_CT,
        bodySnippet: '{"errors":[{"code":"UNAUTHORIZED"}]}',
        target: 'realm',
        sentAuth: 'basic',
      },
      'token_invalid',
      'The upstream token endpoint refused the service credentials (401 UNAUTHORIZED): FORGEJO_API_TOKEN is invalid, expired or revoked, or FORGEJO_API_USERNAME does not go with it. Fix: create a new token with scope read:package for the user that can read the owner and set FORGEJO_API_TOKEN.',
      'UPSTREAM_ERROR',
    ],
    [
      'upstream 500',
      { status: 500, bodySnippet: '' },
      'server_error',
      "The upstream registry at FORGEJO_BASE_URL answered 500 to GET /v2/acme/app/manifests/v1: it failed or is overloaded. Fix: check the upstream's logs and health.",
      'UPSTREAM_ERROR',
    ],
    [
      'a proxy 503 in front of the upstream',
      { status: 503, bodySnippet: '<html>' },
      'server_error',
      "The upstream registry at FORGEJO_BASE_URL answered 503 to GET /v2/acme/app/manifests/v1: it failed or is overloaded. Fix: check the upstream's logs and health.",
      'UNAVAILABLE',
    ],
    [
      'storage refusing the presigned URL',
      {
        status: 400,
        target: 'storage',
        sentAuth: 'none',
        request: 'GET (redirected) http://s3/b/o',
        bodySnippet: '<Error>',
      },
      'server_error',
      'The blob storage that the upstream redirected to answered 400 to GET (redirected) http://s3/b/o: the presigned URL was refused or the storage failed. Fix: check the upstream package storage (MinIO/S3 with SERVE_DIRECT) and that the clocks of Forgejo, the storage and the gateway agree.',
      'UPSTREAM_ERROR',
    ],
  ])('%s', (_label, over, reason, line, code) => {
    const r = classifyUpstreamAnswer(answer(over));
    expect(r).toBeInstanceOf(UpstreamError);
    const e = r as UpstreamError;
    expect(e.reason).toBe(reason);
    expect(e.message).toBe(line);
    const oci = e.toOciError();
    expect(oci).toBeInstanceOf(OciError);
    expect(oci.code).toBe(code);
    // The member sees the catalogue's generic message, never the cause.
    expect(oci.toEnvelope().errors[0].message).not.toMatch(/FORGEJO|token|Fix/);
    expect(oci.reason).toBe(`upstream_${reason}`);
  });

  it.each([
    [
      'an OCI MANIFEST_UNKNOWN',
      {
        status: 404,
        headers: JSON_CT,
        bodySnippet: '{"errors":[{"code":"MANIFEST_UNKNOWN","message":""}]}\n',
      },
      'MANIFEST_UNKNOWN',
    ],
    [
      'a distribution NAME_UNKNOWN',
      { status: 404, headers: JSON_CT, bodySnippet: '{"errors":[{"code":"NAME_UNKNOWN"}]}' },
      'NAME_UNKNOWN',
    ],
    ['a HEAD 404 without body or type', { status: 404, headers: {}, bodySnippet: '' }, undefined],
    [
      'a storage 404',
      {
        status: 404,
        target: 'storage' as const,
        headers: { 'content-type': 'application/xml' },
        bodySnippet: '<Error/>',
      },
      undefined,
    ],
  ])('treats %s as not found', (_label, over, code) => {
    expect(classifyUpstreamAnswer(answer(over))).toEqual({ notFound: true, code });
  });

  it('treats a HEAD 404 with a text type as an unknown owner', () => {
    const r = classifyUpstreamAnswer(
      answer({ status: 404, headers: TEXT, bodySnippet: '' }),
    ) as UpstreamError;
    expect(r.reason).toBe('owner_unknown');
  });
});

describe('classifyNetworkError', () => {
  const ctx = {
    request: 'GET /v2/',
    target: 'registry' as const,
    where: 'https://git.example.com',
    timeouts: { connectTimeoutMs: 5000, headersTimeoutMs: 30000, bodyTimeoutMs: 30000 },
  };
  const e = (code: string, message = code) => Object.assign(new Error(message), { code });

  it.each([
    [
      'ENOTFOUND',
      'dns',
      "Cannot resolve the host name of the upstream registry at FORGEJO_BASE_URL=https://git.example.com (ENOTFOUND). Fix: correct FORGEJO_BASE_URL, or fix this host's DNS.",
    ],
    [
      'ECONNREFUSED',
      'unreachable',
      'Cannot connect to the upstream registry at FORGEJO_BASE_URL=https://git.example.com (ECONNREFUSED): it is down, restarting or the address is wrong. Fix: start the upstream, or correct FORGEJO_BASE_URL.',
    ],
    [
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'tls',
      'TLS with the upstream registry at FORGEJO_BASE_URL=https://git.example.com failed (DEPTH_ZERO_SELF_SIGNED_CERT): its certificate is not trusted, expired or does not match the host, or it does not speak TLS. Fix: serve a certificate valid for that host from a trusted CA, add the CA with NODE_EXTRA_CA_CERTS, or use the right scheme (http/https) in FORGEJO_BASE_URL.',
    ],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'tls', undefined],
    [
      'UND_ERR_HEADERS_TIMEOUT',
      'timeout',
      "Timed out after 30000 ms waiting for the response headers from the upstream registry at FORGEJO_BASE_URL=https://git.example.com (GET /v2/). Fix: check the upstream's load and the network, or raise UPSTREAM_HEADERS_TIMEOUT_MS.",
    ],
    ['UND_ERR_CONNECT_TIMEOUT', 'timeout', undefined],
  ])('%s → %s', (code, reason, line) => {
    const r = classifyNetworkError(e(code), ctx);
    expect(r.reason).toBe(reason);
    if (line) expect(r.message).toBe(line);
    expect(r.toOciError().code).toBe('UNAVAILABLE');
  });

  it('names ROOT_URL when the token realm is unreachable', () => {
    const r = classifyNetworkError(e('ECONNREFUSED'), {
      ...ctx,
      target: 'realm',
      where: 'https://public.example.com/v2/token',
    });
    expect(r.message).toContain('the upstream token endpoint https://public.example.com/v2/token');
    expect(r.message).toContain("set Forgejo's ROOT_URL");
  });

  it('finds the code in a wrapped error', () => {
    expect(classifyNetworkError(new TypeError('fetch failed', { cause: e('ENOTFOUND') }), ctx).reason).toBe(
      'dns',
    );
  });
});
