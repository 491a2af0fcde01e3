import { Webhook } from 'standardwebhooks';
import { parseRetryAfter, signatureHeaders } from './webhook.sender';
import { newWebhookSecret } from './webhook-subscriptions';

describe('webhook signatures and answers', () => {
  it('signs per Standard Webhooks; during a rotation either secret verifies', () => {
    const [a, b] = [newWebhookSecret(), newWebhookSecret()];
    const body = '{"id":"e1"}';
    const headers = signatureHeaders([b, a], 'e1', body, new Date());
    expect(headers['webhook-id']).toBe('e1');
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(new Webhook(a).verify(body, headers)).toEqual({ id: 'e1' });
    expect(new Webhook(b).verify(body, headers)).toEqual({ id: 'e1' });
    expect(() => new Webhook(newWebhookSecret()).verify(body, headers)).toThrow();
    expect(() => new Webhook(a).verify('{"id":"e2"}', headers)).toThrow();
  });

  it('signs byte for byte as the standardwebhooks package does, for any body', () => {
    const secret = newWebhookSecret();
    const at = new Date('2026-12-07T10:00:00.987Z');
    for (const body of ['{}', '{"text":"ünïcödé 🐳 \\u0000 \\"q\\""}', 'x'.repeat(70_000)]) {
      const headers = signatureHeaders([secret], 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', body, at);
      expect(headers['webhook-signature']).toBe(new Webhook(secret).sign(headers['webhook-id'], at, body));
      expect(headers['webhook-timestamp']).toBe('1796637600');
    }
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-12-07T10:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Mon, 07 Dec 2026 10:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(undefined, now)).toBeNull();
  });
});
