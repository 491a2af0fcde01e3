import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { request } from 'undici';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { runCommand } from '@gatehouse/testing/upstream';
import {
  buildGatewayImage,
  BuiltImage,
  containerState,
  DockerEngine,
  runContainer,
  startDockerEngine,
  waitExited,
  waitHealthy,
} from '@gatehouse/testing/engine';
import {
  ForgejoFront,
  generatePat,
  getFreePort,
  prepareSeededStorage,
  RegistryProcess,
  SeedInfo,
  seedBlobs,
  seedImage,
  startForgejoFront,
  startRegistry,
} from '@gatehouse/testing/upstream';

const REPO_ROOT = resolve(__dirname, '../../../..');

/** Every regular file under `dir`, recursively, with its owner. */
function filesUnder(dir: string): Array<{ path: string; uid: number }> {
  const out: Array<{ path: string; uid: number }> = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(p));
    else if (entry.isFile()) out.push({ path: p, uid: statSync(p).uid });
  }
  return out;
}

/**
 * The real-engine tier, operator side: `just image` builds gatehouse:local into a private
 * Docker engine (a local base image when Docker Hub is out of reach), and the image runs as
 * operators run it: non-root, fresh named volumes on /data and /data/cache, PostgreSQL over
 * host networking, its HEALTHCHECK, docker pulls through it, SIGTERM, and the failure a
 * root-owned bind mount must give. The image is built once for the whole file.
 */
// Every `docker run` copies the image's filesystem twice with vfs: minutes on a busy machine.
jest.setTimeout(10 * 60_000);

describe('real engine: the production image', () => {
  let seed: SeedInfo;
  let registry: RegistryProcess;
  let front: ForgejoFront;
  let engine: DockerEngine;
  let image: BuiltImage;
  let db: TestDatabase;
  let port: number;
  const pat = generatePat('engine-image');
  const run = randomBytes(3).toString('hex');
  const name = `gatehouse-${run}`;
  const dataVolume = `gatehouse-data-${run}`;
  const cacheVolume = `gatehouse-cache-${run}`;
  const timings: Record<string, number> = {};
  let member: { username: string; key: string };

  const gatewayEnv = (): Record<string, string> => ({
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: db.url,
    FORGEJO_BASE_URL: front.url,
    FORGEJO_API_TOKEN: pat,
    FORGEJO_API_USERNAME: 'gatehouse',
    OCI_REGISTRY_SERVICE: `127.0.0.1:${port}`,
    OCI_REGISTRY_REALM: `http://127.0.0.1:${port}/auth/token`,
    UPSTREAM_RETRIES: '0',
  });
  const gw = () => `127.0.0.1:${port}`;

  /** The operator's CLI inside the running container (`docker exec ... gatehouse ...`). */
  async function cli(args: string[]): Promise<string> {
    const r = await engine.docker(['exec', name, 'gatehouse', ...args]);
    if (r.code !== 0) throw new Error(`gatehouse ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  beforeAll(async () => {
    seed = await prepareSeededStorage();
    registry = await startRegistry({ copyFrom: seed.storageDir });
    front = await startForgejoFront({
      upstreamUrl: registry.url,
      knownOwners: ['acme'],
      tokens: { [pat]: { scopes: ['read:package'] } },
    });
    port = await getFreePort();
    let t = Date.now();
    engine = await startDockerEngine({ insecureRegistries: [`127.0.0.1:${port}`] });
    timings.engineStartSeconds = (Date.now() - t) / 1000;
    image = await buildGatewayImage(engine);
    timings.imageBuildSeconds = image.seconds;
    // An empty database: the container migrates it at start, as in production.
    db = await createTestDatabase({ migrate: false });
    t = Date.now();
    await runContainer(engine, {
      name,
      image: image.tag,
      env: gatewayEnv(),
      volumes: [`${dataVolume}:/data`, `${cacheVolume}:/data/cache`],
    });
    timings.healthySeconds = (await waitHealthy(engine, name)) / 1000;
    timings.sinceContainerStartSeconds = (Date.now() - t) / 1000;
    const username = `op-${run}`;
    await cli(['member', 'create', username]);
    const { key } = JSON.parse(await cli(['key', 'create', username, '--format', 'json'])) as { key: string };
    await cli(['grant', username, 'acme/app', '--tags', 'v1.0.0']);
    await cli(['grant', username, 'acme/big', '--tags', '*']);
    member = { username, key };
    // The image build (a fresh clone: debootstrap, npm ci, vfs copies) takes minutes.
  }, 25 * 60_000);

  afterAll(async () => {
    mkdirSync(join(REPO_ROOT, '.tmp'), { recursive: true });
    writeFileSync(join(REPO_ROOT, '.tmp', 'engine-image-timings.json'), JSON.stringify(timings, null, 2));
    if (engine) await engine.docker(['rm', '-f', name]);
    await engine?.stop();
    await db?.drop();
    await front?.stop();
    await registry?.stop();
  });

  it('runs as the non-root user with a passing HEALTHCHECK', async () => {
    const config = await engine.docker(['image', 'inspect', '--format', '{{json .Config}}', image.tag]);
    const c = JSON.parse(config.stdout) as { User: string; Healthcheck: { Test: string[] } };
    expect(c.User).toBe('gatehouse');
    expect(c.Healthcheck.Test).toEqual(['CMD', 'node', '/app/docker/healthcheck.js']);
    const id = await engine.docker(['exec', name, 'id', '-u']);
    expect(id.stdout.trim()).toBe('10001');
    expect(await containerState(engine, name)).toMatchObject({ status: 'running', health: 'healthy' });
  });

  it('serves docker pull with the blobs landing in the named cache volume, owned by uid 10001', async () => {
    const app = seedImage(seed, 'acme/app', 'v1.0.0');
    const login = await engine.docker(['login', '-u', member.username, '-p', member.key, gw()]);
    expect(login.code).toBe(0);
    const t = Date.now();
    const pull = await engine.docker(['pull', `${gw()}/acme/app:v1.0.0`]);
    timings.dockerPullSeconds = (Date.now() - t) / 1000;
    expect({ code: pull.code, stderr: pull.stderr }).toEqual({ code: 0, stderr: '' });
    expect(pull.stdout).toContain(`Digest: ${app.digest}`);

    const mount = await engine.docker(['volume', 'inspect', '--format', '{{.Mountpoint}}', cacheVolume]);
    const files = filesUnder(mount.stdout.trim());
    const amd64 = app.manifests.find((m) => m.platform.architecture === 'amd64')!;
    for (const blob of [amd64.config, ...amd64.layers]) {
      const file = files.find((f) => f.path.endsWith(blob.digest.slice(7)));
      expect({ blob: blob.digest, found: !!file, uid: file?.uid }).toEqual({
        blob: blob.digest,
        found: true,
        uid: 10001,
      });
    }
    // Only what this engine pulled: the arm64 layers were never asked for.
    const arm64Only = seedBlobs(app).filter(
      (b) => ![amd64.config, ...amd64.layers].some((a) => a.digest === b.digest),
    );
    for (const b of arm64Only) expect(files.some((f) => f.path.endsWith(b.digest.slice(7)))).toBe(false);
  });

  it('finishes the transfer in flight on SIGTERM (docker stop), stores its audit row and exits 0', async () => {
    const big = seedImage(seed, 'acme/big', '1.0').manifests[0].layers[0];
    const tokenRes = await fetch(`http://${gw()}/auth/token?service=${gw()}&scope=repository:acme/big:pull`, {
      headers: {
        authorization: 'Basic ' + Buffer.from(`${member.username}:${member.key}`).toString('base64'),
      },
    });
    expect(tokenRes.status).toBe(200);
    const { token } = (await tokenRes.json()) as { token: string };
    const res = await request(`http://${gw()}/v2/acme/big/blobs/${big.digest}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.statusCode).toBe(200);
    const hash = createHash('sha256');
    let bytes = 0;
    let stopping: Promise<unknown> | undefined;
    let signalledAt = 0;
    for await (const chunk of res.body) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
      if (!stopping && bytes > 1024 * 1024) {
        signalledAt = Date.now();
        // What `docker compose stop` does: SIGTERM to the gateway, SIGKILL after 30 s.
        stopping = engine.docker(['stop', '-t', '30', name], { timeoutMs: 60_000 });
        // A slow client: the response stays in flight for seconds after the signal.
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    expect(signalledAt).toBeGreaterThan(0);
    expect(bytes).toBe(big.size);
    expect('sha256:' + hash.digest('hex')).toBe(big.digest);
    await stopping;
    expect(await waitExited(engine, name)).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(25_000);
    const logs = await engine.docker(['logs', name]);
    expect(logs.stdout + logs.stderr).toContain('received SIGTERM');

    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ outcome: string; bytes: string }>(
        'SELECT outcome, bytes FROM audit_events WHERE username = $1 AND action = $2 AND digest = $3',
        [member.username, 'blob.get', big.digest],
      );
      expect(rows.map((r) => [r.outcome, Number(r.bytes)])).toEqual([['allowed', big.size]]);
    } finally {
      await client.end();
    }
  });

  it('refuses to start on a root-owned bind mount of /data, in one line naming it and the fix', async () => {
    // What an operator gets with `-v /srv/gatehouse:/data` on a directory root created.
    const hostDir = join(engine.dir, 'root-owned-data');
    mkdirSync(hostDir, { mode: 0o755 });
    const bad = `gatehouse-bind-${run}`;
    await runContainer(engine, {
      name: bad,
      image: image.tag,
      env: gatewayEnv(),
      volumes: [`${hostDir}:/data`],
    });
    try {
      expect(await waitExited(engine, bad)).toBe(2);
      const logs = await engine.docker(['logs', bad]);
      const lines = (logs.stdout + logs.stderr).trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^gatehouse: cannot start: DATA_DIR=\/data is not writable by uid 10001 \(EACCES; it is owned by uid 0:0, mode 755\)\. .*mount a named volume there \(docker run -v gatehouse-data:\/data\), or chown -R 10001 the host directory$/,
      );
    } finally {
      await engine.docker(['rm', '-f', bad]);
    }
  });

  it('compose.yml: the gateway service comes up healthy on its named volumes, with an external database', async () => {
    // As far as this machine allows: no Docker Hub, so no postgres:17 image; the gateway
    // service runs with --no-deps against the test PostgreSQL over host networking.
    const project = join(engine.dir, 'compose-project');
    mkdirSync(project);
    const composeDb = await createTestDatabase({ migrate: false });
    try {
      // .env as an operator writes it: .env.example with the required values filled in.
      const values: Record<string, string> = {
        POSTGRES_PASSWORD: 'unused-here',
        FORGEJO_BASE_URL: front.url,
        FORGEJO_API_TOKEN: pat,
        OCI_REGISTRY_SERVICE: gw(),
        OCI_REGISTRY_REALM: `http://${gw()}/auth/token`,
      };
      let env = readFileSync(join(REPO_ROOT, '.env.example'), 'utf8');
      for (const [k, v] of Object.entries(values)) {
        const line = new RegExp(`^#?\\s*${k}=.*$`, 'm');
        env = line.test(env) ? env.replace(line, `${k}=${v}`) : `${env}\n${k}=${v}\n`;
      }
      writeFileSync(join(project, '.env'), env);
      // The real compose.yml with the gateway switched to host networking, so it reaches the
      // test's upstream and database on loopback, on the test's port. docker-compose 1.29
      // refuses host networking with published ports, and an override file cannot remove a
      // key, hence a derived copy: everything else is the file operators use.
      const file = parseYaml(readFileSync(join(REPO_ROOT, 'compose.yml'), 'utf8')) as {
        services: { gateway: Record<string, unknown> & { environment: Record<string, string> } };
      };
      const service = file.services.gateway;
      delete service.ports;
      service.network_mode = 'host';
      Object.assign(service.environment, {
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: composeDb.url,
      });
      const composeFile = join(project, 'compose.yml');
      // YAML 1.1 on output: docker-compose 1.29 reads 1.1, where an unquoted `no` is false.
      writeFileSync(composeFile, stringifyYaml(file, { version: '1.1' }));
      const compose = (args: string[]) =>
        runCommand('bash', [join(REPO_ROOT, 'scripts/compose.sh'), composeFile, ...args], {
          env: { ...process.env, ...engine.env, COMPOSE_PROJECT_DIR: project },
          timeoutMs: 120_000,
        });
      const t = Date.now();
      const up = await compose(['up', '-d', '--no-deps', '--no-build', 'gateway']);
      // compose prints progress on stderr: shown only when the exit code is wrong.
      expect(up.code === 0 ? 0 : `${up.code}: ${up.stderr}`).toBe(0);
      const ps = await engine.docker([
        'ps',
        '-a',
        '--filter',
        'label=com.docker.compose.service=gateway',
        '--format',
        '{{.Names}}',
      ]);
      const container = ps.stdout.trim();
      expect(container).toMatch(/^gatehouse[_-]gateway[_-]1$/);
      await waitHealthy(engine, container, 120_000);
      timings.composeHealthySeconds = (Date.now() - t) / 1000;

      const volumes = await engine.docker(['volume', 'ls', '--format', '{{.Name}}']);
      expect(volumes.stdout.split('\n')).toEqual(
        expect.arrayContaining(['gatehouse_gatehouse-data', 'gatehouse_gatehouse-cache']),
      );
      expect((await engine.docker(['exec', container, 'id', '-u'])).stdout.trim()).toBe('10001');
      const list = await compose(['exec', '-T', 'gateway', 'gatehouse', 'member', 'list']);
      expect(list.code === 0 ? 0 : `${list.code}: ${list.stderr}`).toBe(0);
      const v2 = await fetch(`http://${gw()}/v2/`);
      expect(v2.status).toBe(401);
      expect(v2.headers.get('www-authenticate')).toContain(`realm="http://${gw()}/auth/token"`);

      // init: true forwards SIGTERM; the gateway drains and exits 0.
      const stop = await compose(['stop', 'gateway']);
      expect(stop.code).toBe(0);
      expect(await containerState(engine, container)).toMatchObject({ status: 'exited', exitCode: 0 });
      const down = await compose(['down', '-v']);
      expect(down.code).toBe(0);
    } finally {
      await composeDb.drop();
    }
  });
});
