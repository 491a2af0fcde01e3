// Container health probe: liveness only (/healthz). Readiness (/readyz) depends on the database
// and the upstream, and an unhealthy container gets restarted, which would not fix either.
'use strict';
const http = require('node:http');

const port = Number(process.env.PORT || 8080);
const req = http.get({ host: '127.0.0.1', port, path: '/healthz', timeout: 4000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', (err) => {
  process.stderr.write(`healthcheck: ${err.message}\n`);
  process.exit(1);
});
