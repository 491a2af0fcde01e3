import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { newWebhookSecret } from './webhook-subscriptions';
import { RESPONSE_BODY_CAP, WebhookSender } from './webhook.sender';

/** The sender against a real HTTP server: no redirects, capped answers, bounded time, private refused. */
describe('WebhookSender', () => {
  let server: Server;
  let base: string;
  let hits: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      hits.push(req.url!);
      if (req.url === '/redirect') return res.writeHead(302, { location: '/ok' }).end();
      if (req.url === '/huge') {
        res.writeHead(500);
        res.write('x'.repeat(1024 * 1024));
        return res.end('y'.repeat(8 * 1024 * 1024));
      }
      if (req.url === '/stall') return; // never answers
      if (req.url === '/busy') return res.writeHead(503, { 'retry-after': '30' }).end('busy');
      res.writeHead(204).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => (hits = []));

  const sender = (allowPrivateTargets = true, timeoutMs = 1000) =>
    new WebhookSender({ timeoutMs, allowPrivateTargets });
  const send = (s: WebhookSender, path: string) => s.send(base + path, [newWebhookSecret()], 'e1', '{}');

  it('does not follow a redirect', async () => {
    const s = sender();
    expect(await send(s, '/redirect')).toMatchObject({ ok: false, status: 302, gone: false });
    expect(hits).toEqual(['/redirect']);
    await s.close();
  });

  it('reads at most a small part of the answer', async () => {
    const s = sender();
    const r = await send(s, '/huge');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.length).toBeLessThanOrEqual(RESPONSE_BODY_CAP);
    await s.close();
  });

  it('gives up on a receiver that never answers after the timeout', async () => {
    const s = sender(true, 500);
    const started = Date.now();
    const r = await send(s, '/stall');
    expect(r).toMatchObject({ ok: false, status: null });
    if (!r.ok) expect(r.error).toMatch(/timed out/);
    expect(Date.now() - started).toBeLessThan(5_000);
    await s.close();
  });

  it('passes Retry-After on', async () => {
    const s = sender();
    expect(await send(s, '/busy')).toMatchObject({ ok: false, status: 503, retryAfterMs: 30_000 });
    await s.close();
  });

  it('refuses to connect to a name resolving to a loopback address unless allowed (checked at connect time)', async () => {
    const strict = sender(false);
    const port = (server.address() as AddressInfo).port;
    const r = await strict.send(`http://localhost:${port}/ok`, [newWebhookSecret()], 'e1', '{}');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/EPRIVATETARGET|private/);
    expect(hits).toEqual([]);
    await strict.close();
    const open = sender(true);
    expect(await open.send(`http://localhost:${port}/ok`, [newWebhookSecret()], 'e1', '{}')).toMatchObject({
      ok: true,
    });
    await open.close();
  });
});
