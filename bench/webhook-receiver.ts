import { createServer } from 'node:http';
import { Webhook } from 'standardwebhooks';

// A vendor's webhook receiver for figure 11, in a process of its own (as a receiver runs on
// another machine), so its work does not land on the event loop that times the pulls.
// It verifies every signature with the standardwebhooks library and keeps each new event's
// latency from its `time` (the audit row's) to its arrival.
// Control: PUT /config {"secret", "countFrom"} (events older than countFrom are answered, not
// counted); GET /stats answers {delivered, duplicates, badSignatures, latencies}.
// Usage: node -r @swc-node/register bench/webhook-receiver.ts - <port>

const port = Number(process.argv[3]);
let secret = '';
let countFrom = Infinity;
const seen = new Set<string>();
let latencies: number[] = [];
let duplicates = 0;
let badSignatures = 0;

function readBody(req: import('node:http').IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const server = createServer((req, res) => {
  void readBody(req).then((body) => {
    if (req.method === 'PUT' && req.url === '/config') {
      const c = JSON.parse(body) as { secret: string; countFrom: number };
      secret = c.secret;
      countFrom = c.countFrom;
      seen.clear();
      latencies = [];
      duplicates = badSignatures = 0;
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET') {
      const stats = { delivered: seen.size, duplicates, badSignatures, latencies };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
      return;
    }
    try {
      const event = new Webhook(secret).verify(body, req.headers as Record<string, string>) as {
        id: string;
        time: string;
      };
      const at = Date.parse(event.time);
      if (at >= countFrom) {
        if (seen.has(event.id)) duplicates++;
        else {
          seen.add(event.id);
          latencies.push(Date.now() - at);
        }
      }
      res.writeHead(204).end();
    } catch {
      badSignatures++;
      res.writeHead(401).end();
    }
  });
});
server.listen(port, '127.0.0.1');
