import { createHash, randomBytes } from 'node:crypto';
import { seedImage, seedManifestFor } from '@gatehouse/testing/upstream';
import {
  HardeningStack,
  median,
  Member,
  rawRequest,
  RawResponse,
  startHardeningStack,
} from './hardening-stack';

const sha256 = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/**
 * What a member can compare between two answers: everything but the per-request id and the clock.
 * An error body names its request id (for support); it must be this response's own id, and it
 * is masked, nothing else.
 */
function comparable(res: RawResponse): { status: number; headers: Record<string, string>; body: string } {
  const headers = { ...res.headers };
  const requestId = headers['x-request-id'];
  delete headers['x-request-id'];
  delete headers['date'];
  let body = res.body.toString('utf8');
  if (body.includes('"errors"')) {
    expect(requestId).toMatch(/^[\w.-]{8,}$/);
    expect(body).toContain(`"requestId":"${requestId}"`);
    body = body.split(requestId).join('<request id>');
  }
  return { status: res.status, headers, body };
}

describe('isolation between members, and secrets that never leak', () => {
  let s: HardeningStack;
  let alice: Member;
  let bob: Member;
  let pinned: Member;
  /** Every response any test of this suite received, to grep for the service token. */
  const seen: Buffer[] = [];

  const get = async (who: Member | null, path: string, scopes: string[] = [], method = 'GET') => {
    const headers: Array<[string, string]> = [];
    if (who) headers.push(['Authorization', `Bearer ${await s.token(who, scopes)}`]);
    const res = await rawRequest(s.gw.port, { method, path, headers });
    seen.push(res.raw);
    return res;
  };

  beforeAll(async () => {
    s = await startHardeningStack({ env: { OCI_TAG_TTL_SECONDS: '300' } });
    alice = await s.member({ 'acme/app': ['*'] });
    bob = await s.member({ 'other/secret': ['*'] });
    pinned = await s.member({ 'acme/app': ['v1.0.0'] });
  });

  afterAll(async () => {
    await s?.stop();
  });

  it("lets alice pull nothing of bob's repository, and tells her nothing about it", async () => {
    const secret = seedImage(s.seed, 'other/secret', '1.0');
    const layer = secret.manifests[0].layers[0];
    // Bob can.
    expect((await get(bob, '/v2/other/secret/manifests/1.0', ['repository:other/secret:pull'])).status).toBe(
      200,
    );

    const scope = ['repository:other/secret:pull'];
    const unknownScope = ['repository:other/nothing:pull'];
    const pairs: Array<[string, string, string[], string[]]> = [
      ['/v2/other/secret/manifests/1.0', '/v2/other/nothing/manifests/1.0', scope, unknownScope],
      [
        `/v2/other/secret/manifests/${secret.digest}`,
        `/v2/other/nothing/manifests/${secret.digest}`,
        scope,
        unknownScope,
      ],
      [
        `/v2/other/secret/blobs/${layer.digest}`,
        `/v2/other/nothing/blobs/${layer.digest}`,
        scope,
        unknownScope,
      ],
      ['/v2/other/secret/tags/list', '/v2/other/nothing/tags/list', scope, unknownScope],
      // A login token (no scope) must not make the difference visible either.
      ['/v2/other/secret/manifests/1.0', '/v2/other/nothing/manifests/1.0', [], []],
    ];
    s.front.resetCounts();
    for (const [exists, missing, scopeA, scopeB] of pairs) {
      const a = comparable(await get(alice, exists, scopeA));
      const b = comparable(await get(alice, missing, scopeB));
      expect(a.status).toBe(404);
      expect({ path: exists, ...a, body: a.body.replace('other/secret', 'NAME') }).toEqual({
        path: exists,
        ...b,
        body: b.body.replace('other/nothing', 'NAME'),
      });
      for (const method of ['HEAD']) {
        const ha = comparable(await get(alice, exists, scopeA, method));
        const hb = comparable(await get(alice, missing, scopeB, method));
        expect(ha).toEqual(hb);
      }
    }
    // Refusals were decided without asking upstream about bob's repository.
    expect(s.front.countRequests((r) => r.repository === 'other/secret')).toBe(0);

    const catalog = await get(alice, '/v2/_catalog', ['registry:catalog:*']);
    expect(JSON.parse(catalog.body.toString())).toEqual({ repositories: ['acme/app'] });
    const catalogPaged = await get(alice, '/v2/_catalog?n=1&last=acme/app', ['registry:catalog:*']);
    expect(JSON.parse(catalogPaged.body.toString())).toEqual({ repositories: [] });
  });

  it("grants alice no scope on bob's repository, exactly as for one that does not exist", async () => {
    const grants = async (scope: string) => {
      const res = await fetch(
        `${s.gw.url}/auth/token?service=${s.gw.host}&scope=${encodeURIComponent(scope)}`,
        { headers: { authorization: alice.basic } },
      );
      expect(res.status).toBe(200);
      const { token } = (await res.json()) as { token: string };
      return (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { access: unknown[] })
        .access;
    };
    expect(await grants('repository:other/secret:pull')).toEqual([]);
    expect(await grants('repository:other/nothing:pull')).toEqual([]);
  });

  it('answers "exists but not entitled" and "does not exist" in the same time, within noise', async () => {
    // Pinned to v1.0.0: v1.1.0 exists upstream, v9.9.9 does not. Both are refused by the rule
    // before upstream is asked, so the time must not tell them apart. Same for a digest.
    const v11 = seedImage(s.seed, 'acme/app', 'v1.1.0');
    const token = await s.token(pinned, ['repository:acme/app:pull']);
    const other = await s.token(alice, ['repository:other/secret:pull']);
    const fake = `sha256:${randomBytes(32).toString('hex')}`;
    const cases: Array<[string, string, string, string]> = [
      ['tag', '/v2/acme/app/manifests/v1.1.0', '/v2/acme/app/manifests/v9.9.9', token],
      ['digest', `/v2/acme/app/manifests/${v11.digest}`, `/v2/acme/app/manifests/${fake}`, token],
      ['repository', '/v2/other/secret/manifests/1.0', '/v2/other/nothing/manifests/1.0', other],
    ];
    const time = async (path: string, t: string) => {
      const started = process.hrtime.bigint();
      const res = await rawRequest(s.gw.port, { path, headers: [['Authorization', `Bearer ${t}`]] });
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      expect(res.status).toBe(404);
      return ms;
    };
    const report: Record<string, unknown> = {};
    for (const [what, exists, missing, t] of cases) {
      // Warm both paths, then interleave so load on the machine hits both series alike.
      for (let i = 0; i < 5; i++) await Promise.all([time(exists, t), time(missing, t)]);
      const a: number[] = [];
      const b: number[] = [];
      for (let i = 0; i < 50; i++) {
        if (i % 2) {
          a.push(await time(exists, t));
          b.push(await time(missing, t));
        } else {
          b.push(await time(missing, t));
          a.push(await time(exists, t));
        }
      }
      const all = [...a, ...b].sort((x, y) => x - y);
      const iqr = all[Math.floor(all.length * 0.75)] - all[Math.floor(all.length * 0.25)];
      const diff = Math.abs(median(a) - median(b));
      report[what] = { existsMs: median(a), missingMs: median(b), diffMs: diff, iqrMs: iqr };
      // An upstream round trip or a database query would cost milliseconds; noise on a busy
      // 2-core machine is about the spread. Allow the larger of 1 ms and the spread.
      expect({ what, diff: diff <= Math.max(1, iqr) }).toEqual({ what, diff: true });
    }
    // The figures go to dev-docs/security.md ("Hardening results").
    process.stdout.write(`timing medians: ${JSON.stringify(report)}\n`);
  });

  it('refuses an unknown user and a known user with a wrong key with the same answer in the same time', async () => {
    // Both run the same path (an HMAC of the presented key, one indexed lookup, a miss), so
    // neither the body nor the time may tell an attacker which usernames exist.
    const wrongKey = `ghk_${randomBytes(32).toString('base64url')}`;
    const basic = (user: string) => 'Basic ' + Buffer.from(`${user}:${wrongKey}`).toString('base64');
    const time = async (user: string) => {
      const started = process.hrtime.bigint();
      const res = await rawRequest(s.gw.port, {
        path: `/auth/token?service=${s.gw.host}`,
        headers: [['Authorization', basic(user)]],
      });
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      expect(res.status).toBe(401);
      // The body names its own request id (masked by comparable); nothing else may differ.
      return { ms, body: comparable(res).body };
    };
    const known = alice.username;
    const unknown = `nobody-${randomBytes(4).toString('hex')}`;
    const [k0, u0] = [await time(known), await time(unknown)];
    expect(k0.body).toBe(u0.body);
    for (let i = 0; i < 5; i++) await Promise.all([time(known), time(unknown)]);
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < 50; i++) {
      if (i % 2) {
        a.push((await time(known)).ms);
        b.push((await time(unknown)).ms);
      } else {
        b.push((await time(unknown)).ms);
        a.push((await time(known)).ms);
      }
    }
    const all = [...a, ...b].sort((x, y) => x - y);
    const iqr = all[Math.floor(all.length * 0.75)] - all[Math.floor(all.length * 0.25)];
    const diff = Math.abs(median(a) - median(b));
    process.stdout.write(
      `login timing medians: ${JSON.stringify({ knownMs: median(a), unknownMs: median(b), diff, iqr })}\n`,
    );
    expect(diff <= Math.max(1, iqr)).toBe(true);
  });

  it('follows redirects to another origin without Authorization (the storage side refuses it)', async () => {
    s.front.setServeDirect(true);
    try {
      const tool = seedImage(s.seed, 'acme/app', 'v1.1.0');
      const m = seedManifestFor(tool, 'arm64');
      s.front.resetCounts();
      const manifest = await get(alice, `/v2/acme/app/manifests/${m.digest}`, ['repository:acme/app:pull']);
      expect(manifest.status).toBe(200);
      expect(sha256(manifest.body)).toBe(m.digest);
      for (const blob of [m.config, ...m.layers]) {
        const res = await get(alice, `/v2/acme/app/blobs/${blob.digest}`, ['repository:acme/app:pull']);
        expect({ digest: blob.digest, status: res.status }).toEqual({ digest: blob.digest, status: 200 });
        expect(sha256(res.body)).toBe(blob.digest);
      }
      const storage = s.front.requests.filter((r) => r.server === 'storage');
      expect(storage.length).toBeGreaterThan(0);
      expect(storage.map((r) => r.auth)).toEqual(storage.map(() => 'none'));
      expect(storage.map((r) => r.status)).toEqual(storage.map(() => 200));
    } finally {
      s.front.setServeDirect(false);
    }
  });

  it('keeps the service token out of responses, logs and errors, even when upstream refuses it', async () => {
    // Make upstream refuse the token so the diagnostic paths (operator line, 502) run too.
    s.front.revokeToken(s.pat);
    s.front.invalidateJwts();
    const v2 = seedImage(s.seed, 'acme/app', 'v2.0.0-rc.1');
    const refused = await get(alice, `/v2/acme/app/manifests/${v2.manifests[0].digest}`, [
      'repository:acme/app:pull',
    ]);
    expect(refused.status).toBeGreaterThanOrEqual(500);
    expect(JSON.parse(refused.body.toString())).toMatchObject({ errors: [{ code: expect.any(String) }] });
    const ready = await rawRequest(s.gw.port, { path: '/readyz' });
    seen.push(ready.raw);
    const metrics = await rawRequest(s.gw.port, { path: '/metrics' });
    seen.push(metrics.raw);

    const secrets = [
      s.pat,
      Buffer.from(`gatehouse:${s.pat}`).toString('base64'),
      encodeURIComponent(s.pat),
      alice.key,
      bob.key,
    ];
    const responses = Buffer.concat(seen).toString('latin1');
    const logs = s.gw.rawLogs();
    expect(logs).toMatch(/FORGEJO_API_TOKEN/); // the operator was told, by name
    for (const secret of secrets) {
      expect(responses.includes(secret)).toBe(false);
      expect(logs.includes(secret)).toBe(false);
    }
    // No bearer token of any kind (member or upstream JWT) in a log line either.
    expect(logs).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/);
    // Every line is JSON and none carries a raw Authorization header.
    for (const line of s.gw.logs)
      expect(JSON.stringify(line)).not.toMatch(/"authorization":"(Basic|Bearer) /i);
  });
});
