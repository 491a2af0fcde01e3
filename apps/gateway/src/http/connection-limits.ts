import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { AppLogger, MetricsService } from '@gatehouse/observability';

/** Descriptors kept for what is not a client connection: database pool, upstream sockets, logs. */
const RESERVED_FDS = 128;

/** The soft RLIMIT_NOFILE of this process (Linux /proc), or null where it cannot be read. */
export function openFileLimit(limitsText?: string): number | null {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (!m) return null;
  return m[1] === 'unlimited' ? null : Number(m[1]);
}

/**
 * The connection limit: the configured one, else half of what the open-file limit leaves after
 * RESERVED_FDS (a blob stream holds its socket and its cache file). Below the limit the process
 * always has descriptors for the database, upstream and the health check.
 */
export function connectionLimit(configured: number | null, nofile: number | null): number | null {
  if (configured !== null) return configured;
  if (nofile === null) return null;
  return Math.max(64, Math.floor((nofile - RESERVED_FDS) / 2));
}

interface Watched {
  res: ServerResponse;
  socket: Socket;
  bytes: number;
  since: number;
}

/**
 * Closes responses whose client reads nothing. Every second each open response is looked at:
 * when bytes are waiting to be sent (the response's or the socket's buffer is not empty) and the
 * socket's `bytesWritten` has not moved for `stallMs`, the socket is destroyed. A slow reader
 * that keeps reading moves `bytesWritten` and is never cut; a response still waiting for
 * upstream has nothing buffered and is not a stall. Counted in
 * `gatehouse_http_send_stalls_total`.
 */
export function installSendStallTimeout(
  server: Server,
  stallMs: number,
  metrics: MetricsService,
  logger: AppLogger,
  now: () => number = Date.now,
): () => void {
  const stalls = metrics.counter(
    'gatehouse_http_send_stalls_total',
    'Responses closed because the client read nothing for HTTP_SEND_STALL_SECONDS',
  );
  const watched = new Set<Watched>();
  const onRequest = (_req: IncomingMessage, res: ServerResponse) => {
    const socket = res.socket;
    if (!socket) return;
    const w: Watched = { res, socket, bytes: socket.bytesWritten, since: now() };
    watched.add(w);
    res.once('close', () => watched.delete(w));
  };
  server.on('request', onRequest);
  const timer = setInterval(
    () => {
      const t = now();
      for (const w of watched) {
        const written = w.socket.bytesWritten;
        const pending = w.res.writableLength + w.socket.writableLength;
        if (written !== w.bytes || pending === 0) {
          w.bytes = written;
          w.since = t;
          continue;
        }
        if (t - w.since < stallMs) continue;
        watched.delete(w);
        stalls.inc();
        logger.info(
          { pendingBytes: pending, stalledMs: t - w.since },
          'closing a response whose client has read nothing',
        );
        w.socket.destroy();
      }
    },
    Math.min(1000, Math.max(100, Math.floor(stallMs / 4))),
  );
  timer.unref();
  return () => {
    clearInterval(timer);
    server.off('request', onRequest);
  };
}

/**
 * Caps the open connections of one client address. A connection beyond `perAddress` from the same
 * peer address is destroyed before anything is read, so one host cannot walk the server towards
 * its overall limit (which protects everyone). A peer in TRUST_PROXY (`trusted`) is a proxy that
 * carries many clients and is not capped here: X-Forwarded-For is a per-request header and is
 * believed only from such a peer, so a stranger cannot spread its connections over invented
 * addresses; the proxy caps its own clients (nginx `limit_conn`). Refusals are counted in
 * `gatehouse_http_connections_refused_total{reason="per_address"}`, logged at most once a minute.
 */
export function installPerAddressConnectionLimit(
  server: Server,
  perAddress: number,
  trusted: (address: string) => boolean,
  metrics: MetricsService,
  logger: AppLogger,
  now: () => number = Date.now,
): () => void {
  const refused = metrics.counter(
    'gatehouse_http_connections_refused_total',
    'Client connections closed unread because their address already held HTTP_MAX_CONNECTIONS_PER_ADDRESS',
    ['reason'],
  );
  const open = new Map<string, number>();
  let lastLog = Number.NEGATIVE_INFINITY;
  let sinceLog = 0;
  const onConnection = (socket: Socket) => {
    const address = socket.remoteAddress;
    if (!address || trusted(address)) return;
    const held = open.get(address) ?? 0;
    if (held >= perAddress) {
      refused.inc({ reason: 'per_address' });
      sinceLog += 1;
      if (now() - lastLog >= 60_000) {
        logger.warn(
          { address, refused: sinceLog, perAddress },
          'closing connections beyond HTTP_MAX_CONNECTIONS_PER_ADDRESS from one address',
        );
        lastLog = now();
        sinceLog = 0;
      }
      socket.destroy();
      return;
    }
    open.set(address, held + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  };
  // Before Node's own 'connection' handler, so a refused socket is never parsed.
  server.prependListener('connection', onConnection);
  return () => server.off('connection', onConnection);
}
