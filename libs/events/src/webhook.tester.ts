import { randomUUID } from 'node:crypto';
import { WebhookSubscriptions } from './webhook-subscriptions';
import { SendResult, WebhookSender } from './webhook.sender';

/**
 * `webhook test`: one signed `webhook.test` CloudEvent posted now, outside the outbox, so an
 * operator sees at once whether the receiver answers and verifies the signature.
 */
export class WebhookTester {
  constructor(
    private readonly subscriptions: WebhookSubscriptions,
    private readonly sender: WebhookSender,
    private readonly source: string,
  ) {}

  async test(id: string): Promise<SendResult & { eventId: string }> {
    const sub = await this.subscriptions.withSecrets(id);
    const eventId = randomUUID();
    const body = JSON.stringify({
      specversion: '1.0',
      id: eventId,
      source: this.source,
      type: 'webhook.test',
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      data: { subscription: sub.id },
    });
    return { ...(await this.sender.send(sub.url, sub.secrets, eventId, body)), eventId };
  }
}
