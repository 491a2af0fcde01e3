/** Events (dev-docs/events.md): the outbox worker, webhooks and the optional NATS sink. */
export interface EventsConfig {
  /** CloudEvents `source`: EVENTS_SOURCE, else the registry service name. */
  source: string;
  /** NATS server(s) for the JetStream sink, comma separated; null: no NATS sink. */
  natsUrl: string | null;
  /** The JetStream stream (created when absent) bound to `gatehouse.events.>`. */
  natsStream: string;
  /** Webhook URLs on loopback, link-local or private addresses are refused unless this is set. */
  allowPrivateTargets: boolean;
  /** One delivery attempt's limit (connect, headers and body). */
  webhookTimeoutMs: number;
  /** How long a delivery is retried before it is dead-lettered. */
  retryForMs: number;
  /** Delivered outbox and delivery rows older than this are pruned; 0 keeps them. */
  retentionDays: number;
  /** /readyz fails when an undelivered event is older than this. */
  readyMaxAgeSeconds: number;
  /** `entitlement.expiring` is sent this many days before an entitlement or key expires. */
  expiringDays: number;
  /** Webhook requests in flight at once on this replica, and per subscription. */
  concurrency: number;
  perSubscriptionConcurrency: number;
  /** How often the worker looks for due work when nothing woke it, while its LISTEN connection is up. */
  pollMs: number;
  /** The same while the LISTEN connection is down (notifications do not arrive). */
  fallbackPollMs: number;
}

const MS_PER_HOUR = 3_600_000;

export const DEFAULT_EVENTS_CONFIG: EventsConfig = {
  source: 'gatehouse',
  natsUrl: null,
  natsStream: 'GATEHOUSE_EVENTS',
  allowPrivateTargets: false,
  webhookTimeoutMs: 10_000,
  retryForMs: 24 * MS_PER_HOUR,
  retentionDays: 7,
  readyMaxAgeSeconds: 600,
  expiringDays: 7,
  concurrency: 512,
  perSubscriptionConcurrency: 128,
  pollMs: 2_000,
  fallbackPollMs: 250,
};

type Env = Record<string, string | undefined>;

function int(
  env: Env,
  name: string,
  fallback: number,
  min: number,
  max: number,
  fix: string,
  problems: string[],
): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    problems.push(
      `${name} must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)}). Fix: ${fix}`,
    );
    return fallback;
  }
  return Number(raw);
}

function bool(env: Env, name: string, problems: string[]): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return false;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  problems.push(`${name} must be true or false (got ${JSON.stringify(raw)})`);
  return false;
}

/** Reads the EVENTS_* variables; each problem names the variable and the fix. */
export function loadEventsConfig(env: Env, service: string, problems: string[]): EventsConfig {
  const d = DEFAULT_EVENTS_CONFIG;
  const source = env.EVENTS_SOURCE?.trim() || service;
  if (/[\s\p{Cc}"]/u.test(source))
    problems.push(
      'EVENTS_SOURCE must hold no spaces, quotes or control characters. Fix: e.g. registry.example.com',
    );
  const natsUrl = env.EVENTS_NATS_URL?.trim() || null;
  if (natsUrl !== null && !natsUrl.split(',').every((u) => /^(nats|tls):\/\/[^\s/]+\/?$/.test(u.trim())))
    problems.push(
      'EVENTS_NATS_URL must be nats://host:port (or tls://), comma separated for a cluster. Fix: e.g. EVENTS_NATS_URL=nats://nats:4222, or unset it',
    );
  const natsStream = env.EVENTS_NATS_STREAM?.trim() || d.natsStream;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(natsStream))
    problems.push('EVENTS_NATS_STREAM may hold only letters, digits, _ and -. Fix: e.g. GATEHOUSE_EVENTS');
  const retryHours = int(
    env,
    'EVENTS_RETRY_HOURS',
    24,
    24,
    24 * 14,
    'e.g. EVENTS_RETRY_HOURS=24 (at least a day)',
    problems,
  );
  const concurrency = int(env, 'EVENTS_WEBHOOK_CONCURRENCY', d.concurrency, 1, 1024, 'e.g. 64', problems);
  return {
    source,
    natsUrl,
    natsStream,
    allowPrivateTargets: bool(env, 'EVENTS_ALLOW_PRIVATE_TARGETS', problems),
    webhookTimeoutMs:
      int(
        env,
        'EVENTS_WEBHOOK_TIMEOUT_SECONDS',
        10,
        1,
        120,
        'e.g. EVENTS_WEBHOOK_TIMEOUT_SECONDS=10',
        problems,
      ) * 1000,
    retryForMs: retryHours * MS_PER_HOUR,
    retentionDays: int(
      env,
      'EVENTS_RETENTION_DAYS',
      d.retentionDays,
      0,
      3650,
      'e.g. 7, or 0 to keep',
      problems,
    ),
    readyMaxAgeSeconds: int(
      env,
      'EVENTS_READY_MAX_AGE_SECONDS',
      d.readyMaxAgeSeconds,
      10,
      86_400,
      'e.g. 600',
      problems,
    ),
    expiringDays: int(
      env,
      'EVENTS_EXPIRING_DAYS',
      d.expiringDays,
      1,
      365,
      'e.g. EVENTS_EXPIRING_DAYS=7',
      problems,
    ),
    concurrency,
    perSubscriptionConcurrency: Math.max(1, Math.min(concurrency, Math.ceil(concurrency / 4))),
    pollMs:
      int(env, 'EVENTS_POLL_SECONDS', d.pollMs / 1000, 1, 300, 'e.g. EVENTS_POLL_SECONDS=2', problems) * 1000,
    fallbackPollMs: d.fallbackPollMs,
  };
}
