import { AddressInfo, connect, createServer, Server, Socket } from 'node:net';

/**
 * What the proxy does to one HTTP exchange whose request path matches a rule:
 * - `reset-after:<n>`: the response head and `n` body bytes, then a TCP reset;
 * - `stall-after:<n>`: the head and `n` body bytes, then nothing, the connection held open;
 * - `trickle:<bytes per second>`: the whole response, paced;
 * - `status:<code>`: answered by the proxy itself with that status and no body (upstream untouched);
 * - `content-length:<delta>`: the head with `Content-Length` moved by `delta` (+ announces bytes
 *   that never come, then the connection closes; − leaves bytes the client must not take).
 */
export type ProxyFault =
  | `reset-after:${number}`
  | `stall-after:${number}`
  | `trickle:${number}`
  | `status:${number}`
  | `content-length:${number}`;

export interface FaultRule {
  /** Applied to requests whose path this matches. */
  path: RegExp;
  fault: ProxyFault;
  /** Applied this many times, then the rule is spent (default: until removed). */
  times?: number;
}

export interface FaultProxy {
  url: string;
  port: number;
  /** Exchanges seen, by request path (every request, faulted or not). */
  requests: string[];
  setRules(rules: FaultRule[]): void;
  stop(): Promise<void>;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024;

/**
 * A fault-injecting TCP proxy in front of an HTTP server (the Forgejo front): it reads each
 * connection's request head to match rules, and the response head to add `Connection: close` (so
 * every exchange has a connection of its own and a rule meets every request) and apply the fault.
 * Bytes are otherwise passed through untouched. For tests only: one request per connection.
 */
export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  let rules: Array<FaultRule & { left: number }> = [];
  const requests: string[] = [];
  const sockets = new Set<Socket>();

  const take = (path: string): ProxyFault | null => {
    const rule = rules.find((r) => r.left > 0 && r.path.test(path));
    if (!rule) return null;
    rule.left -= 1;
    return rule.fault;
  };

  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    readHead(client, (head, rest) => {
      const path = /^[A-Z]+ (\S+) HTTP/.exec(head.toString('latin1'))?.[1] ?? '';
      requests.push(path);
      const fault = take(path);
      if (fault?.startsWith('status:')) {
        const code = Number(fault.slice('status:'.length));
        client.end(`HTTP/1.1 ${code} Fault\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
        return;
      }
      const upstream = connect(target.port, target.host);
      sockets.add(upstream);
      let answered = false;
      upstream.on('close', () => {
        sockets.delete(upstream);
        // Closed before answering: the client sees the connection go, as from a dead server.
        if (!answered) client.destroy();
      });
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.write(Buffer.concat([head, rest]));
      client.pipe(upstream);
      readHead(upstream, (responseHead, body) => {
        answered = true;
        const out = rewriteHead(responseHead, fault);
        relay(client, upstream, out, body, fault);
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setRules(next) {
      rules = next.map((r) => ({ ...r, left: r.times ?? Number.POSITIVE_INFINITY }));
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Collects bytes up to the end of an HTTP head, then hands over the head and what followed. */
function readHead(socket: Socket, done: (head: Buffer, rest: Buffer) => void): void {
  let buf = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    const end = buf.indexOf(HEAD_END);
    if (end < 0) {
      if (buf.length > MAX_HEAD) socket.destroy();
      return;
    }
    socket.off('data', onData);
    socket.pause();
    done(buf.subarray(0, end + 4), buf.subarray(end + 4));
  };
  socket.on('data', onData);
}

function rewriteHead(head: Buffer, fault: ProxyFault | null): Buffer {
  const lines = head.toString('latin1').slice(0, -4).split('\r\n');
  const kept = lines.filter((l) => !/^connection:/i.test(l));
  kept.push('Connection: close');
  if (fault?.startsWith('content-length:')) {
    const delta = Number(fault.slice('content-length:'.length));
    for (let i = 0; i < kept.length; i++) {
      const m = /^content-length:\s*(\d+)$/i.exec(kept[i]);
      if (m) kept[i] = `Content-Length: ${Math.max(0, Number(m[1]) + delta)}`;
    }
  }
  return Buffer.from(`${kept.join('\r\n')}\r\n\r\n`, 'latin1');
}

function relay(
  client: Socket,
  upstream: Socket,
  head: Buffer,
  first: Buffer,
  fault: ProxyFault | null,
): void {
  client.write(head);
  const kind = fault?.split(':')[0];
  const n = fault ? Number(fault.split(':')[1]) : 0;
  if (kind === 'reset-after' || kind === 'stall-after') {
    let sent = 0;
    const send = (chunk: Buffer) => {
      const room = n - sent;
      if (room > 0) client.write(chunk.subarray(0, room));
      sent += chunk.length;
      if (sent >= n) {
        upstream.off('data', send);
        upstream.pause();
        if (kind === 'reset-after') client.resetAndDestroy();
      }
    };
    send(first);
    if (sent < n) {
      upstream.on('data', send);
      upstream.resume();
    }
    return;
  }
  if (kind === 'trickle') {
    const queue: Buffer[] = [first];
    upstream.on('data', (c: Buffer) => {
      queue.push(c);
      if (queue.length > 4) upstream.pause();
    });
    const perTick = Math.max(1, Math.floor(n / 10));
    const timer = setInterval(() => {
      let budget = perTick;
      while (budget > 0 && queue.length > 0) {
        const c = queue[0];
        const part = c.subarray(0, budget);
        client.write(part);
        budget -= part.length;
        if (part.length === c.length) queue.shift();
        else queue[0] = c.subarray(part.length);
      }
      if (queue.length <= 4) upstream.resume();
      if (queue.length === 0 && upstream.readableEnded) {
        clearInterval(timer);
        client.end();
      }
    }, 100);
    client.on('close', () => clearInterval(timer));
    upstream.resume();
    return;
  }
  client.write(first);
  upstream.pipe(client);
  upstream.resume();
}
