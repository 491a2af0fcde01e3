import { createServer } from 'node:http';
import { pipeline } from 'node:stream';
import { Agent, Dispatcher, request } from 'undici';

// The floor for the cold figures (3 and 8): the least a Node process does between a client and
// the upstream with the gateway's own HTTP client. Every request is forwarded as it came (method,
// path, authorization, accept, range) with undici's request(), and the body piped to the response
// with backpressure: no authentication, no entitlement, no hash, no file. What the gateway costs
// beyond this row is the gateway's; what this row costs beyond the direct fetch is Node's and the
// machine's (dev-docs/performance.md, "New in the table: the floor").
// Usage: node -r @swc-node/register bench/passthrough.ts <upstream origin> <port>

const upstream = new URL(process.argv[2]);
const port = Number(process.argv[3]);
const agent = new Agent({ connections: 32 });
const FORWARDED = ['authorization', 'accept', 'range'];
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);

createServer((req, res) => {
  const headers: Record<string, string> = {};
  for (const name of FORWARDED) {
    const value = req.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  request(new URL(req.url ?? '/', upstream), {
    method: req.method as Dispatcher.HttpMethod,
    headers,
    dispatcher: agent,
  }).then(
    (answer) => {
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(answer.headers))
        if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
      res.writeHead(answer.statusCode, out);
      pipeline(answer.body, res, () => undefined);
    },
    (error: Error) => res.writeHead(502).end(error.message),
  );
}).listen(port, '127.0.0.1');
