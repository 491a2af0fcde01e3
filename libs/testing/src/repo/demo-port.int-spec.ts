import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, Server } from 'node:net';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '../../../..');

/** The demo driver (scripts/demo/demo.ts) as scripts/demo.sh runs it, with DEMO_PORT busy. */
describe('the demo on a busy DEMO_PORT', () => {
  let busy: Server;
  let port: number;
  beforeAll(async () => {
    busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    port = (busy.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => busy.close(() => r())));

  it('says which port and how to choose another, and leaves nothing running', async () => {
    const registryPid = join(root, '.tmp/demo/registry.pid');
    const before = existsSync(registryPid);
    const result = await new Promise<{ code: number | null; err: string }>((done, fail) => {
      const child = spawn(process.execPath, ['-r', '@swc-node/register', 'scripts/demo/demo.ts'], {
        cwd: root,
        env: { ...process.env, DEMO_PORT: String(port) },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d) => (err += String(d)));
      child.once('error', fail);
      child.once('close', (code) => done({ code, err }));
    });
    expect(result.code).toBe(1);
    expect(result.err).toContain(`port ${port} is already in use on 127.0.0.1`);
    expect(result.err).toContain('DEMO_PORT=<free port> bash scripts/demo.sh');
    expect(result.err).toContain('Nothing was started.');
    // No registry was started, so no pid file names one.
    if (!before) expect(existsSync(registryPid)).toBe(false);
  });
});
