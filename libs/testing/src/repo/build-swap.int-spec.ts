import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '../../../..');
const main = join(root, 'dist/apps/gateway/src/main.js');

function build(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(root, 'scripts/build.js'), ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (out += String(d)));
    child.once('error', fail);
    child.once('close', (code) => done({ code, out }));
  });
}

/**
 * `just verify-oci` runs against a live gateway started from dist/: the build it triggers must
 * never take that build away. `--if-changed` leaves an up-to-date dist/ alone, and a build writes
 * aside and swaps in, so dist/ is there the whole time (`rm -rf dist` then a 30 s compile was not).
 */
describe('the build and a running gateway', () => {
  it('does not rebuild an up-to-date dist/, and a rebuild never leaves dist/ missing', async () => {
    // Up to date first (a no-op when an earlier build matches the sources).
    expect((await build(['--if-changed'])).code).toBe(0);
    const before = statSync(main).ino;
    const again = await build(['--if-changed']);
    expect(again).toEqual({ code: 0, out: expect.stringContaining('dist/ is up to date') });
    expect(statSync(main).ino).toBe(before);

    // A forced build, watched: the gateway's entry point must be there at every sample. One
    // sample may fall between the two renames of the swap; the old way missed it for the whole
    // compile.
    let samples = 0;
    let missing = 0;
    const watch = setInterval(() => {
      samples++;
      if (!existsSync(main)) missing++;
    }, 25);
    const forced = await build([]);
    clearInterval(watch);
    expect(forced).toEqual({ code: 0, out: expect.stringContaining('dist/ replaced by the new build') });
    expect(samples).toBeGreaterThan(20);
    expect(missing).toBeLessThanOrEqual(1);
    expect(statSync(main).ino).not.toBe(before);
  }, 600_000);
});
