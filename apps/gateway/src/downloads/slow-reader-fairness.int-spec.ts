import { createHash } from 'node:crypto';
import { connect, Socket } from 'node:net';
import { request } from 'undici';
import { StackMember, startUpstreamGatewayStack, UpstreamGatewayStack } from '@gatehouse/testing/gateway';
import { deterministicBytes, seedImage } from '@gatehouse/testing/upstream';

/** How soon the second member's first byte comes, beyond what a cache hit takes on this machine now. */
const FIRST_BYTE_MS = 1000;
/** The slow member's pace: 40 KB/s. */
const SLOW_BYTES_PER_SECOND = 40_000;
/** Upstream and disk on loopback move tens of MB/s even on a busy machine; the slow member, 40 KB/s. */
const UPSTREAM_SPEED_BOUND_MS = 30_000;

/**
 * The first fetch of a file is paced by the upstream and the disk, never by one client: while one
 * member reads a cold release asset or blob at 40 KB/s on a raw socket, another member's first
 * download of the same file starts within a second and completes at upstream speed. The second is
 * counted on top of the time a small cache hit takes the same member just before (the baseline),
 * so a loaded machine does not fail the test while a wait for the slow reader (minutes) does.
 */
describe('a slow first reader holds nobody else (downloads and blobs)', () => {
  let stack: UpstreamGatewayStack;
  let alice: StackMember;
  let bob: StackMember;
  const asset = deterministicBytes('bigrel-1.0.0', 32 * 1024 * 1024 + 17);
  const sockets: Socket[] = [];

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({ patLabel: 'slow-reader' });
    stack.front.setTokenScopes(stack.pat, ['read:package', 'read:repository']);
    stack.front.addRelease('acme/bigrel', {
      tag: 'v1.0.0',
      assets: { 'big.bin': asset, 'small.txt': Buffer.from('small\n') },
    });
    const grants = { 'releases:acme/bigrel': ['*'], 'acme/big': ['*'] };
    alice = await stack.member('alice', grants);
    bob = await stack.member('bob', grants);
  }, 180_000);

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await stack?.stop();
  });

  /**
   * A GET on a raw socket that reads 40 KB/s. Resolves once the status line arrived; `received`
   * counts the bytes read so far (headers included).
   */
  function slowGet(path: string, authorization: string): Promise<{ received: () => number }> {
    const { port } = new URL(stack.gw.url);
    const s = connect(Number(port), '127.0.0.1');
    sockets.push(s);
    s.on('error', () => undefined);
    let received = 0;
    return new Promise((resolve, reject) => {
      s.once('close', () => reject(new Error('the slow reader was closed before its status line')));
      s.on('data', (chunk: Buffer) => {
        if (received === 0) {
          if (!chunk.toString('latin1').startsWith('HTTP/1.1 200')) reject(new Error(chunk.toString()));
          resolve({ received: () => received });
        }
        received += chunk.length;
        s.pause();
        setTimeout(() => s.resume(), (chunk.length / SLOW_BYTES_PER_SECOND) * 1000);
      });
      s.write(`GET ${path} HTTP/1.1\r\nHost: ${stack.gw.host}\r\nAuthorization: ${authorization}\r\n\r\n`);
    });
  }

  /** A plain client's whole download: when its first body byte came, when it ended, what it hashed to. */
  async function timedGet(path: string, authorization: string) {
    const started = performance.now();
    const signal = AbortSignal.timeout(UPSTREAM_SPEED_BOUND_MS);
    const res = await request(`${stack.gw.url}${path}`, { headers: { authorization }, signal });
    let firstByteMs: number | undefined;
    let size = 0;
    const hash = createHash('sha256');
    for await (const chunk of res.body) {
      firstByteMs ??= performance.now() - started;
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    return {
      status: res.statusCode,
      firstByteMs: firstByteMs ?? Infinity,
      totalMs: performance.now() - started,
      size,
      sha256: hash.digest('hex'),
    };
  }

  /** The second of two GETs of a small file: what a cache hit takes this member right now. */
  async function baseline(path: string, authorization: string): Promise<number> {
    expect((await timedGet(path, authorization)).status).toBe(200);
    return (await timedGet(path, authorization)).firstByteMs;
  }

  it('serves a second member a cold release asset at upstream speed while the first reads at 40 KB/s', async () => {
    const path = '/downloads/releases/acme/bigrel/v1.0.0/big.bin';
    const hitMs = await baseline('/downloads/releases/acme/bigrel/v1.0.0/small.txt', bob.basic);
    const slow = await slowGet(path, alice.basic);
    const second = await timedGet(path, bob.basic);
    expect(second).toMatchObject({
      status: 200,
      size: asset.length,
      sha256: createHash('sha256').update(asset).digest('hex'),
    });
    expect(second.firstByteMs).toBeLessThan(FIRST_BYTE_MS + hitMs);
    expect(second.totalMs).toBeLessThan(UPSTREAM_SPEED_BOUND_MS);
    // The first member was still far from the end: its fetch held nothing.
    expect(slow.received()).toBeLessThan(asset.length / 2);
    // One upstream fetch of each asset: the small one, and the big one however many read it.
    expect(stack.front.countRequests((r) => r.kind === 'asset')).toBe(2);
  }, 120_000);

  it('serves a second member a cold blob at upstream speed while the first reads at 40 KB/s', async () => {
    const image = seedImage(stack.seed, 'acme/big', '1.0').manifests[0];
    const big = image.layers[0];
    const path = `/v2/acme/big/blobs/${big.digest}`;
    const [aliceToken, bobToken] = await Promise.all([
      stack.token(alice, ['repository:acme/big:pull']),
      stack.token(bob, ['repository:acme/big:pull']),
    ]);
    const hitMs = await baseline(`/v2/acme/big/blobs/${image.config.digest}`, `Bearer ${bobToken}`);
    const slow = await slowGet(path, `Bearer ${aliceToken}`);
    const second = await timedGet(path, `Bearer ${bobToken}`);
    expect(second).toMatchObject({ status: 200, size: big.size, sha256: big.digest.slice('sha256:'.length) });
    expect(second.firstByteMs).toBeLessThan(FIRST_BYTE_MS + hitMs);
    expect(second.totalMs).toBeLessThan(UPSTREAM_SPEED_BOUND_MS);
    expect(slow.received()).toBeLessThan(big.size / 2);
  }, 120_000);
});
