import { loadEventsConfig } from './events-config';

describe('EVENTS_* settings', () => {
  const load = (env: Record<string, string>) => {
    const problems: string[] = [];
    return { config: loadEventsConfig(env, 'registry.example.com', problems), problems };
  };

  it('defaults: source is the service, no NATS, private targets refused, retries for a day', () => {
    const { config, problems } = load({});
    expect(problems).toEqual([]);
    expect(config).toMatchObject({
      source: 'registry.example.com',
      natsUrl: null,
      natsStream: 'GATEHOUSE_EVENTS',
      allowPrivateTargets: false,
      retryForMs: 24 * 3_600_000,
      webhookTimeoutMs: 10_000,
      pollMs: 2_000,
    });
  });

  it('reads every variable', () => {
    const { config, problems } = load({
      EVENTS_SOURCE: 'gatehouse-eu',
      EVENTS_NATS_URL: 'nats://a:4222,nats://b:4222',
      EVENTS_ALLOW_PRIVATE_TARGETS: 'true',
      EVENTS_RETRY_HOURS: '48',
      EVENTS_WEBHOOK_TIMEOUT_SECONDS: '5',
      EVENTS_RETENTION_DAYS: '0',
      EVENTS_POLL_SECONDS: '30',
    });
    expect(problems).toEqual([]);
    expect(config).toMatchObject({
      source: 'gatehouse-eu',
      natsUrl: 'nats://a:4222,nats://b:4222',
      allowPrivateTargets: true,
      retryForMs: 48 * 3_600_000,
      webhookTimeoutMs: 5_000,
      retentionDays: 0,
      pollMs: 30_000,
      fallbackPollMs: 250,
    });
  });

  it.each([
    [{ EVENTS_NATS_URL: 'http://nats:4222' }, /EVENTS_NATS_URL must be nats:\/\/host:port.*Fix/],
    [{ EVENTS_RETRY_HOURS: '2' }, /EVENTS_RETRY_HOURS must be a whole number from 24/],
    [{ EVENTS_ALLOW_PRIVATE_TARGETS: 'maybe' }, /EVENTS_ALLOW_PRIVATE_TARGETS must be true or false/],
    [{ EVENTS_SOURCE: 'a b' }, /EVENTS_SOURCE must hold no spaces/],
    [{ EVENTS_NATS_STREAM: 'a.b' }, /EVENTS_NATS_STREAM may hold only/],
    [{ EVENTS_WEBHOOK_TIMEOUT_SECONDS: '0' }, /EVENTS_WEBHOOK_TIMEOUT_SECONDS must be a whole number from 1/],
    [{ EVENTS_POLL_SECONDS: '0.1' }, /EVENTS_POLL_SECONDS must be a whole number from 1 to 300/],
  ])('%j is refused with the variable and the fix', (env, message) => {
    const { problems } = load(env);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });
});
