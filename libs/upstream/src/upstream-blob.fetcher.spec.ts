import { ServerResponse } from 'node:http';
import { UpstreamError } from './upstream.error';
import { UpstreamBlob } from './upstream.types';
import { closeFakes, BLOB, BLOB_DIGEST, drain, fake, forgejoLike, setup } from './testing/upstream-fakes';

// The client through its facade, against local HTTP fakes (testing/upstream-fakes.ts).

afterEach(closeFakes);

describe('UpstreamRegistryClient: blobs', () => {
  it('follows a 307 to another origin without Authorization and passes Range through', async () => {
    const storage = await fake((req, res) => {
      if (req.headers.authorization) {
        res
          .writeHead(400, { 'content-type': 'application/xml' })
          .end('<Error><Code>InvalidArgument</Code></Error>');
        return;
      }
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (m) {
        const [a, b] = [Number(m[1]), Number(m[2])];
        res.writeHead(206, {
          'content-length': String(b - a + 1),
          'content-range': `bytes ${a}-${b}/${BLOB.length}`,
        });
        res.end(BLOB.subarray(a, b + 1));
        return;
      }
      res.writeHead(200, { 'content-length': String(BLOB.length) }).end(BLOB);
    });
    const up = await forgejoLike({ jwtExp: () => Date.now() / 1000 + 3600 });
    up.routes.set(`/v2/acme/app/blobs/${BLOB_DIGEST}`, (_req, res) => {
      res
        .writeHead(307, {
          location: `${storage.url}/bucket/obj?X-Amz-Signature=secret`,
          'content-type': 'text/html; charset=utf-8',
        })
        .end();
    });
    const { client, log } = setup(up.f.url);

    const full = (await client.getBlob('acme/app', BLOB_DIGEST)) as UpstreamBlob;
    expect(full).toMatchObject({ found: true, status: 200, size: BLOB.length });
    expect((await drain(full)).equals(BLOB)).toBe(true);

    const part = (await client.getBlob('acme/app', BLOB_DIGEST, { range: 'bytes=10-19' })) as UpstreamBlob;
    expect(part).toMatchObject({ status: 206, size: 10, contentRange: `bytes 10-19/${BLOB.length}` });
    expect((await drain(part)).equals(BLOB.subarray(10, 20))).toBe(true);

    expect(storage.hits.every((h) => h.authorization === undefined)).toBe(true);
    expect(storage.hits.map((h) => h.range)).toEqual([undefined, 'bytes=10-19']);
    expect(
      up.f.hits
        .filter((h) => h.path.includes('/blobs/'))
        .every((h) => h.authorization?.startsWith('Bearer ')),
    ).toBe(true);
    expect(log.raw()).not.toContain('X-Amz-Signature');
    await client.close();
  });

  function blobServer(send: (res: ServerResponse) => void) {
    return fake((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end();
      send(res);
    });
  }

  it('errors (never ends) when the upstream cuts the body', async () => {
    const f = await blobServer((res) => {
      res.writeHead(200, { 'content-length': String(BLOB.length) });
      res.write(BLOB.subarray(0, 1000), () => res.socket?.destroy());
    });
    const { client, failures, errorLines } = setup(f.url);
    const blob = (await client.getBlob('acme/app', BLOB_DIGEST)) as UpstreamBlob;
    const err = (await drain(blob).catch((e: unknown) => e)) as UpstreamError;
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.reason).toBe('truncated');
    expect(await failures('truncated')).toBe(1);
    expect(errorLines()[0].msg).toMatch(
      /^The upstream body of acme\/app blob sha256:[0-9a-f]{64} ended after 1000 of 262144 bytes \(/,
    );
    expect(errorLines()[0].cause).toBeDefined();
    await client.close();
  });

  it('errors when the body is complete but shorter than the expected size', async () => {
    const f = await blobServer((res) =>
      res.writeHead(200, { 'content-length': '10' }).end(BLOB.subarray(0, 10)),
    );
    const { client } = setup(f.url);
    await expect(
      client.getBlob('acme/app', BLOB_DIGEST, { expectedSize: BLOB.length }),
    ).rejects.toMatchObject({ reason: 'digest_mismatch' });
    const blob = (await client.getBlob('acme/app', BLOB_DIGEST)) as UpstreamBlob;
    await expect(drain(blob)).rejects.toMatchObject({ reason: 'digest_mismatch' });
    await client.close();
  });

  it('rejects a body with the wrong digest at its end', async () => {
    const wrong = Buffer.alloc(BLOB.length, 8);
    const f = await blobServer((res) =>
      res.writeHead(200, { 'content-length': String(wrong.length) }).end(wrong),
    );
    const { client, failures } = setup(f.url);
    const blob = (await client.getBlob('acme/app', BLOB_DIGEST)) as UpstreamBlob;
    await expect(drain(blob)).rejects.toMatchObject({ reason: 'digest_mismatch' });
    expect(await failures('digest_mismatch')).toBe(1);
    await client.close();
  });

  it('leaves the digest to a caller that hashes the body itself, and still checks the length', async () => {
    const wrong = Buffer.alloc(BLOB.length, 8);
    const f = await blobServer((res) =>
      res.writeHead(200, { 'content-length': String(wrong.length) }).end(wrong),
    );
    const { client } = setup(f.url);
    const blob = (await client.getBlob('acme/app', BLOB_DIGEST, { verifyDigest: false })) as UpstreamBlob;
    expect((await drain(blob)).equals(wrong)).toBe(true);
    await client.close();

    const cut = await blobServer((res) => {
      res.writeHead(200, { 'content-length': String(BLOB.length) });
      res.write(BLOB.subarray(0, 1000), () => res.socket?.destroy());
    });
    const second = setup(cut.url);
    const partial = (await second.client.getBlob('acme/app', BLOB_DIGEST, {
      verifyDigest: false,
    })) as UpstreamBlob;
    await expect(drain(partial)).rejects.toBeInstanceOf(Error);
    await second.client.close();
  });

  it('fails a stalled body with the idle body timeout', async () => {
    const f = await blobServer((res) => {
      res.writeHead(200, { 'content-length': String(BLOB.length) });
      res.write(BLOB.subarray(0, 100));
    });
    const { client } = setup(f.url, { bodyTimeoutMs: 300 });
    const blob = (await client.getBlob('acme/app', BLOB_DIGEST)) as UpstreamBlob;
    await expect(drain(blob)).rejects.toMatchObject({ reason: 'timeout' });
    await client.close();
  });

  it('releases the upstream connection when the consumer stops reading', async () => {
    let closed = false;
    const f = await blobServer((res) => {
      res.writeHead(200, { 'content-length': String(BLOB.length) });
      res.write(BLOB.subarray(0, 100));
      res.on('close', () => (closed = true));
    });
    const { client, errorLines } = setup(f.url);
    const blob = (await client.getBlob('acme/app', BLOB_DIGEST)) as UpstreamBlob;
    blob.body.destroy();
    for (let i = 0; i < 100 && !closed; i++) await new Promise((r) => setTimeout(r, 10));
    expect(closed).toBe(true);
    expect(errorLines()).toEqual([]);
    await client.close();
  });
});
