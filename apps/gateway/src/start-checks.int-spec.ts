import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadGatewayConfig, unwritableDirectories } from '@gatehouse/config';
import { makeTempDir, runCommand, TempDir } from '@gatehouse/testing/upstream';

const builtMain = join(resolve(__dirname, '../../..'), 'dist/apps/gateway/src/main.js');

/**
 * The start check of DATA_DIR and OCI_CACHE_DIR, on the built gateway as operators run it. The
 * container case (a root-owned bind mount under uid 10001) is in test/engine/; here a non-root
 * uid (nobody, through setpriv, allowed to read but not to write anything) meets a root-owned
 * directory on the host.
 */
describe('start check: writable data and cache directories', () => {
  let tmp: TempDir;

  beforeAll(async () => {
    tmp = await makeTempDir('start-checks');
    await chmod(tmp.path, 0o755);
  });
  afterAll(() => tmp?.cleanup());

  it('creates missing directories and reports nothing when they are writable', async () => {
    const dataDir = join(tmp.path, 'ok', 'data');
    expect(unwritableDirectories(loadGatewayConfig({ DATA_DIR: dataDir }))).toEqual([]);
    const again = unwritableDirectories(
      loadGatewayConfig({ DATA_DIR: dataDir, OCI_CACHE_DIR: join(tmp.path, 'ok', 'elsewhere') }),
    );
    expect(again).toEqual([]);
  });

  it('names the variable when the path cannot be a directory', async () => {
    const file = join(tmp.path, 'a-file');
    await writeFile(file, 'x');
    const problems = unwritableDirectories(
      loadGatewayConfig({ DATA_DIR: join(tmp.path, 'ok2'), OCI_CACHE_DIR: join(file, 'cache') }),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^OCI_CACHE_DIR=.*\/a-file\/cache cannot be used \(ENOTDIR: .*\)\. Fix: point OCI_CACHE_DIR at a directory uid \d+ can write$/,
    );
  });

  it('stops the built gateway with one line, exit 2, when a non-root user meets a root-owned DATA_DIR', async () => {
    const dataDir = join(tmp.path, 'root-owned');
    await mkdir(dataDir, { mode: 0o755 });
    const r = await runCommand(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        // May read and search anything (the checkout may sit under a 0700 directory), never write:
        // the check under test is about writing.
        '--inh-caps=+dac_read_search',
        '--ambient-caps=+dac_read_search',
        process.execPath,
        builtMain,
      ],
      { env: { PATH: process.env.PATH, DATA_DIR: dataDir, HOST: '127.0.0.1' }, timeoutMs: 30_000 },
    );
    expect(r.code).toBe(2);
    const lines = (r.stdout + r.stderr).trim().split('\n');
    expect(lines).toEqual([
      `gatehouse: cannot start: DATA_DIR=${dataDir} is not writable by uid 65534 (EACCES; it is owned by uid 0:0, mode 755). A bind mount keeps the host directory's owner: mount a named volume there (docker run -v gatehouse-data:${dataDir}), or chown -R 65534 the host directory`,
    ]);
  });
});
