import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenSigningKey } from '@gatehouse/auth';
import { seedImage } from '@gatehouse/testing/upstream';
import {
  HardeningStack,
  Member,
  rawRequest,
  RawResponse,
  snapshotTree,
  startHardeningStack,
  treeDifference,
} from './hardening-stack';

// What the hostile-input specs share: the stack with one entitled member (alice) and her token,
// a snapshot of what a legitimate pull writes, the contract every hostile request is held to,
// and the checks run after them all. A spec file calls useHostileInputStack() once, in its outer
// describe block, and describeAfterwards() last in it: each file starts its own stack, so each
// checks its own afterwards. The bindings below are set by that beforeAll (imports of them are
// live), so they are read in hooks and tests, never while the file is collected.

/** A marker no legitimate file carries: hostile names embed it, and no file may ever be named after it. */
export const MARKER = `hx${randomBytes(4).toString('hex')}`;

export interface Envelope {
  errors: Array<{ code: string; message: string; detail?: unknown }>;
}

/** The contract for every hostile request: a 4xx with the OCI envelope, never a 5xx or a hang. */
export function expectOciClientError(res: RawResponse, what: string, method = 'GET'): Envelope | null {
  const context = `${what} -> ${res.status} ${res.body.toString('utf8', 0, 300)}`;
  expect({ context, status: res.status >= 400 && res.status < 500 }).toEqual({ context, status: true });
  if (method === 'HEAD') return null;
  expect({ context, type: res.headers['content-type'] }).toEqual({
    context,
    type: expect.stringMatching(/^application\/json/),
  });
  const body = JSON.parse(res.body.toString('utf8')) as Envelope;
  expect({ context, ok: Array.isArray(body.errors) && body.errors.length > 0 }).toEqual({
    context,
    ok: true,
  });
  for (const e of body.errors) {
    expect(typeof e.code).toBe('string');
    expect(typeof e.message).toBe('string');
  }
  return body;
}

export function b64(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export let s: HardeningStack;
export let alice: Member;
export let aliceToken: string;
export let signingKey: TokenSigningKey;
let before: Map<string, string>;
let tmpBefore: Set<string>;

/** Registers the stack's start (beforeAll) and stop (afterAll) in the calling describe block. */
export function useHostileInputStack(): void {
  beforeAll(async () => {
    s = await startHardeningStack();
    alice = await s.member({ 'acme/app': ['v1.0.0'] });
    aliceToken = await s.token(alice, ['repository:acme/app:pull']);
    signingKey = s.gw.app.get(TokenSigningKey);
    // Warm what a legitimate pull writes, so the hostile run may write nothing at all.
    const ok = await rawRequest(s.gw.port, {
      path: '/v2/acme/app/manifests/v1.0.0',
      headers: [['Authorization', `Bearer ${aliceToken}`]],
    });
    expect(ok.status).toBe(200);
    before = await snapshotTree(s.gw.dataDir);
    tmpBefore = new Set(await readdir(tmpdir()));
  });

  afterAll(async () => {
    await s?.stop();
  });
}

export const bearer = (): [string, string] => ['Authorization', `Bearer ${aliceToken}`];
export const digest = () => seedImage(s.seed, 'acme/app', 'v1.0.0').digest;

/** Registers the `afterwards` checks of this file's stack: call last in the outer describe block. */
export function describeAfterwards(): void {
  describe('afterwards', () => {
    it('wrote nothing new in DATA_DIR (cache included) and nothing named after a hostile path anywhere', async () => {
      const after = await snapshotTree(s.gw.dataDir);
      const changed = treeDifference(before, after).filter(
        // The blob index and the access key's last-use stamp live in PostgreSQL, not here; the
        // readiness probe writes and deletes its own file. Nothing else may change.
        (line) => !/\.readyz-\d+$/.test(line),
      );
      expect(changed).toEqual([]);
      const tmpNow = await readdir(tmpdir());
      const leaked = tmpNow.filter((n) => !tmpBefore.has(n) && n.includes(MARKER));
      expect(leaked).toEqual([]);
      for (const root of [tmpdir(), s.gw.dataDir, join(s.gw.dataDir, '..')]) {
        const tree = await snapshotTree(root, 3).catch(() => new Map<string, string>());
        expect([...tree.keys()].filter((p) => p.includes(MARKER))).toEqual([]);
      }
    });

    it('logged no unhandled error and never a 5xx', () => {
      const lines = s.gw.logs;
      const failures = lines.filter(
        (l) => l.msg === 'unhandled error' || l.msg === 'request failed' || Number(l.level) >= 50,
      );
      expect(failures.map((l) => JSON.stringify(l).slice(0, 300))).toEqual([]);
    });
  });
}
