import { request } from 'undici';
import { bearer, front, readPat, seed, tokenFor, useSeededForgejoFront } from './forgejo-front.fixture';
import { digestOf, probe } from './http-probe';
import { MediaTypes } from './image-builder';
import { seedImage, seedManifestFor } from './seed';

// What the front serves: manifests and blobs, Range, serve-direct redirects to presigned URLs.
// Auth: forgejo-front.auth.int-spec.ts.

describe('Forgejo front: auth and error behaviour of the Forgejo container registry', () => {
  useSeededForgejoFront();

  describe('manifests', () => {
    it('ignores Accept and returns the stored media type, digest and ETag', async () => {
      const image = seedImage(seed, 'acme/app', 'v1.0.0');
      const res = await probe(`${front.url}/v2/acme/app/manifests/v1.0.0`, {
        headers: { ...bearer(await tokenFor(readPat)), accept: MediaTypes.dockerManifest },
      });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe(MediaTypes.ociIndex);
      expect(res.headers['docker-content-digest']).toBe(image.digest);
      expect(res.headers.etag).toBe(`"${image.digest}"`);
      expect(res.headers['content-length']).toBe(String(image.size));
      expect(res.headers['cache-control']).toBe('private, max-age=300');
    });

    it('answers HEAD with the same headers and no body, and If-None-Match with 304', async () => {
      const image = seedImage(seed, 'acme/tool', '1.0.0');
      const jwt = await tokenFor(readPat);
      const head = await probe(`${front.url}/v2/acme/tool/manifests/1.0.0`, {
        method: 'HEAD',
        headers: bearer(jwt),
      });
      expect(head.status).toBe(200);
      expect(head.headers).toMatchObject({
        'content-type': MediaTypes.dockerManifest,
        'docker-content-digest': image.digest,
        etag: `"${image.digest}"`,
        'content-length': String(image.size),
      });
      const cached = await probe(`${front.url}/v2/acme/tool/manifests/${image.digest}`, {
        headers: { ...bearer(jwt), 'if-none-match': `"${image.digest}"` },
      });
      expect(cached.status).toBe(304);
    });

    it('treats tags case-insensitively', async () => {
      const res = await probe(`${front.url}/v2/acme/app/manifests/V1.1.0`, {
        method: 'HEAD',
        headers: bearer(await tokenFor(readPat)),
      });
      expect(res.headers['docker-content-digest']).toBe(seedImage(seed, 'acme/app', 'v1.1.0').digest);
    });

    it.each(['nope', '-invalid-', 'sha256:' + '0'.repeat(64)])(
      'answers unknown reference %s with MANIFEST_UNKNOWN and an empty message',
      async (ref) => {
        const res = await probe(`${front.url}/v2/acme/app/manifests/${ref}`, {
          headers: bearer(await tokenFor(readPat)),
        });
        expect(res.status).toBe(404);
        expect(res.headers['content-type']).toBe('application/json');
        expect(JSON.parse(res.text)).toEqual({ errors: [{ code: 'MANIFEST_UNKNOWN', message: '' }] });
      },
    );

    it('answers an unknown image under a known owner with MANIFEST_UNKNOWN, not NAME_UNKNOWN', async () => {
      const res = await probe(`${front.url}/v2/acme/missing/manifests/v1`, {
        headers: bearer(await tokenFor(readPat)),
      });
      expect(JSON.parse(res.text).errors[0].code).toBe('MANIFEST_UNKNOWN');
    });
  });

  describe('blobs', () => {
    const layer = (): { digest: string; size: number } =>
      seedManifestFor(seedImage(seed, 'acme/app', 'v1.0.0'), 'arm64').layers[1];

    it('answers HEAD with digest, ETag and length but no Content-Type', async () => {
      const res = await probe(`${front.url}/v2/acme/app/blobs/${layer().digest}`, {
        method: 'HEAD',
        headers: bearer(await tokenFor(readPat)),
      });
      expect(res.status).toBe(200);
      expect(res.headers['docker-content-digest']).toBe(layer().digest);
      expect(res.headers.etag).toBe(`"${layer().digest}"`);
      expect(res.headers['content-length']).toBe(String(layer().size));
      expect(res.headers['content-type']).toBeUndefined();
    });

    it('streams the big blob byte-exact', async () => {
      const big = seedImage(seed, 'acme/big', '1.0').manifests[0].layers[0];
      const got = await digestOf(
        `${front.url}/v2/acme/big/blobs/${big.digest}`,
        bearer(await tokenFor(readPat)),
      );
      expect(got).toMatchObject({ status: 200, digest: big.digest, size: big.size });
    });

    it('honours Range, or ignores it like v11 when range support is off', async () => {
      const jwt = await tokenFor(readPat);
      const url = `${front.url}/v2/acme/app/blobs/${layer().digest}`;
      const partial = await probe(url, { headers: { ...bearer(jwt), range: 'bytes=0-9' } });
      expect(partial.status).toBe(206);
      expect(partial.headers['content-range']).toBe(`bytes 0-9/${layer().size}`);
      expect(partial.body.length).toBe(10);
      front.setRangeSupport(false);
      try {
        const full = await probe(url, { headers: { ...bearer(jwt), range: 'bytes=0-9' } });
        expect(full.status).toBe(200);
        expect(full.body.length).toBe(layer().size);
        expect(full.headers['accept-ranges']).toBeUndefined();
      } finally {
        front.setRangeSupport(true);
      }
    });

    it.each(['sha256:' + 'f'.repeat(64), 'sha256:short', 'md5:abc'])(
      'answers blob %s with BLOB_UNKNOWN',
      async (digest) => {
        const res = await probe(`${front.url}/v2/acme/app/blobs/${digest}`, {
          headers: bearer(await tokenFor(readPat)),
        });
        expect(res.status).toBe(404);
        expect(JSON.parse(res.text).errors[0].code).toBe('BLOB_UNKNOWN');
      },
    );

    it('does not serve a blob under an image that does not reference it', async () => {
      const res = await probe(`${front.url}/v2/acme/tool/blobs/${layer().digest}`, {
        headers: bearer(await tokenFor(readPat)),
      });
      expect(res.status).toBe(404);
    });

    it('redirects to a presigned URL on another origin that refuses Authorization, in serve-direct mode', async () => {
      const jwt = await tokenFor(readPat);
      front.setServeDirect(true);
      try {
        const res = await request(`${front.url}/v2/acme/app/blobs/${layer().digest}`, {
          headers: bearer(jwt),
        });
        await res.body.dump();
        expect(res.statusCode).toBe(307);
        expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
        expect(res.headers['docker-content-digest']).toBeUndefined();
        expect(res.headers['content-length']).toBeUndefined();
        const location = String(res.headers.location);
        expect(new URL(location).origin).toBe(front.storageUrl);
        expect(new URL(location).searchParams.get('X-Amz-Expires')).toBe('300');

        const withAuth = await probe(location, { headers: bearer(jwt) });
        expect(withAuth.status).toBe(400);
        expect(withAuth.text).toContain('InvalidArgument');
        const got = await digestOf(location);
        expect(got).toMatchObject({ status: 200, digest: layer().digest, size: layer().size });
        const ranged = await probe(location, { headers: { range: 'bytes=5-' } });
        expect(ranged.status).toBe(206);
        expect(ranged.body.length).toBe(layer().size - 5);
        const tampered = await probe(location.replace(/X-Amz-Signature=[0-9a-f]/, 'X-Amz-Signature=z'));
        expect(tampered.status).toBe(403);

        const manifest = await request(`${front.url}/v2/acme/app/manifests/v1.0.0`, { headers: bearer(jwt) });
        await manifest.body.dump();
        expect(manifest.statusCode).toBe(307);
        const head = await probe(`${front.url}/v2/acme/app/manifests/v1.0.0`, {
          method: 'HEAD',
          headers: bearer(jwt),
        });
        expect(head.status).toBe(200);
      } finally {
        front.setServeDirect(false);
      }
    });

    it('refuses a presigned URL once it has expired', async () => {
      const jwt = await tokenFor(readPat);
      front.setServeDirect(true);
      front.setPresignTtl(0);
      try {
        const res = await request(`${front.url}/v2/acme/app/blobs/${layer().digest}`, {
          headers: bearer(jwt),
        });
        await res.body.dump();
        await new Promise((r) => setTimeout(r, 1100));
        const expired = await probe(String(res.headers.location));
        expect(expired.status).toBe(403);
        expect(expired.text).toContain('expired');
      } finally {
        front.setPresignTtl(300);
        front.setServeDirect(false);
      }
    });
  });
});
