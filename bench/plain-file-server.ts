import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { pipeline } from 'node:stream';

// A comparison row for figure 1 (cached blobs): the plain way to serve a file from Node, on one
// event loop: every GET answers the file, read by createReadStream in 256 KiB pieces (the
// gateway's read size) and piped to the response. No authentication, no audit, no range. It shows
// what the gateway's lean path for committed blobs (CommittedBlobStream) is worth against the
// usual stream layers, beside the registry's Go threads and sendfile.
// Usage: node -r @swc-node/register bench/plain-file-server.ts <file> <port>

const file = process.argv[2];
const port = Number(process.argv[3]);
const size = statSync(file).size;

createServer((req, res) => {
  res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' });
  if (req.method === 'HEAD') return void res.end();
  pipeline(createReadStream(file, { highWaterMark: 256 * 1024 }), res, () => undefined);
}).listen(port, '127.0.0.1');
