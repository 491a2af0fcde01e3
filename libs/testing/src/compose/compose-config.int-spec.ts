import { execFile } from 'node:child_process';
import { copyFileSync, appendFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, TempDir } from '../upstream/tmp';

const root = resolve(__dirname, '../../../..');
const run = promisify(execFile);

/** The composes on this machine: v2 as `docker compose`, Debian's v1.29 as `docker-compose`. */
async function composesPresent(): Promise<string[]> {
  const found: string[] = [];
  if (
    await run('docker', ['compose', 'version']).then(
      () => true,
      () => false,
    )
  )
    found.push('docker compose');
  if (
    await run('docker-compose', ['version']).then(
      () => true,
      () => false,
    )
  )
    found.push('docker-compose');
  return found;
}

/**
 * Every compose file of the repository, through the one documented command
 * (`bash scripts/compose.sh FILE …`), with every compose this machine has: `config` parses and
 * validates the file as an `up` would, interpolation included, without an engine. The project
 * directory is a scratch one holding `.env.example` plus the one value compose.yml demands.
 */
describe('the compose files with the composes present', () => {
  let dir: TempDir;
  let composes: string[];
  const files = readdirSync(root).filter((f) => /^compose(\..+)?\.ya?ml$/.test(f));

  beforeAll(async () => {
    composes = await composesPresent();
    // The compose scripts/setup.sh installs is required; compose v2 is checked too when present.
    if (!composes.includes('docker-compose'))
      throw new Error('docker-compose is missing: install Debian docker-compose (bash scripts/setup.sh)');
    dir = await makeTempDir('compose-config');
    copyFileSync(join(root, '.env.example'), join(dir.path, '.env'));
    appendFileSync(join(dir.path, '.env'), '\nPOSTGRES_PASSWORD=compose-config-test\n');
  });
  afterAll(() => dir?.cleanup());

  it('finds the files', () => {
    expect(files).toEqual(expect.arrayContaining(['compose.yml', 'compose.dev.yml']));
  });

  it.each(files)('%s: `config` succeeds with each compose present', async (file) => {
    for (const compose of composes) {
      const { stdout } = await run('bash', [join(root, 'scripts/compose.sh'), file, 'config'], {
        cwd: root,
        env: { ...process.env, COMPOSE: compose, COMPOSE_PROJECT_DIR: dir.path },
      });
      expect({ compose, services: /^services:/m.test(stdout) }).toEqual({ compose, services: true });
    }
  });

  it('Debian docker-compose 1.29 refuses the raw file, which is why the command exists', async () => {
    const raw = await run(
      'docker-compose',
      ['--project-directory', dir.path, '-f', join(root, 'compose.yml'), 'config', '-q'],
      {
        cwd: dir.path,
      },
    ).then(
      () => 'accepted',
      (e: { stderr: string }) => e.stderr,
    );
    expect(raw).toMatch(/'name' does not match any of the regexes/);
  });
});
