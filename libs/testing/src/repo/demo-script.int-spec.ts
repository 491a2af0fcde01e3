import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '../../../..');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function run(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done, fail) => {
    const child = spawn('bash', args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (err += String(d)));
    child.once('error', fail);
    child.once('close', (code) => done({ code, out, err }));
  });
}

/**
 * `bash scripts/demo.sh` end to end, as a new user runs it: setup, build, the seeded Forgejo-like
 * upstream, the gateway, a member entitled to an image, a release and a package; a pull, a curl
 * download and a resumed one, a signature verified through the gateway, one refusal of each kind
 * with explain's verdict. Its own DEMO_DIR and pinned ports, so a developer's demo is untouched.
 */
describe('the demo script', () => {
  const dir = join('.tmp', `demo-test-${process.pid}`);
  const env: NodeJS.ProcessEnv = { ...process.env, DEMO_DIR: dir };
  let result: { code: number | null; out: string; err: string };
  let ports: { gateway: number; registry: number; database: number };

  beforeAll(async () => {
    ports = { gateway: await freePort(), registry: await freePort(), database: await freePort() };
    Object.assign(env, {
      DEMO_PORT: String(ports.gateway),
      DEMO_REGISTRY_PORT: String(ports.registry),
      DEMO_DATABASE_PORT: String(ports.database),
    });
    // A previous run's leftovers: the demo starts from a fresh state.
    mkdirSync(join(root, dir), { recursive: true });
    writeFileSync(join(root, dir, 'leftover'), 'from an earlier run\n');
    result = await run(['scripts/demo.sh'], env);
  }, 900_000);

  afterAll(async () => {
    await run(['scripts/demo-stop.sh'], env);
    rmSync(join(root, dir), { recursive: true, force: true });
  }, 120_000);

  it('exits 0 having run every step, from a fresh state', () => {
    expect({ code: result.code, err: result.err.slice(-2000) }).toMatchObject({ code: 0 });
    for (let n = 1; n <= 11; n++) expect(result.out).toContain(`[${n}/11] `);
    expect(result.out).not.toMatch(/FAILED/);
    expect(existsSync(join(root, dir, 'leftover'))).toBe(false);
  });

  it('says what the first step installs, how long it takes, and names its log', () => {
    expect(result.out).toContain(`[1/11] installing prerequisites (log: ${dir}/setup.log)`);
    expect(result.out).toMatch(/what: missing Debian packages \(docker-registry, skopeo/);
    expect(result.out).toMatch(/usually: about 2 minutes on a fresh machine/);
    expect(result.out).toMatch(/npm dependencies: node_modules matches|npm ci: \d+ package files fetched/);
  });

  it('downloads with curl, whole and resumed, and checks the bytes', () => {
    expect(result.out).toMatch(
      /downloading tool-linux-amd64 v1\.2\.0 with curl, whole and resumed \.\.\. ok \([\d.]+ s, 10485883 bytes twice \(resumed at byte \d+\), sha256 \w+… matches upstream\)/,
    );
    expect(result.out).toMatch(
      /curl -fLO -C - -u "demo:\$\(cat .+access-key\)" http:\/\/localhost:\d+\/downloads\//,
    );
  });

  it('verifies the signature through the gateway and lists the SBOM among the referrers', () => {
    expect(result.out).toMatch(
      /verifying the signature with cosign .* ok \([\d.]+ s, signature of sha256:\w+… verified/,
    );
    expect(result.out).toMatch(/cosign verify --key .+sigstore\.pub/);
    expect(result.out).toMatch(/lists: application\/spdx\+json sha256:[0-9a-f]{64}/);
  });

  it('shows one refusal of each kind with the answer explain names', () => {
    expect(result.out).toMatch(/docker pull localhost:\d+\/acme\/app:v1\.1\.0\n\s+-> 404 MANIFEST_UNKNOWN/);
    expect(result.out).toMatch(/releases\/acme\/tool\/v2\.0\.0\/tool-linux-amd64\n\s+-> 404 NAME_UNKNOWN/);
    expect(result.out).toMatch(/packages\/acme\/cli\/2\.0\.0\/cli\.tar\.gz\n\s+-> 404 NAME_UNKNOWN/);
    expect(result.out.match(/-> NOT ALLOWED \(tag_not_entitled\)/g)).toHaveLength(3);
    expect(result.out).toContain('bin/gatehouse explain demo releases:acme/tool@v2.0.0');
  });

  it('prints logins with --password-stdin only, and the ports it was pinned to', () => {
    expect(result.out).toMatch(/docker login localhost:\d+ -u demo --password-stdin/);
    expect(result.out).not.toMatch(/login .* -p /);
    expect(result.out).toContain(`port ${ports.registry} (log:`);
    expect(result.out).toContain(`embedded PostgreSQL: 127.0.0.1:${ports.database}`);
  });
});
