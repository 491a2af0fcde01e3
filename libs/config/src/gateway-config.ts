import * as path from 'node:path';
import { plainToInstance } from 'class-transformer';
import { validateSync, ValidationError } from './validation';
import { parseByteSize } from './byte-size';
import { ConfigValidationError } from './errors';
import { EnvironmentVariables } from './environment-variables';
import { realmHostWarning, realmListenerWarning } from './realm-rules';
import { DEFAULT_EVENTS_CONFIG, EventsConfig, loadEventsConfig } from './events-config';

export { ConfigValidationError } from './errors';

export interface ServerConfig {
  port: number;
  host: string;
  logLevel: string;
  /** Peers whose X-Forwarded-For is believed (CIDRs, addresses, or the words loopback/private). */
  trustProxy: string[];
  dataDir: string;
  /** A response whose client has read nothing for this long is closed; 0 disables. */
  sendStallSeconds: number;
  /** Open client connections at most; null: derived from the open-file limit at start. */
  maxConnections: number | null;
  /** Open connections of one client address at most (TRUST_PROXY peers exempt); 0: no cap. */
  maxConnectionsPerAddress: number;
  /** A request whose headers are not complete this long after its connection opened is closed. */
  headerTimeoutSeconds: number;
}

export interface RegistryIdentityConfig {
  /** host[:port] that clients use in `docker login`; the JWT audience. */
  service: string;
  /** Full URL of the token endpoint, advertised in the challenge. */
  realm: string;
  /** True when neither variable was set and the local defaults are in use. */
  localDefaults: boolean;
}

export interface UpstreamConfig {
  /** False when FORGEJO_BASE_URL or FORGEJO_API_TOKEN is missing: /v2/ answers 503. */
  enabled: boolean;
  baseUrl: string | null;
  token: string | null;
  username: string;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** The whole of one manifest request (headers, retries and body), however it trickles. */
  manifestDeadlineMs: number;
  maxConnections: number;
  retries: number;
  /**
   * True when the upstream finds a tag whatever its case (Forgejo does): tag rules then judge
   * the lowercase form, so a case variant of a refused tag is refused too.
   */
  tagsCaseInsensitive: boolean;
  /**
   * What FORGEJO_BASE_URL is: `forgejo` (Forgejo's APIs and scoped token) or `gatehouse` (another
   * Gatehouse: its /downloads/ routes, with a member's username and access key on it); null when
   * UPSTREAM_KIND is unset: detected from the upstream's answers (libs/upstream UpstreamKindState).
   */
  kind: 'forgejo' | 'gatehouse' | null;
  /**
   * Send an upstream Gatehouse `X-Gatehouse-Member-Tag`: an opaque HMAC of the member's username
   * (UPSTREAM_SEND_MEMBER_TAG, default false). Never sent to a Forgejo upstream.
   */
  sendMemberTag: boolean;
  /** Which variables are missing, for the 503 message, /readyz and the start log. */
  missing: string[];
}

export interface DatabaseConfig {
  /** null: start the embedded PostgreSQL under `embeddedDir`. */
  url: string | null;
  embeddedDir: string;
  /** The embedded PostgreSQL's 127.0.0.1 port; 0: a free one at each start. */
  embeddedPort: number;
  migrateOnStart: boolean;
  poolSize: number;
}

export interface AuthConfig {
  tokenTtlSeconds: number;
  issuer: string;
  signingKeyFile: string;
  signingKeyFileFromEnv: boolean;
  accessKeySecretFile: string;
  accessKeySecretFileFromEnv: boolean;
  /**
   * Never create a missing secret file (the CLI's read-only commands set it: a new access-key
   * secret there would be a secret no key was made with). Not an environment variable.
   */
  secretFilesReadOnly?: boolean;
  stateCacheSeconds: number;
  /**
   * While PostgreSQL is unreachable, member, key and entitlement state checked at most this long
   * ago is still used (0: refuse as soon as the cached state is stale).
   */
  outageGraceSeconds: number;
  failedLoginsPerIp: number;
  failedLoginsPerUsername: number;
  failedLoginWindowSeconds: number;
  /**
   * Keys and entitlements expiring within this many days are warned about (portal, `Warning: 299`
   * on registry and download replies); 0 turns the warnings off. 14 when absent.
   */
  expiryWarningDays?: number;
}

export interface CacheConfig {
  dir: string;
  /** 0 means no cap. */
  maxBytes: number;
  tagTtlSeconds: number;
  tagStaleMaxSeconds: number;
  manifestMemoryMaxBytes: number;
  fillTimeoutMs: number;
  /** Worker threads that hash fills from their temp files; 0 hashes on the event loop. */
  hashThreads: number;
  /** Cache hits handed to nginx (X-Accel-Redirect) instead of streamed by the gateway. */
  offload?: BlobOffloadConfig;
}

export interface BlobOffloadConfig {
  mode: 'off' | 'x-accel-redirect';
  /** nginx's internal location aliasing OCI_CACHE_DIR; starts and ends with '/'. */
  location: string;
}

export const DEFAULT_BLOB_OFFLOAD_LOCATION = '/_gatehouse/blobs/';

export interface AuditConfig {
  /** Audit rows older than this many days are pruned by the gateway; 0 keeps them forever. */
  retentionDays: number;
}

export interface RateLimitConfig {
  windowSeconds: number;
  /** Requests under /v2/ per member per window; 0 disables. */
  v2PerMember: number;
  /** Requests to /auth/token per client IP per window; 0 disables. */
  tokenPerIp: number;
  /** Requests under /v2/ without a valid token per client IP per window; 0 disables. */
  anonymousPerIp: number;
  /** Blob bodies streaming at once per member (or per client IP without a token); 0 disables. */
  blobStreamsPerMember: number;
  /**
   * Redis shared by the replicas for the request and failed-login counters; null (the default)
   * keeps them in this process's memory, which is right for one replica.
   */
  redisUrl?: string | null;
}

export interface AdminConfig {
  /** Bearer secret of the admin API; null disables the API (its routes answer 404). */
  token: string | null;
}

/** The support console's staff sign-in (OpenID Connect) and sessions. */
export interface ConsoleConfig {
  /** null: no OpenID Connect sign-in (ADMIN_TOKEN sign-in only, when set). */
  oidc: {
    issuer: string;
    clientId: string;
    clientSecret: string;
    redirectUrl: string;
    groupsClaim: string;
    /** Group name → role; admin wins when a staff member is in both. */
    roleGroups: { admin: string[]; support: string[] };
  } | null;
  sessionIdleSeconds: number;
  sessionMaxSeconds: number;
}

export const DEFAULT_CONSOLE_CONFIG: ConsoleConfig = {
  oidc: null,
  sessionIdleSeconds: 30 * 60,
  sessionMaxSeconds: 12 * 3600,
};

/** `admin=a,b;support=c` → groups per role. */
export function parseRoleGroups(text: string | undefined): { admin: string[]; support: string[] } {
  const out = { admin: [] as string[], support: [] as string[] };
  for (const part of (text ?? '').split(';')) {
    const m = /^\s*(admin|support)=(.+)$/.exec(part);
    if (!m) continue;
    const role = m[1] as 'admin' | 'support';
    out[role].push(
      ...m[2]
        .split(',')
        .map((g) => g.trim())
        .filter(Boolean),
    );
  }
  return out;
}

export const DEFAULT_EXPIRY_WARNING_DAYS = 14;

/** The whole validated configuration. Injected by class, read once at start. */
export class GatewayConfig {
  constructor(
    readonly server: ServerConfig,
    readonly registry: RegistryIdentityConfig,
    readonly upstream: UpstreamConfig,
    readonly database: DatabaseConfig,
    readonly auth: AuthConfig,
    readonly cache: CacheConfig,
    readonly rateLimit: RateLimitConfig,
    readonly admin: AdminConfig,
    /** Problems that do not stop the start but that the operator must see. */
    readonly warnings: string[],
    readonly audit: AuditConfig = { retentionDays: 365 },
    readonly console: ConsoleConfig = DEFAULT_CONSOLE_CONFIG,
    readonly events: EventsConfig = DEFAULT_EVENTS_CONFIG,
  ) {}
}

function flatten(errors: ValidationError[]): string[] {
  const out: string[] = [];
  for (const e of errors) {
    // One message per variable: the first failing constraint is the useful one.
    const messages = Object.values(e.constraints ?? {});
    if (messages.length > 0) {
      const msg = messages[messages.length - 1];
      out.push(msg.startsWith(e.property) ? msg : `${e.property} ${msg}`);
    }
    if (e.children?.length) out.push(...flatten(e.children));
  }
  return out;
}

/** Empty strings mean "unset": compose files pass `VAR=` through for optional variables. */
function withoutEmpty(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}

export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const raw = plainToInstance(EnvironmentVariables, withoutEmpty(env));
  const problems = flatten(validateSync(raw, { whitelist: false, forbidUnknownValues: false }));
  const warnings: string[] = [];

  const port = raw.PORT ?? 8080;
  const dataDir = path.resolve(raw.DATA_DIR ?? './data');

  const localDefaults = !raw.OCI_REGISTRY_SERVICE && !raw.OCI_REGISTRY_REALM;
  const service = raw.OCI_REGISTRY_SERVICE ?? `localhost:${port}`;
  let realm: string;
  if (raw.OCI_REGISTRY_REALM) realm = raw.OCI_REGISTRY_REALM;
  else if (raw.OCI_REGISTRY_SERVICE) realm = `https://${service}/auth/token`;
  else realm = `http://localhost:${port}/auth/token`;
  if (localDefaults) {
    warnings.push(
      `OCI_REGISTRY_SERVICE is not set: advertising ${service} and realm ${realm}, which only works on this machine. Fix: set OCI_REGISTRY_SERVICE to the public host name clients use.`,
    );
  } else if (!problems.some((p) => p.startsWith('OCI_REGISTRY_') || p.startsWith('PORT'))) {
    const w = raw.OCI_REGISTRY_REALM ? realmHostWarning(realm, service) : null;
    if (w) warnings.push(w);
    const listener = realmListenerWarning({
      realm,
      service,
      host: raw.HOST ?? '0.0.0.0',
      port,
      behindProxy: !!raw.TRUST_PROXY?.trim(),
    });
    if (listener) warnings.push(listener);
  }

  const missing: string[] = [];
  if (!raw.FORGEJO_BASE_URL) missing.push('FORGEJO_BASE_URL');
  if (!raw.FORGEJO_API_TOKEN) missing.push('FORGEJO_API_TOKEN');
  const token = raw.FORGEJO_API_TOKEN?.trim() ?? null;
  if (token !== null && /\s/.test(token)) {
    problems.push(
      'FORGEJO_API_TOKEN contains white space. Fix: paste the token alone, without quotes or spaces',
    );
  }

  const cacheMax = raw.OCI_CACHE_MAX_BYTES ? parseByteSize(raw.OCI_CACHE_MAX_BYTES) : 0;
  const manifestMax = raw.OCI_MANIFEST_MEMORY_MAX_BYTES
    ? parseByteSize(raw.OCI_MANIFEST_MEMORY_MAX_BYTES)
    : 64 * 1024 * 1024;

  const offloadLocation = raw.OCI_BLOB_OFFLOAD_LOCATION ?? DEFAULT_BLOB_OFFLOAD_LOCATION;
  const locationProblem = offloadLocationProblem(offloadLocation);
  if (locationProblem) problems.push(locationProblem);

  const consoleSettings = consoleConfig(raw, problems);
  const events = loadEventsConfig(env, service, problems);

  if (problems.length > 0) throw new ConfigValidationError(problems);

  return new GatewayConfig(
    {
      port,
      host: raw.HOST ?? '0.0.0.0',
      logLevel: raw.LOG_LEVEL ?? 'info',
      trustProxy: (raw.TRUST_PROXY ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      dataDir,
      sendStallSeconds: raw.HTTP_SEND_STALL_SECONDS ?? 60,
      maxConnections: raw.HTTP_MAX_CONNECTIONS ? raw.HTTP_MAX_CONNECTIONS : null,
      maxConnectionsPerAddress: raw.HTTP_MAX_CONNECTIONS_PER_ADDRESS ?? 64,
      headerTimeoutSeconds: raw.HTTP_HEADER_TIMEOUT_SECONDS ?? 10,
    },
    { service, realm, localDefaults },
    {
      enabled: missing.length === 0,
      baseUrl: raw.FORGEJO_BASE_URL ? raw.FORGEJO_BASE_URL.replace(/\/+$/, '') : null,
      token,
      username: raw.FORGEJO_API_USERNAME ?? '',
      connectTimeoutMs: raw.UPSTREAM_CONNECT_TIMEOUT_MS ?? 5_000,
      headersTimeoutMs: raw.UPSTREAM_HEADERS_TIMEOUT_MS ?? 30_000,
      bodyTimeoutMs: raw.UPSTREAM_BODY_TIMEOUT_MS ?? 30_000,
      manifestDeadlineMs: raw.UPSTREAM_MANIFEST_DEADLINE_MS ?? 60_000,
      maxConnections: raw.UPSTREAM_MAX_CONNECTIONS ?? 32,
      retries: raw.UPSTREAM_RETRIES ?? 2,
      tagsCaseInsensitive: raw.UPSTREAM_TAGS_CASE_INSENSITIVE ?? true,
      kind: raw.UPSTREAM_KIND ?? null,
      sendMemberTag: raw.UPSTREAM_SEND_MEMBER_TAG ?? false,
      missing,
    },
    {
      url: raw.DATABASE_URL ?? null,
      embeddedDir: path.join(dataDir, 'postgres'),
      embeddedPort: raw.DATABASE_EMBEDDED_PORT ?? 0,
      migrateOnStart: raw.DATABASE_MIGRATE_ON_START ?? true,
      poolSize: raw.DATABASE_POOL_SIZE ?? 10,
    },
    {
      tokenTtlSeconds: raw.TOKEN_TTL ?? 300,
      issuer: raw.TOKEN_ISSUER ?? 'gatehouse',
      signingKeyFile: path.resolve(raw.TOKEN_SIGNING_KEY_FILE ?? path.join(dataDir, 'token-signing-key.pem')),
      signingKeyFileFromEnv: !!raw.TOKEN_SIGNING_KEY_FILE,
      accessKeySecretFile: path.resolve(
        raw.ACCESS_KEY_SECRET_FILE ?? path.join(dataDir, 'access-key-secret'),
      ),
      accessKeySecretFileFromEnv: !!raw.ACCESS_KEY_SECRET_FILE,
      stateCacheSeconds: raw.AUTH_STATE_CACHE_SECONDS ?? 5,
      outageGraceSeconds: raw.AUTH_OUTAGE_GRACE_SECONDS ?? 120,
      failedLoginsPerIp: raw.AUTH_FAILED_LOGINS_PER_IP ?? 30,
      failedLoginsPerUsername: raw.AUTH_FAILED_LOGINS_PER_USERNAME ?? 10,
      failedLoginWindowSeconds: raw.AUTH_FAILED_LOGIN_WINDOW_SECONDS ?? 300,
      expiryWarningDays: raw.EXPIRY_WARNING_DAYS ?? DEFAULT_EXPIRY_WARNING_DAYS,
    },
    {
      dir: path.resolve(raw.OCI_CACHE_DIR ?? path.join(dataDir, 'cache')),
      maxBytes: cacheMax ?? 0,
      tagTtlSeconds: raw.OCI_TAG_TTL_SECONDS ?? 60,
      tagStaleMaxSeconds: raw.OCI_TAG_STALE_MAX_SECONDS ?? 86_400,
      manifestMemoryMaxBytes: manifestMax ?? 64 * 1024 * 1024,
      fillTimeoutMs: (raw.OCI_CACHE_FILL_TIMEOUT_SECONDS ?? 1_800) * 1000,
      hashThreads: raw.OCI_HASH_THREADS ?? 0,
      offload: {
        mode: raw.OCI_BLOB_OFFLOAD === 'x-accel-redirect' ? 'x-accel-redirect' : 'off',
        location: offloadLocation,
      },
    },
    {
      windowSeconds: raw.RATE_LIMIT_WINDOW_SECONDS ?? 60,
      v2PerMember: raw.RATE_LIMIT_V2_PER_MEMBER ?? 3000,
      tokenPerIp: raw.RATE_LIMIT_TOKEN_PER_IP ?? 600,
      anonymousPerIp: raw.RATE_LIMIT_ANONYMOUS_PER_IP ?? 600,
      blobStreamsPerMember: raw.RATE_LIMIT_BLOB_STREAMS_PER_MEMBER ?? 64,
      redisUrl: raw.REDIS_URL ?? null,
    },
    { token: raw.ADMIN_TOKEN ?? null },
    warnings,
    { retentionDays: raw.AUDIT_RETENTION_DAYS ?? 365 },
    consoleSettings,
    events,
  );
}

function consoleConfig(raw: EnvironmentVariables, problems: string[]): ConsoleConfig {
  const base = {
    sessionIdleSeconds: (raw.CONSOLE_SESSION_IDLE_MINUTES ?? 30) * 60,
    sessionMaxSeconds: (raw.CONSOLE_SESSION_MAX_HOURS ?? 12) * 3600,
  };
  const set = {
    CONSOLE_OIDC_ISSUER: raw.CONSOLE_OIDC_ISSUER,
    CONSOLE_OIDC_CLIENT_ID: raw.CONSOLE_OIDC_CLIENT_ID,
    CONSOLE_OIDC_CLIENT_SECRET: raw.CONSOLE_OIDC_CLIENT_SECRET,
    CONSOLE_OIDC_REDIRECT_URL: raw.CONSOLE_OIDC_REDIRECT_URL,
  };
  const given = Object.entries(set).filter(([, v]) => v);
  if (given.length === 0) return { ...base, oidc: null };
  if (given.length < 4) {
    for (const [k, v] of Object.entries(set))
      if (!v)
        problems.push(
          `${k} is missing: the console's OpenID Connect sign-in needs all four CONSOLE_OIDC_* variables. Fix: set ${k}, or unset the others`,
        );
    return { ...base, oidc: null };
  }
  const roleGroups = parseRoleGroups(raw.CONSOLE_ROLE_GROUPS);
  const mappingInvalid = problems.some((p) => p.startsWith('CONSOLE_ROLE_GROUPS'));
  if (!mappingInvalid && roleGroups.admin.length + roleGroups.support.length === 0)
    problems.push(
      'CONSOLE_ROLE_GROUPS is missing: with CONSOLE_OIDC_ISSUER set, no group would get a role. Fix: e.g. CONSOLE_ROLE_GROUPS=admin=ops-admins;support=support-team',
    );
  return {
    ...base,
    oidc: {
      issuer: set.CONSOLE_OIDC_ISSUER!,
      clientId: set.CONSOLE_OIDC_CLIENT_ID!,
      clientSecret: set.CONSOLE_OIDC_CLIENT_SECRET!,
      redirectUrl: set.CONSOLE_OIDC_REDIRECT_URL!,
      groupsClaim: raw.CONSOLE_OIDC_GROUPS_CLAIM ?? 'groups',
      roleGroups,
    },
  };
}

/**
 * The internal location goes verbatim into X-Accel-Redirect, which nginx resolves as a URI: it
 * must be an absolute path prefix ending in '/', of plain URI characters, never climbing out.
 */
function offloadLocationProblem(location: string): string | null {
  const fix = `Fix: e.g. OCI_BLOB_OFFLOAD_LOCATION=${DEFAULT_BLOB_OFFLOAD_LOCATION}, the nginx location marked internal`;
  if (!location.startsWith('/') || !location.endsWith('/') || location.length < 2)
    return `OCI_BLOB_OFFLOAD_LOCATION must start and end with '/' (got ${JSON.stringify(location)}). ${fix}`;
  if (location.split('/').some((segment) => segment === '..' || segment === '.'))
    return `OCI_BLOB_OFFLOAD_LOCATION must not contain '.' or '..' segments (got ${JSON.stringify(location)}). ${fix}`;
  if (location.includes('//') || !/^[A-Za-z0-9._~/-]+$/.test(location))
    return `OCI_BLOB_OFFLOAD_LOCATION may hold only letters, digits, '.', '_', '~', '-' and single '/' (got ${JSON.stringify(location)}). ${fix}`;
  return null;
}
