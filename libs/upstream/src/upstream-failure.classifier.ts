import { errorCode } from './retry.policy';
import {
  UpstreamAuthError,
  UpstreamError,
  UpstreamProtocolError,
  UpstreamServerError,
  UpstreamUnavailableError,
} from './upstream.error';
import { findBasicChallenge, findBearerChallenge, parseWwwAuthenticate } from './www-authenticate.parser';

/** Which server produced an answer: the registry, its token realm, or a storage origin after a redirect. */
export type UpstreamTarget = 'registry' | 'realm' | 'storage';

export interface UpstreamAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The first bytes of the body (error bodies are small; Forgejo's are one word). */
  bodySnippet: string;
  /** `GET /v2/acme/app/manifests/v1`, without query string. */
  request: string;
  target: UpstreamTarget;
  /** What the request carried. */
  sentAuth: 'bearer' | 'basic' | 'none';
  repository?: string;
}

export const FIX_NEW_TOKEN =
  'Fix: create a new token with scope read:package for the user that can read the owner and set FORGEJO_API_TOKEN.';

function header(headers: UpstreamAnswer['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function ownerOf(repository: string | undefined): string {
  return repository ? repository.split('/')[0] : '(unknown)';
}

function isJson(headers: UpstreamAnswer['headers']): boolean {
  return /json/i.test(header(headers, 'content-type') ?? '');
}

/** The OCI error code of a JSON error body (`MANIFEST_UNKNOWN`, `DENIED`...), if any. */
export function ociErrorCode(bodySnippet: string): string | undefined {
  try {
    const parsed = JSON.parse(bodySnippet) as { errors?: Array<{ code?: unknown }> };
    const code = parsed?.errors?.[0]?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    const m = /"code"\s*:\s*"([A-Z_]+)"/.exec(bodySnippet);
    return m?.[1];
  }
}

/** A short, safe label for the answer: Forgejo's one-word bodies, or the OCI code. */
function answerLabel(a: UpstreamAnswer): string {
  const word = a.bodySnippet.trim().split('\n')[0];
  if (/^[A-Za-z][A-Za-z.]{2,40}$/.test(word)) return `${a.status} ${word}`;
  const code = isJson(a.headers) ? ociErrorCode(a.bodySnippet) : undefined;
  return code ? `${a.status} ${code}` : String(a.status);
}

export type AnswerClassification = UpstreamError | { notFound: true; code: string | undefined };

/**
 * Turns an upstream answer that is not a success into either "not found" (the caller maps it
 * to MANIFEST_UNKNOWN / BLOB_UNKNOWN / NAME_UNKNOWN) or an UpstreamError whose message is the
 * operator line: what the upstream said, which variable is wrong, and how to fix it.
 */
export function classifyUpstreamAnswer(a: UpstreamAnswer): AnswerClassification {
  const body = a.bodySnippet.trim();
  const challenges = parseWwwAuthenticate(header(a.headers, 'www-authenticate'));
  const basic = findBasicChallenge(challenges);
  const bearer = findBearerChallenge(challenges);
  const owner = ownerOf(a.repository);
  const details = { upstreamStatus: a.status, request: a.request };

  if (a.target === 'storage') {
    if (a.status === 404) return { notFound: true, code: undefined };
    return new UpstreamServerError(
      `The blob storage that the upstream redirected to answered ${a.status} to ${a.request}: ` +
        'the presigned URL was refused or the storage failed. Fix: check the upstream package storage ' +
        '(MinIO/S3 with SERVE_DIRECT) and that the clocks of Forgejo, the storage and the gateway agree.',
      details,
    );
  }

  if (a.status === 401 || (a.status === 403 && a.target === 'realm')) {
    if (body.startsWith('authGroup.Verify')) {
      return new UpstreamAuthError(
        'token_invalid',
        `Forgejo rejected the service token (${a.status} authGroup.Verify): FORGEJO_API_TOKEN is invalid, expired or revoked. ${FIX_NEW_TOKEN}`,
        details,
      );
    }
    if (a.target === 'realm') {
      return new UpstreamAuthError(
        'token_invalid',
        `The upstream token endpoint refused the service credentials (${answerLabel(a)}): FORGEJO_API_TOKEN is invalid, expired or revoked, or FORGEJO_API_USERNAME does not go with it. ${FIX_NEW_TOKEN}`,
        details,
      );
    }
    if (basic && a.sentAuth === 'bearer') {
      return new UpstreamAuthError(
        'token_missing_scope',
        `Forgejo refused the service token for owner "${owner}" (401 ${body.startsWith('reqPackageAccess') ? 'reqPackageAccess' : `Basic realm="${basic.realm}"`}): ` +
          `FORGEJO_API_TOKEN lacks the read:package scope, or its user cannot read the owner "${owner}". ` +
          `Fix: create a token with scope read:package for a user that can read "${owner}" (the owner itself, a member of the organisation, or a site admin) and set FORGEJO_API_TOKEN.`,
        details,
      );
    }
    if (basic && a.sentAuth === 'basic') {
      return new UpstreamAuthError(
        'token_invalid',
        `The upstream registry at FORGEJO_BASE_URL rejected the service credentials (401 Basic realm="${basic.realm}"): ` +
          'FORGEJO_API_USERNAME / FORGEJO_API_TOKEN are wrong or revoked. ' +
          'Fix: set FORGEJO_API_USERNAME and FORGEJO_API_TOKEN to a user and password (or token) that the registry accepts.',
        details,
      );
    }
    if (bearer?.error === 'insufficient_scope') {
      return new UpstreamAuthError(
        'token_missing_scope',
        `The upstream registry refused the service token access to "${a.repository ?? owner}" (401 insufficient_scope): ` +
          `the user of FORGEJO_API_TOKEN may not pull it. Fix: grant that user read access to "${a.repository ?? owner}" (read:package on Forgejo) and set FORGEJO_API_TOKEN to a token that has it.`,
        details,
      );
    }
    return new UpstreamAuthError(
      'token_invalid',
      `The upstream registry rejected the service credentials (${answerLabel(a)}): FORGEJO_API_TOKEN is invalid, expired or revoked. ${FIX_NEW_TOKEN}`,
      details,
    );
  }

  if (a.status === 403) {
    if (body.startsWith('reqToken')) {
      return new UpstreamAuthError(
        'token_public_only',
        `Forgejo refused the service token for owner "${owner}" (403 reqToken): FORGEJO_API_TOKEN is a public-only token and "${owner}" is private. ` +
          'Fix: create a token without the public-only restriction, with scope read:package, and set FORGEJO_API_TOKEN.',
        details,
      );
    }
    return new UpstreamAuthError(
      'token_missing_scope',
      `The upstream registry refused the service token access to "${a.repository ?? owner}" (${answerLabel(a)}): ` +
        `the user of FORGEJO_API_TOKEN may not pull it. Fix: grant that user read access to "${a.repository ?? owner}" (read:package on Forgejo) and set FORGEJO_API_TOKEN to a token that has it.`,
      details,
    );
  }

  if (a.status === 404) {
    const textual = /^text\//i.test(header(a.headers, 'content-type') ?? '');
    if (a.target === 'registry' && a.repository && !isJson(a.headers) && (body !== '' || textual)) {
      // Forgejo answers an unknown owner with a plain-text "Not found." before any OCI handler;
      // unknown images, tags and digests under a known owner get OCI JSON.
      return new UpstreamAuthError(
        'owner_unknown',
        `Forgejo does not know the owner "${owner}" (404 ${body.split('\n')[0].slice(0, 40) || 'text/plain'}): it does not exist, was renamed, or is not visible to the user of FORGEJO_API_TOKEN. ` +
          `Fix: correct the owner of "${a.repository}" in the entitlement, or give the user of FORGEJO_API_TOKEN access to "${owner}".`,
        details,
      );
    }
    return { notFound: true, code: isJson(a.headers) ? ociErrorCode(a.bodySnippet) : undefined };
  }

  if (a.status === 429) {
    return new UpstreamServerError(
      `The upstream registry is rate limiting the gateway (429 on ${a.request}). ` +
        'Fix: raise the upstream rate limit for the user of FORGEJO_API_TOKEN, or lower UPSTREAM_MAX_CONNECTIONS.',
      details,
    );
  }

  if (a.status >= 500) {
    const where =
      a.target === 'realm' ? 'The upstream token endpoint' : 'The upstream registry at FORGEJO_BASE_URL';
    return new UpstreamServerError(
      `${where} answered ${answerLabel(a)} to ${a.request}: it failed or is overloaded. Fix: check the upstream's logs and health.`,
      details,
    );
  }

  return new UpstreamProtocolError(
    `The upstream ${a.target === 'realm' ? 'token endpoint' : 'registry'} answered ${answerLabel(a)} to ${a.request}, which a registry read never expects. ` +
      'Fix: check that FORGEJO_BASE_URL is the root URL of the registry (for example https://forgejo.example.com, without /v2).',
    details,
  );
}

export interface NetworkFailureContext {
  request: string;
  target: UpstreamTarget;
  /** Origin and path of the server tried (no query string). */
  where: string;
  timeouts: { connectTimeoutMs: number; headersTimeoutMs: number; bodyTimeoutMs: number };
}

const TLS_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
  'EPROTO',
]);

function isTls(code: string | undefined, message: string): boolean {
  if (!code) return /SSL routines|wrong version number|certificate/i.test(message);
  return (
    TLS_CODES.has(code) ||
    code.startsWith('ERR_TLS_') ||
    code.startsWith('ERR_SSL_') ||
    code.startsWith('CERT_')
  );
}

function describe(target: UpstreamTarget, where: string): { subject: string; fixHost: string } {
  if (target === 'realm') {
    return {
      subject: `the upstream token endpoint ${where} (announced by the registry; on Forgejo it comes from ROOT_URL)`,
      fixHost: "set Forgejo's ROOT_URL to an address this gateway can reach",
    };
  }
  if (target === 'storage') {
    return {
      subject: `the blob storage at ${where} that the upstream redirected to`,
      fixHost: "make the storage endpoint in Forgejo's package storage settings reachable from the gateway",
    };
  }
  return {
    subject: `the upstream registry at FORGEJO_BASE_URL=${where}`,
    fixHost: 'correct FORGEJO_BASE_URL',
  };
}

/** Classifies a failure to get any answer at all: DNS, refused, reset, TLS, timeouts. */
export function classifyNetworkError(err: unknown, ctx: NetworkFailureContext): UpstreamError {
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  const { subject, fixHost } = describe(ctx.target, ctx.where);
  const details = { request: ctx.request, cause: err };

  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME' || code === 'EAI_FAIL') {
    return new UpstreamUnavailableError(
      'dns',
      `Cannot resolve the host name of ${subject} (${code}). Fix: ${fixHost}, or fix this host's DNS.`,
      details,
    );
  }
  if (isTls(code, message)) {
    return new UpstreamUnavailableError(
      'tls',
      `TLS with ${subject} failed (${code ?? message.slice(0, 80)}): its certificate is not trusted, expired or does not match the host, or it does not speak TLS. ` +
        'Fix: serve a certificate valid for that host from a trusted CA, add the CA with NODE_EXTRA_CA_CERTS, or use the right scheme (http/https) in FORGEJO_BASE_URL.',
      details,
    );
  }
  if (
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  ) {
    const [what, ms, variable] =
      code === 'UND_ERR_CONNECT_TIMEOUT'
        ? ['connecting', ctx.timeouts.connectTimeoutMs, 'UPSTREAM_CONNECT_TIMEOUT_MS']
        : code === 'UND_ERR_HEADERS_TIMEOUT'
          ? ['waiting for the response headers', ctx.timeouts.headersTimeoutMs, 'UPSTREAM_HEADERS_TIMEOUT_MS']
          : ['waiting for more of the body', ctx.timeouts.bodyTimeoutMs, 'UPSTREAM_BODY_TIMEOUT_MS'];
    return new UpstreamUnavailableError(
      'timeout',
      `Timed out after ${ms} ms ${what} from ${subject} (${ctx.request}). Fix: check the upstream's load and the network, or raise ${variable}.`,
      details,
    );
  }
  return new UpstreamUnavailableError(
    'unreachable',
    `Cannot connect to ${subject} (${code ?? message.slice(0, 80)}): it is down, restarting or the address is wrong. Fix: start the upstream, or ${fixHost}.`,
    details,
  );
}
