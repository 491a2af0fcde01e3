import { connect, Socket } from 'node:net';
import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';

/** The connection limit through the real gateway: connections beyond it are closed unread. */
describe('connection limit', () => {
  let gw: TestGateway;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    gw = await createTestGateway({ env: { HTTP_MAX_CONNECTIONS: '3' } });
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await gw?.close();
  });

  const idle = () =>
    new Promise<Socket>((resolve, reject) => {
      const s = connect(gw.port, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
      sockets.push(s);
    });

  /** GET /healthz on a fresh connection: the status, or 'closed' when the server drops it. */
  const health = () =>
    new Promise<number | 'closed'>((resolve) => {
      const s = connect(gw.port, '127.0.0.1');
      let data = '';
      s.on('data', (c) => (data += String(c)));
      s.on('error', () => undefined);
      s.on('close', () => {
        const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
        resolve(m ? Number(m[1]) : 'closed');
      });
      s.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    });

  it('closes connections beyond HTTP_MAX_CONNECTIONS and serves again once one goes', async () => {
    expect(gw.app.getHttpServer().maxConnections).toBe(3);
    const held = [await idle(), await idle(), await idle()];
    expect(await health()).toBe('closed');
    held[0].destroy();
    await new Promise((r) => setTimeout(r, 200));
    expect(await health()).toBe(200);
  });
});
