import type { Digest } from '@gatehouse/oci';
import { UpstreamError } from './upstream.error';
import { closeFakes, fake, Handler, setup } from './testing/upstream-fakes';

// The referrers call through the client's facade, against local HTTP fakes.

afterEach(closeFakes);

const SUBJECT = `sha256:${'ab'.repeat(32)}` as Digest;
const PATH = `/v2/acme/app/referrers/${SUBJECT}`;
const INDEX = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: SUBJECT, size: 1 }],
  }),
);

async function upstream(referrers: Handler) {
  return fake((req, res) => {
    if (req.url === '/v2/') return void res.writeHead(200).end();
    if (req.url === PATH) return referrers(req, res);
    res.writeHead(500).end();
  });
}

describe('UpstreamRegistryClient: referrers', () => {
  it('returns the index bytes of a 200, asking for an image index', async () => {
    let accept: string | undefined;
    const f = await upstream((req, res) => {
      accept = req.headers.accept;
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' }).end(INDEX);
    });
    const { client, errorLines } = setup(f.url);
    const got = await client.listReferrers('acme/app', SUBJECT);
    expect(got?.equals(INDEX)).toBe(true);
    expect(accept).toBe('application/vnd.oci.image.index.v1+json');
    expect(errorLines()).toEqual([]);
    await client.close();
  });

  it.each([
    ['404 with an empty body (Forgejo)', 404, ''],
    ['404 with OCI JSON', 404, '{"errors":[{"code":"NAME_UNKNOWN"}]}'],
    ['405', 405, 'method not allowed'],
    ['400', 400, '{"errors":[{"code":"UNSUPPORTED"}]}'],
  ])('takes %s as "no referrers API" (null), logging nothing', async (_label, status, body) => {
    const f = await upstream((_req, res) => void res.writeHead(status).end(body));
    const { client, errorLines } = setup(f.url);
    await expect(client.listReferrers('acme/app', SUBJECT)).resolves.toBeNull();
    expect(errorLines()).toEqual([]);
    await client.close();
  });

  it.each([
    ['not JSON', 'hello'],
    ['JSON without a manifests array', '{"schemaVersion":2}'],
  ])('refuses a 200 that is %s as a classified protocol failure', async (_label, body) => {
    const f = await upstream((_req, res) => void res.writeHead(200).end(body));
    const { client, errorLines, failures } = setup(f.url);
    const err = (await client.listReferrers('acme/app', SUBJECT).catch((e: unknown) => e)) as UpstreamError;
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.reason).toBe('protocol');
    expect(errorLines()).toHaveLength(1);
    expect(await failures('protocol')).toBe(1);
    await client.close();
  });

  it('refuses an index over the manifest size bound', async () => {
    const f = await upstream(
      (_req, res) => void res.writeHead(200, { 'content-length': String(11 * 1024 * 1024) }).end(),
    );
    const { client } = setup(f.url);
    await expect(client.listReferrers('acme/app', SUBJECT)).rejects.toBeInstanceOf(UpstreamError);
    await client.close();
  });
});
