import { createHash, randomBytes } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from 'pg';
import { request } from 'undici';
import { TokenSigningKey } from '@gatehouse/auth';
import { EntitlementService } from '@gatehouse/entitlements';
import { AccessKeyService, MemberService } from '@gatehouse/members';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { BuiltGateway, createTestGateway, startBuiltGateway } from '@gatehouse/testing/gateway';
import { startTestNginx, TestNginx } from '@gatehouse/testing/nginx';
import { startTestRedis, TestRedis } from '@gatehouse/testing/redis';
import {
  ContainerToolsSandbox,
  createContainerToolsSandbox,
  ForgejoFront,
  generatePat,
  getFreePort,
  makeTempDir,
  prepareSeededStorage,
  RegistryProcess,
  SeedInfo,
  seedImage,
  seedLayersOnlyIn,
  startForgejoFront,
  startRegistry,
  TempDir,
} from '@gatehouse/testing/upstream';
import { NO_RATE_LIMITS } from '../hardening/hardening-stack';

type Replica = BuiltGateway & { port: number; url: string };

/**
 * Two built gateways behind Debian's nginx running docker/nginx.conf, sharing one PostgreSQL,
 * one Redis and the secret files, each with its own DATA_DIR; the Forgejo front and a real
 * registry upstream.
 */
describe('two replicas behind nginx', () => {
  let seed: SeedInfo;
  let registry: RegistryProcess;
  let front: ForgejoFront;
  let db: TestDatabase;
  let redis: TestRedis;
  let tmp: TempDir;
  let tools: ContainerToolsSandbox;
  let nginx: TestNginx;
  let replicas: Replica[] = [];
  let creds: string;
  let lbHost: string;
  const pat = generatePat('replicas');

  beforeAll(async () => {
    seed = await prepareSeededStorage();
    registry = await startRegistry({ copyFrom: seed.storageDir });
    front = await startForgejoFront({
      upstreamUrl: registry.url,
      knownOwners: ['acme'],
      tokens: { [pat]: { scopes: ['read:package'] } },
    });
    db = await createTestDatabase();
    redis = await startTestRedis();
    tools = await createContainerToolsSandbox();
    tmp = await makeTempDir('replicas-nginx');
    await chmod(tmp.path, 0o755);
    const signing = join(tmp.path, 'token-signing-key.pem');
    const accessKey = join(tmp.path, 'access-key-secret');
    await writeFile(signing, TokenSigningKey.generatePem(), { mode: 0o600 });
    await writeFile(accessKey, randomBytes(32).toString('hex'), { mode: 0o600 });
    const lbPort = await getFreePort();
    lbHost = `127.0.0.1:${lbPort}`;
    const secrets = { TOKEN_SIGNING_KEY_FILE: signing, ACCESS_KEY_SECRET_FILE: accessKey };

    const setup = await createTestGateway({ databaseUrl: db.url, keepDatabase: true, env: secrets });
    const username = 'replicated';
    await setup.app.get(MemberService).create(username);
    const { key } = await setup.app.get(AccessKeyService).create(username, { name: 't' });
    await setup.app.get(EntitlementService).grant(username, 'acme/big', ['*']);
    await setup.app.get(EntitlementService).grant(username, 'acme/app', ['*']);
    await setup.close();
    creds = `${username}:${key}`;

    for (const name of ['a', 'b']) {
      const port = await getFreePort();
      const gw = startBuiltGateway({
        PORT: String(port),
        HOST: '127.0.0.1',
        DATA_DIR: join(tmp.path, `data-${name}`),
        DATABASE_URL: db.url,
        REDIS_URL: redis.url,
        ...secrets,
        FORGEJO_BASE_URL: front.url,
        FORGEJO_API_TOKEN: pat,
        FORGEJO_API_USERNAME: 'gatehouse',
        OCI_REGISTRY_SERVICE: lbHost,
        OCI_REGISTRY_REALM: `http://${lbHost}/auth/token`,
        TRUST_PROXY: 'loopback',
        UPSTREAM_RETRIES: '0',
        LOG_LEVEL: 'warn',
        ...NO_RATE_LIMITS,
      });
      const url = `http://127.0.0.1:${port}`;
      replicas.push({ ...gw, port, url });
    }
    await Promise.all(replicas.map((r) => r.waitUntilHealthy(r.url)));
    nginx = await startTestNginx({ port: lbPort, upstreams: replicas.map((r) => r.port) });
  });

  afterAll(async () => {
    await nginx?.stop();
    for (const r of replicas) {
      if (r.child.exitCode === null && r.child.signalCode === null) {
        r.child.kill('SIGTERM');
        await r.exited;
      }
    }
    replicas = [];
    await tools?.cleanup();
    await redis?.stop();
    await front?.stop();
    await registry?.stop();
    await db?.drop();
    await tmp?.cleanup();
  });

  async function token(base: string, repository: string): Promise<string> {
    const res = await fetch(`${base}/auth/token?service=${lbHost}&scope=repository:${repository}:pull`, {
      headers: { authorization: 'Basic ' + Buffer.from(creds).toString('base64') },
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { token: string }).token;
  }

  it('answers /readyz on each replica and through nginx', async () => {
    for (const r of replicas) expect((await fetch(`${r.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${nginx.url}/readyz`)).status).toBe(200);
  });

  it('skopeo pulls a multi-arch image through nginx', async () => {
    const r = await tools.skopeo([
      'copy',
      '--all',
      '--src-tls-verify=false',
      '--src-creds',
      creds,
      `docker://${lbHost}/acme/app:v1.0.0`,
      `oci:${join(tools.dir, 'through-nginx')}:x`,
    ]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  });

  it('writes the audit rows of both replicas to one table, each request once', async () => {
    const t = await token(nginx.url, 'acme/app');
    const ids: string[] = [];
    for (const r of replicas) {
      const res = await fetch(`${r.url}/v2/acme/app/manifests/v1.0.0`, {
        headers: { authorization: `Bearer ${t}`, accept: 'application/vnd.oci.image.index.v1+json' },
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      ids.push(res.headers.get('x-request-id')!);
    }
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      const until = Date.now() + 15_000;
      let found: Array<{ request_id: string; n: string }> = [];
      while (Date.now() < until) {
        found = (
          await client.query(
            `SELECT request_id, count(*) AS n FROM audit_events WHERE request_id = ANY($1) GROUP BY request_id`,
            [ids],
          )
        ).rows;
        if (found.length === 2) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(found.map((f) => [f.request_id, Number(f.n)]).sort()).toEqual(ids.map((id) => [id, 1]).sort());
      const dupes = await client.query(
        `SELECT request_id FROM audit_events GROUP BY request_id, action HAVING count(*) > 1`,
      );
      expect(dupes.rows).toEqual([]);
    } finally {
      await client.end();
    }
  });

  it('routes a blob by digest: 16 concurrent cold requests through nginx make one upstream fetch', async () => {
    const t = await token(nginx.url, 'acme/app');
    const [layer] = seedLayersOnlyIn(seed, 'acme/app:v1.1.0', 'acme/app:v1.0.0');
    front.resetCounts();
    const bodies = await Promise.all(
      Array.from({ length: 16 }, async () => {
        const res = await request(`${nginx.url}/v2/acme/app/blobs/${layer.digest}`, {
          headers: { authorization: `Bearer ${t}` },
        });
        const hash = createHash('sha256');
        for await (const chunk of res.body) hash.update(chunk as Buffer);
        return { status: res.statusCode, digest: 'sha256:' + hash.digest('hex') };
      }),
    );
    expect(bodies).toEqual(Array.from({ length: 16 }, () => ({ status: 200, digest: layer.digest })));
    expect(front.countRequests((r) => r.kind === 'blob' && r.reference === layer.digest)).toBe(1);
  });

  it('completes a blob pull on the client retry after the replica serving it is killed mid-transfer', async () => {
    const t = await token(nginx.url, 'acme/big');
    const big = seedImage(seed, 'acme/big', '1.0').manifests[0].layers[0];
    const url = `${nginx.url}/v2/acme/big/blobs/${big.digest}`;
    const headers = { authorization: `Bearer ${t}` };

    const first = await request(url, { headers });
    expect(first.statusCode).toBe(200);
    let bytes = 0;
    let killed: Replica | undefined;
    let cut = false;
    try {
      for await (const chunk of first.body) {
        bytes += (chunk as Buffer).length;
        if (!killed && bytes > 4 * 1024 * 1024) {
          killed = await servingReplica();
          killed.child.kill('SIGKILL');
          await killed.exited;
        }
      }
    } catch {
      cut = true;
    }
    expect(killed).toBeDefined();
    expect(cut || bytes < big.size).toBe(true);

    // The client's retry: nginx finds the dead replica refusing and sends it to the live one.
    const retry = await request(url, { headers });
    expect(retry.statusCode).toBe(200);
    const hash = createHash('sha256');
    let again = 0;
    for await (const chunk of retry.body) {
      hash.update(chunk as Buffer);
      again += (chunk as Buffer).length;
    }
    expect(again).toBe(big.size);
    expect('sha256:' + hash.digest('hex')).toBe(big.digest);
    const alive = replicas.filter((r) => r !== killed);
    expect((await fetch(`${alive[0].url}/readyz`)).status).toBe(200);
  });

  /** The replica whose gatehouse_blob_streams_active is 1. */
  async function servingReplica(): Promise<Replica> {
    for (const r of replicas) {
      const text = await (await fetch(`${r.url}/metrics`)).text();
      if (/^gatehouse_blob_streams_active(\{[^}]*\})? 1$/m.test(text)) return r;
    }
    throw new Error('no replica reports a blob stream in flight');
  }
});
