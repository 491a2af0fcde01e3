import { Transform } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, Matches, Max, Min, Validate } from './validation';
import {
  ByteSizeConstraint,
  CidrListConstraint,
  RealmConstraint,
  toBool,
  toInt,
  trimmed,
} from './environment-rules';

/**
 * The raw environment, one property per variable, validated once at start.
 *
 * Every decorator carries a message that names the fix, because the operator reads it in a
 * container log, not in code. `.env.example` documents the same variables in the same groups.
 */

export class EnvironmentVariables {
  // ── Server ────────────────────────────────────────────────────────────────
  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'PORT must be a whole number. Fix: e.g. PORT=8080' })
  @Min(0, { message: 'PORT must be between 0 and 65535' })
  @Max(65535, { message: 'PORT must be between 0 and 65535' })
  PORT?: number;

  @IsOptional()
  @Transform(trimmed)
  @IsString()
  HOST?: string;

  @IsOptional()
  @Transform(trimmed)
  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    message: 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
  })
  LOG_LEVEL?: string;

  @IsOptional()
  @Transform(trimmed)
  @Validate(CidrListConstraint)
  TRUST_PROXY?: string;

  @IsOptional()
  @Transform(trimmed)
  @IsString()
  DATA_DIR?: string;

  // ── Advertised registry identity ─────────────────────────────────────────
  @IsOptional()
  @Transform(trimmed)
  @Matches(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, {
    message:
      'OCI_REGISTRY_SERVICE must be the host[:port] clients use in `docker login`, with no scheme or path. Fix: e.g. OCI_REGISTRY_SERVICE=registry.example.com',
  })
  OCI_REGISTRY_SERVICE?: string;

  @IsOptional()
  @Validate(RealmConstraint)
  OCI_REGISTRY_REALM?: string;

  // ── Upstream (Forgejo) ───────────────────────────────────────────────────
  @IsOptional()
  @Transform(trimmed)
  @Matches(/^https?:\/\/[^\s"']+$/, {
    message:
      'FORGEJO_BASE_URL must be the http(s) URL of the Forgejo instance (its ROOT_URL). Fix: e.g. FORGEJO_BASE_URL=https://git.example.com',
  })
  FORGEJO_BASE_URL?: string;

  @IsOptional()
  @IsString()
  FORGEJO_API_TOKEN?: string;

  @IsOptional()
  @IsString()
  FORGEJO_API_USERNAME?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'UPSTREAM_CONNECT_TIMEOUT_MS must be a whole number of milliseconds' })
  @Min(100, { message: 'UPSTREAM_CONNECT_TIMEOUT_MS must be at least 100' })
  UPSTREAM_CONNECT_TIMEOUT_MS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'UPSTREAM_HEADERS_TIMEOUT_MS must be a whole number of milliseconds' })
  @Min(100, { message: 'UPSTREAM_HEADERS_TIMEOUT_MS must be at least 100' })
  UPSTREAM_HEADERS_TIMEOUT_MS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'UPSTREAM_BODY_TIMEOUT_MS must be a whole number of milliseconds' })
  @Min(100, { message: 'UPSTREAM_BODY_TIMEOUT_MS must be at least 100' })
  UPSTREAM_BODY_TIMEOUT_MS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'UPSTREAM_MANIFEST_DEADLINE_MS must be a whole number of milliseconds' })
  @Min(100, { message: 'UPSTREAM_MANIFEST_DEADLINE_MS must be at least 100' })
  UPSTREAM_MANIFEST_DEADLINE_MS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'UPSTREAM_MAX_CONNECTIONS must be a whole number' })
  @Min(1, { message: 'UPSTREAM_MAX_CONNECTIONS must be at least 1' })
  UPSTREAM_MAX_CONNECTIONS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'UPSTREAM_RETRIES must be a whole number' })
  @Min(0, { message: 'UPSTREAM_RETRIES must be 0 or more' })
  @Max(10, { message: 'UPSTREAM_RETRIES must be 10 or less' })
  UPSTREAM_RETRIES?: number;

  @IsOptional()
  @Transform(toBool)
  @IsBoolean({
    message:
      'UPSTREAM_TAGS_CASE_INSENSITIVE must be true or false. Fix: true for Forgejo (it finds tags by their lowercase form); false only for an upstream whose tags are case-sensitive',
  })
  UPSTREAM_TAGS_CASE_INSENSITIVE?: boolean;

  @IsOptional()
  @IsIn(['forgejo', 'gatehouse'], {
    message:
      'UPSTREAM_KIND must be forgejo or gatehouse. Fix: forgejo for a Forgejo instance; gatehouse when FORGEJO_BASE_URL is another Gatehouse (a customer-site mirror)',
  })
  UPSTREAM_KIND?: 'forgejo' | 'gatehouse';

  @IsOptional()
  @Transform(toBool)
  @IsBoolean({
    message:
      'UPSTREAM_SEND_MEMBER_TAG must be true or false. Fix: true to send an upstream Gatehouse an opaque tag of each member (X-Gatehouse-Member-Tag); false (the default) to send none',
  })
  UPSTREAM_SEND_MEMBER_TAG?: boolean;

  // ── Database ─────────────────────────────────────────────────────────────
  @IsOptional()
  @Transform(trimmed)
  @Matches(/^postgres(ql)?:\/\/\S+$/, {
    message:
      'DATABASE_URL must be a postgres:// URL. Fix: e.g. DATABASE_URL=postgres://gatehouse:secret@db:5432/gatehouse, or unset it to use the embedded PostgreSQL under DATA_DIR',
  })
  DATABASE_URL?: string;

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^rediss?:\/\/\S+$/, {
    message:
      'REDIS_URL must be a redis:// or rediss:// URL. Fix: e.g. REDIS_URL=redis://redis:6379/0, or unset it to keep the rate-limit counters in this process (one replica)',
  })
  REDIS_URL?: string;

  @IsOptional()
  @Transform(toBool)
  @IsBoolean({ message: 'DATABASE_MIGRATE_ON_START must be true or false' })
  DATABASE_MIGRATE_ON_START?: boolean;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'DATABASE_POOL_SIZE must be a whole number' })
  @Min(1, { message: 'DATABASE_POOL_SIZE must be at least 1' })
  DATABASE_POOL_SIZE?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'DATABASE_EMBEDDED_PORT must be a whole number. Fix: e.g. DATABASE_EMBEDDED_PORT=15433' })
  @Min(0, { message: 'DATABASE_EMBEDDED_PORT must be between 0 and 65535 (0: a free port at each start)' })
  @Max(65535, {
    message: 'DATABASE_EMBEDDED_PORT must be between 0 and 65535 (0: a free port at each start)',
  })
  DATABASE_EMBEDDED_PORT?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({
    message:
      'AUDIT_RETENTION_DAYS must be a whole number of days. Fix: e.g. AUDIT_RETENTION_DAYS=365, or 0 to keep the audit log forever',
  })
  @Min(0, { message: 'AUDIT_RETENTION_DAYS must be 0 (keep forever) or more' })
  AUDIT_RETENTION_DAYS?: number;

  // ── Tokens and access keys ───────────────────────────────────────────────
  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'TOKEN_TTL must be a whole number of seconds' })
  @Min(60, { message: 'TOKEN_TTL must be at least 60 seconds (clients treat shorter lifetimes as 60)' })
  @Max(86400, { message: 'TOKEN_TTL must be at most 86400 seconds' })
  TOKEN_TTL?: number;

  @IsOptional()
  @Transform(trimmed)
  @IsString()
  TOKEN_SIGNING_KEY_FILE?: string;

  @IsOptional()
  @Transform(trimmed)
  @IsString()
  TOKEN_ISSUER?: string;

  @IsOptional()
  @Transform(trimmed)
  @IsString()
  ACCESS_KEY_SECRET_FILE?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'AUTH_STATE_CACHE_SECONDS must be a whole number of seconds' })
  @Min(0, { message: 'AUTH_STATE_CACHE_SECONDS must be between 0 and 10' })
  @Max(10, {
    message: 'AUTH_STATE_CACHE_SECONDS must be at most 10: revocations must take effect within 10 seconds',
  })
  AUTH_STATE_CACHE_SECONDS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'AUTH_OUTAGE_GRACE_SECONDS must be a whole number of seconds' })
  @Min(0, { message: 'AUTH_OUTAGE_GRACE_SECONDS must be between 0 and 600' })
  @Max(600, { message: 'AUTH_OUTAGE_GRACE_SECONDS must be at most 600 (10 minutes)' })
  AUTH_OUTAGE_GRACE_SECONDS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'AUTH_FAILED_LOGINS_PER_IP must be a whole number' })
  @Min(1, { message: 'AUTH_FAILED_LOGINS_PER_IP must be at least 1' })
  AUTH_FAILED_LOGINS_PER_IP?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'AUTH_FAILED_LOGINS_PER_USERNAME must be a whole number' })
  @Min(1, { message: 'AUTH_FAILED_LOGINS_PER_USERNAME must be at least 1' })
  AUTH_FAILED_LOGINS_PER_USERNAME?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'AUTH_FAILED_LOGIN_WINDOW_SECONDS must be a whole number of seconds' })
  @Min(1, { message: 'AUTH_FAILED_LOGIN_WINDOW_SECONDS must be at least 1' })
  AUTH_FAILED_LOGIN_WINDOW_SECONDS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'EXPIRY_WARNING_DAYS must be a whole number of days' })
  @Min(0, { message: 'EXPIRY_WARNING_DAYS must be between 0 (no warnings) and 365' })
  @Max(365, { message: 'EXPIRY_WARNING_DAYS must be between 0 (no warnings) and 365' })
  EXPIRY_WARNING_DAYS?: number;

  // ── Rate limits ──────────────────────────────────────────────────────────
  @IsOptional()
  @Transform(toInt)
  @IsInt({
    message:
      'RATE_LIMIT_WINDOW_SECONDS must be a whole number of seconds. Fix: e.g. RATE_LIMIT_WINDOW_SECONDS=60',
  })
  @Min(1, { message: 'RATE_LIMIT_WINDOW_SECONDS must be at least 1' })
  @Max(3600, { message: 'RATE_LIMIT_WINDOW_SECONDS must be at most 3600' })
  RATE_LIMIT_WINDOW_SECONDS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({
    message: 'RATE_LIMIT_V2_PER_MEMBER must be a whole number of requests (0 disables the limit)',
  })
  @Min(0, { message: 'RATE_LIMIT_V2_PER_MEMBER must be 0 (no limit) or more' })
  RATE_LIMIT_V2_PER_MEMBER?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({
    message: 'RATE_LIMIT_TOKEN_PER_IP must be a whole number of requests (0 disables the limit)',
  })
  @Min(0, { message: 'RATE_LIMIT_TOKEN_PER_IP must be 0 (no limit) or more' })
  RATE_LIMIT_TOKEN_PER_IP?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({
    message: 'RATE_LIMIT_ANONYMOUS_PER_IP must be a whole number of requests (0 disables the limit)',
  })
  @Min(0, { message: 'RATE_LIMIT_ANONYMOUS_PER_IP must be 0 (no limit) or more' })
  RATE_LIMIT_ANONYMOUS_PER_IP?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({
    message: 'RATE_LIMIT_BLOB_STREAMS_PER_MEMBER must be a whole number of streams (0 disables the limit)',
  })
  @Min(0, { message: 'RATE_LIMIT_BLOB_STREAMS_PER_MEMBER must be 0 (no limit) or more' })
  RATE_LIMIT_BLOB_STREAMS_PER_MEMBER?: number;

  // ── HTTP connections ─────────────────────────────────────────────────────
  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'HTTP_SEND_STALL_SECONDS must be a whole number of seconds (0 disables)' })
  @Min(0, { message: 'HTTP_SEND_STALL_SECONDS must be 0 (disabled) or more' })
  HTTP_SEND_STALL_SECONDS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'HTTP_MAX_CONNECTIONS must be a whole number (0: derived from the open-file limit)' })
  @Min(0, { message: 'HTTP_MAX_CONNECTIONS must be 0 (derived) or more' })
  HTTP_MAX_CONNECTIONS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'HTTP_MAX_CONNECTIONS_PER_ADDRESS must be a whole number of connections (0 disables)' })
  @Min(0, { message: 'HTTP_MAX_CONNECTIONS_PER_ADDRESS must be 0 (no per-address cap) or more' })
  HTTP_MAX_CONNECTIONS_PER_ADDRESS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'HTTP_HEADER_TIMEOUT_SECONDS must be a whole number of seconds' })
  @Min(1, { message: 'HTTP_HEADER_TIMEOUT_SECONDS must be 1 or more' })
  HTTP_HEADER_TIMEOUT_SECONDS?: number;

  // ── Admin API ────────────────────────────────────────────────────────────
  @IsOptional()
  @IsString()
  @Matches(/^[\x21-\x7e]{32,}$/, {
    message:
      'ADMIN_TOKEN must be at least 32 printable characters without spaces. Fix: e.g. ADMIN_TOKEN=$(openssl rand -base64 32), or leave it empty to disable the admin API',
  })
  ADMIN_TOKEN?: string;

  // ── Support console ─────────────────────────────────────────────────────
  @IsOptional()
  @Matches(/^https?:\/\/[^\s"']+$/, {
    message:
      'CONSOLE_OIDC_ISSUER must be the http(s) issuer URL of the identity provider. Fix: e.g. CONSOLE_OIDC_ISSUER=https://login.example.com/realms/staff',
  })
  CONSOLE_OIDC_ISSUER?: string;

  @IsOptional()
  @IsString()
  CONSOLE_OIDC_CLIENT_ID?: string;

  @IsOptional()
  @IsString()
  CONSOLE_OIDC_CLIENT_SECRET?: string;

  @IsOptional()
  @Matches(/^https?:\/\/[^\s"']+\/console\/oidc\/callback$/, {
    message:
      'CONSOLE_OIDC_REDIRECT_URL must be the public URL of /console/oidc/callback. Fix: e.g. CONSOLE_OIDC_REDIRECT_URL=https://registry.example.com/console/oidc/callback',
  })
  CONSOLE_OIDC_REDIRECT_URL?: string;

  @IsOptional()
  @Matches(/^[A-Za-z0-9_:./-]+$/, {
    message: 'CONSOLE_OIDC_GROUPS_CLAIM must be a claim name. Fix: e.g. CONSOLE_OIDC_GROUPS_CLAIM=groups',
  })
  CONSOLE_OIDC_GROUPS_CLAIM?: string;

  @IsOptional()
  @Matches(/^\s*(admin|support)=[^;=]+(;\s*(admin|support)=[^;=]+)*\s*$/, {
    message:
      'CONSOLE_ROLE_GROUPS must map roles to comma-separated groups. Fix: e.g. CONSOLE_ROLE_GROUPS=admin=ops-admins;support=support-team',
  })
  CONSOLE_ROLE_GROUPS?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'CONSOLE_SESSION_IDLE_MINUTES must be a whole number of minutes' })
  @Min(1, { message: 'CONSOLE_SESSION_IDLE_MINUTES must be 1 or more' })
  @Max(24 * 60, { message: 'CONSOLE_SESSION_IDLE_MINUTES must be 1440 (a day) or less' })
  CONSOLE_SESSION_IDLE_MINUTES?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'CONSOLE_SESSION_MAX_HOURS must be a whole number of hours' })
  @Min(1, { message: 'CONSOLE_SESSION_MAX_HOURS must be 1 or more' })
  @Max(24 * 7, { message: 'CONSOLE_SESSION_MAX_HOURS must be 168 (a week) or less' })
  CONSOLE_SESSION_MAX_HOURS?: number;

  // ── Cache ────────────────────────────────────────────────────────────────
  @IsOptional()
  @Transform(trimmed)
  @IsString()
  OCI_CACHE_DIR?: string;

  @IsOptional()
  @Transform(trimmed)
  @Validate(ByteSizeConstraint)
  OCI_CACHE_MAX_BYTES?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'OCI_TAG_TTL_SECONDS must be a whole number of seconds' })
  @Min(0, { message: 'OCI_TAG_TTL_SECONDS must be 0 or more' })
  OCI_TAG_TTL_SECONDS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'OCI_TAG_STALE_MAX_SECONDS must be a whole number of seconds' })
  @Min(0, { message: 'OCI_TAG_STALE_MAX_SECONDS must be 0 or more (0 disables serving stale tags)' })
  OCI_TAG_STALE_MAX_SECONDS?: number;

  @IsOptional()
  @Transform(trimmed)
  @Validate(ByteSizeConstraint)
  OCI_MANIFEST_MEMORY_MAX_BYTES?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'OCI_CACHE_FILL_TIMEOUT_SECONDS must be a whole number of seconds' })
  @Min(1, { message: 'OCI_CACHE_FILL_TIMEOUT_SECONDS must be at least 1' })
  OCI_CACHE_FILL_TIMEOUT_SECONDS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'OCI_HASH_THREADS must be a whole number of threads' })
  @Min(0, { message: 'OCI_HASH_THREADS must be 0 (hash on the event loop) or more' })
  @Max(16, { message: 'OCI_HASH_THREADS must be at most 16' })
  OCI_HASH_THREADS?: number;

  @IsOptional()
  @Transform(trimmed)
  @IsIn(['off', 'x-accel-redirect'], {
    message:
      'OCI_BLOB_OFFLOAD must be off or x-accel-redirect. Fix: x-accel-redirect only with nginx in front serving OCI_BLOB_OFFLOAD_LOCATION (docker/nginx.conf), else off',
  })
  OCI_BLOB_OFFLOAD?: string;

  /** Checked in loadGatewayConfig (shape rules: starts and ends with '/', no '..'). */
  @IsOptional()
  @Transform(trimmed)
  @IsString()
  OCI_BLOB_OFFLOAD_LOCATION?: string;

  // ── Events: checked in loadEventsConfig (events-config.ts) ───────────────────────────
  @IsOptional()
  @IsString()
  EVENTS_SOURCE?: string;

  @IsOptional()
  @IsString()
  EVENTS_NATS_URL?: string;

  @IsOptional()
  @IsString()
  EVENTS_NATS_STREAM?: string;

  @IsOptional()
  @IsString()
  EVENTS_ALLOW_PRIVATE_TARGETS?: string;

  @IsOptional()
  @IsString()
  EVENTS_WEBHOOK_TIMEOUT_SECONDS?: string;

  @IsOptional()
  @IsString()
  EVENTS_WEBHOOK_CONCURRENCY?: string;

  @IsOptional()
  @IsString()
  EVENTS_RETRY_HOURS?: string;

  @IsOptional()
  @IsString()
  EVENTS_RETENTION_DAYS?: string;

  @IsOptional()
  @IsString()
  EVENTS_READY_MAX_AGE_SECONDS?: string;

  @IsOptional()
  @IsString()
  EVENTS_EXPIRING_DAYS?: string;

  @IsOptional()
  @IsString()
  EVENTS_POLL_SECONDS?: string;
}
