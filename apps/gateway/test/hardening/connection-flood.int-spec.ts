import { connect, Socket } from 'node:net';
import { startUpstreamGatewayStack, StackMember, UpstreamGatewayStack } from '@gatehouse/testing/gateway';

/**
 * One host opening 500 connections that trickle a header line every 500 ms, against the real
 * gateway in front of the Forgejo front and registry. The flood comes from 127.0.0.2 (all of
 * 127/8 is loopback on Linux), everyone else from 127.0.0.1: their logins, pulls and /healthz must
 * not notice; the flooding address holds at most HTTP_MAX_CONNECTIONS_PER_ADDRESS connections,
 * and the header deadline closes those it holds.
 */
describe('a connection flood from one address', () => {
  let stack: UpstreamGatewayStack;
  let who: StackMember;
  const flood: Socket[] = [];
  const timers: NodeJS.Timeout[] = [];
  const PER_ADDRESS = 40;
  const HEADER_SECONDS = 3;

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({
      gatewayEnv: {
        HTTP_MAX_CONNECTIONS_PER_ADDRESS: String(PER_ADDRESS),
        HTTP_HEADER_TIMEOUT_SECONDS: String(HEADER_SECONDS),
        TRUST_PROXY: '127.0.0.3',
      },
    });
    who = await stack.member('flood', { 'acme/app': ['*'] });
  });

  afterAll(async () => {
    for (const t of timers) clearInterval(t);
    for (const s of flood) s.destroy();
    await stack?.stop();
  });

  /** A connection from `from` that sends a request line, then one header line every 500 ms. */
  function trickle(from: string): Promise<{ socket: Socket; closed: Promise<number> }> {
    return new Promise((resolve) => {
      const socket = connect({ port: stack.gw.port, host: '127.0.0.1', localAddress: from });
      flood.push(socket);
      const opened = Date.now();
      const closed = new Promise<number>((done) => socket.once('close', () => done(Date.now() - opened)));
      socket.on('error', () => undefined);
      socket.once('connect', () => {
        socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
        let n = 0;
        const t = setInterval(() => {
          if (!socket.destroyed) socket.write(`X-Trickle-${n++}: y\r\n`);
        }, 500);
        timers.push(t);
        resolve({ socket, closed });
      });
    });
  }

  const serverConnections = () =>
    new Promise<number>((resolve, reject) =>
      stack.gw.app
        .getHttpServer()
        .getConnections((err: Error | null, n: number) => (err ? reject(err) : resolve(n))),
    );

  it('caps the flooding address, closes trickling headers, and others log in, pull and check health', async () => {
    const started = Date.now();
    const conns = await Promise.all(Array.from({ length: 500 }, () => trickle('127.0.0.2')));
    await new Promise((r) => setTimeout(r, 500));
    // Bounded descriptors: the flood holds at most its cap (plus sockets not yet torn down).
    const held = await serverConnections();
    expect(held).toBeLessThanOrEqual(PER_ADDRESS + 5);
    const refusedEarly = (
      await Promise.all(conns.map((c) => Promise.race([c.closed, Promise.resolve(-1)])))
    ).filter((ms) => ms >= 0).length;
    expect(refusedEarly).toBeGreaterThanOrEqual(500 - PER_ADDRESS);

    // Everyone else, meanwhile: /healthz, a login and a pull.
    expect((await fetch(`${stack.gw.url}/healthz`)).status).toBe(200);
    const token = await stack.token(who, ['repository:acme/app:pull']);
    const manifest = await fetch(`${stack.gw.url}/v2/acme/app/manifests/v1.0.0`, {
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json',
      },
    });
    expect(manifest.status).toBe(200);
    await manifest.arrayBuffer();

    // The header deadline closes every trickling connection, though each keeps sending.
    const lifetimes = await Promise.all(conns.map((c) => c.closed));
    expect(Math.max(...lifetimes)).toBeLessThan((HEADER_SECONDS + 4) * 1000);
    expect(Date.now() - started).toBeLessThan(30_000);
    const metrics = await (await fetch(`${stack.gw.url}/metrics`)).text();
    const refused = /^gatehouse_http_connections_refused_total\{reason="per_address"\} (\d+)$/m.exec(metrics);
    expect(Number(refused?.[1])).toBeGreaterThanOrEqual(500 - PER_ADDRESS);
    const logged = stack.gw.logs.filter((l) => /HTTP_MAX_CONNECTIONS_PER_ADDRESS/.test(String(l.msg)));
    expect(logged).toHaveLength(1);
    // The figures in dev-docs/security.md.
    console.log(
      `flood: 500 connections, ${refusedEarly} closed at once, ${held} held, ` +
        `the last closed after ${Math.max(...lifetimes)} ms; others served meanwhile`,
    );
  });

  it('does not cap a trusted proxy, and a forwarded address from a stranger changes nothing', async () => {
    const viaProxy = await Promise.all(Array.from({ length: PER_ADDRESS + 10 }, () => trickle('127.0.0.3')));
    await new Promise((r) => setTimeout(r, 300));
    const early = await Promise.all(viaProxy.map((c) => Promise.race([c.closed, Promise.resolve(-1)])));
    expect(early.filter((ms) => ms >= 0)).toHaveLength(0);
    for (const c of viaProxy) c.socket.destroy();

    // A stranger claiming another address in X-Forwarded-For still counts as itself.
    const held = await Promise.all(Array.from({ length: PER_ADDRESS }, () => trickle('127.0.0.4')));
    const extra = connect({ port: stack.gw.port, host: '127.0.0.1', localAddress: '127.0.0.4' });
    flood.push(extra);
    extra.on('error', () => undefined);
    let answer = '';
    extra.on('data', (c) => (answer += String(c)));
    extra.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.9.9.9\r\nConnection: close\r\n\r\n');
    await new Promise((r) => extra.once('close', r));
    expect(answer).toBe('');
    for (const c of held) c.socket.destroy();
  });
});
