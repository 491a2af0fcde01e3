import { request } from 'undici';
import { bearer, front, readPat, seed, tokenFor, useSeededForgejoFront } from './forgejo-front.fixture';
import { digestOf, probe } from './http-probe';
import { seedImage } from './seed';

// The front's tags/list, _catalog and referrers, and the request records and blob faults a spec
// drives it with. Auth: forgejo-front.auth.int-spec.ts.

describe('Forgejo front: auth and error behaviour of the Forgejo container registry', () => {
  useSeededForgejoFront();

  describe('tags/list, _catalog and referrers', () => {
    it('sends Link on every non-empty page and answers the extra page with [] and no Link', async () => {
      const jwt = await tokenFor(readPat);
      const first = await probe(`${front.url}/v2/acme/app/tags/list`, { headers: bearer(jwt) });
      expect(JSON.parse(first.text)).toEqual({
        name: 'acme/app',
        tags: ['latest', 'v1.0.0', 'v1.1.0', 'v2.0.0-rc.1'],
      });
      expect(first.headers.link).toBe('</v2/acme/app/tags/list?last=v2.0.0-rc.1>; rel="next"');
      const extra = await probe(
        `${front.url}${first.headers.link.slice(1, first.headers.link.indexOf('>'))}`,
        { headers: bearer(jwt) },
      );
      expect(JSON.parse(extra.text)).toEqual({ name: 'acme/app', tags: [] });
      expect(extra.headers.link).toBeUndefined();
      const paged = await probe(`${front.url}/v2/acme/app/tags/list?n=2`, { headers: bearer(jwt) });
      expect(JSON.parse(paged.text).tags).toEqual(['latest', 'v1.0.0']);
      expect(paged.headers.link).toBe('</v2/acme/app/tags/list?last=v1.0.0&n=2>; rel="next"');
    });

    it('answers tags/list of an unknown image with NAME_UNKNOWN', async () => {
      const res = await probe(`${front.url}/v2/acme/missing/tags/list`, {
        headers: bearer(await tokenFor(readPat)),
      });
      expect(res.status).toBe(404);
      expect(JSON.parse(res.text).errors[0].code).toBe('NAME_UNKNOWN');
    });

    it('lists the catalog sorted, with a Link only on a full page', async () => {
      const jwt = await tokenFor(readPat);
      const all = await probe(`${front.url}/v2/_catalog`, { headers: bearer(jwt) });
      expect(JSON.parse(all.text).repositories).toEqual([
        'acme/app',
        'acme/big',
        'acme/tool',
        'other/secret',
      ]);
      expect(all.headers.link).toBeUndefined();
      const page = await probe(`${front.url}/v2/_catalog?n=2`, { headers: bearer(jwt) });
      expect(page.headers.link).toBe('</v2/_catalog?last=acme%2Fbig&n=2>; rel="next"');
    });

    it('answers the referrers API with 404 and an empty body', async () => {
      const digest = seedImage(seed, 'acme/app', 'v1.0.0').digest;
      const res = await probe(`${front.url}/v2/acme/app/referrers/${digest}`, {
        headers: bearer(await tokenFor(readPat)),
      });
      expect(res.status).toBe(404);
      expect(res.body.length).toBe(0);
      expect(front.requests.at(-1)).toMatchObject({
        kind: 'referrers',
        repository: 'acme/app',
        reference: digest,
      });
    });

    it('answers the referrers API as an OCI 1.1 registry once switched on, and goes back to the 404', async () => {
      const digest = seedImage(seed, 'acme/app', 'v1.0.0').digest;
      const descriptor = {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: `sha256:${'12'.repeat(32)}`,
        size: 10,
        artifactType: 'application/example',
      };
      const jwt = await tokenFor(readPat);
      front.setReferrersApi(true);
      try {
        front.addReferrer('acme/app', digest, descriptor);
        const res = await probe(`${front.url}/v2/acme/app/referrers/${digest}`, { headers: bearer(jwt) });
        expect([res.status, res.headers['content-type']]).toEqual([
          200,
          'application/vnd.oci.image.index.v1+json',
        ]);
        expect(JSON.parse(res.text)).toEqual({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [descriptor],
        });
        const other = await probe(`${front.url}/v2/acme/app/referrers/sha256:${'34'.repeat(32)}`, {
          headers: bearer(jwt),
        });
        expect([other.status, JSON.parse(other.text).manifests]).toEqual([200, []]);
      } finally {
        front.setReferrersApi(false);
      }
      const off = await probe(`${front.url}/v2/acme/app/referrers/${digest}`, { headers: bearer(jwt) });
      expect([off.status, off.body.length]).toEqual([404, 0]);
    });
  });

  describe('request counting and fault injection', () => {
    const blob = (): { digest: string; size: number } =>
      seedImage(seed, 'acme/tool', '1.0.0').manifests[0].layers[0];

    it('records every request with its kind and status', async () => {
      const jwt = await tokenFor(readPat);
      front.resetCounts();
      await probe(`${front.url}/v2/acme/tool/blobs/${blob().digest}`, { headers: bearer(jwt) });
      await probe(`${front.url}/v2/acme/tool/manifests/1.0.0`, { headers: bearer(jwt) });
      expect(
        front.countRequests((r) => r.kind === 'blob' && r.status === 200 && r.reference === blob().digest),
      ).toBe(1);
      expect(
        front.countRequests(
          (r) => r.kind === 'manifest' && r.repository === 'acme/tool' && r.auth === 'bearer',
        ),
      ).toBe(1);
      expect(front.countRequests()).toBe(2);
      front.resetCounts();
      expect(front.requests).toEqual([]);
    });

    it('cuts a blob after N bytes with the full length announced', async () => {
      const jwt = await tokenFor(readPat);
      front.setBlobBehaviour(blob().digest, 'cut-after:100');
      try {
        const res = await request(`${front.url}/v2/acme/tool/blobs/${blob().digest}`, {
          headers: bearer(jwt),
        });
        expect(res.headers['content-length']).toBe(String(blob().size));
        let received = 0;
        await expect(
          (async () => {
            for await (const chunk of res.body) received += (chunk as Buffer).length;
          })(),
        ).rejects.toThrow();
        expect(received).toBe(100);
      } finally {
        front.setBlobBehaviour(blob().digest, 'normal');
      }
    });

    it('trickles, hangs or fails a blob on demand', async () => {
      const jwt = await tokenFor(readPat);
      const url = `${front.url}/v2/acme/tool/blobs/${blob().digest}`;
      try {
        front.setBlobBehaviour(blob().digest, `trickle:${blob().size * 2}`);
        const started = Date.now();
        expect((await digestOf(url, bearer(jwt))).digest).toBe(blob().digest);
        expect(Date.now() - started).toBeGreaterThanOrEqual(150);

        front.setBlobBehaviour(blob().digest, 'hang');
        await expect(probe(url, { headers: bearer(jwt), headersTimeout: 300 })).rejects.toThrow(/timeout/i);

        front.setBlobBehaviour(blob().digest, 'fail:503');
        expect((await probe(url, { headers: bearer(jwt) })).status).toBe(503);
      } finally {
        front.setBlobBehaviour(blob().digest, 'normal');
      }
      expect((await probe(url, { headers: bearer(jwt) })).status).toBe(200);
    });
  });
});
