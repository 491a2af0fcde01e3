import { closeFakes, fake, setup } from './testing/upstream-fakes';
import { packageFilesOf } from './gatehouse-download.fetcher';

afterEach(closeFakes);

const SHA = 'a'.repeat(64);

describe("an upstream Gatehouse's package listing", () => {
  it('keeps named files with a whole size and a well-formed sha256 only', () => {
    expect(
      packageFilesOf([
        { name: 'cli.tgz', size: 12, sha256: SHA },
        { name: 'odd', size: -1, sha256: 'nope' },
        { name: '', size: 1 },
        { size: 3 },
      ]),
    ).toEqual([
      { name: 'cli.tgz', size: 12, sha256: SHA },
      { name: 'odd', size: 0, sha256: null },
    ]);
  });

  it('reads /downloads/packages/<owner>/<name>/<version> with Basic, and a 404 as not found', async () => {
    const up = await fake((req, res) => {
      if (req.url === '/downloads/packages/acme/cli/1.4.0%2Bb') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ files: [{ name: 'cli.tgz', size: 5, sha256: SHA }] }));
      } else res.writeHead(404).end();
    });
    const { client } = setup(up.url, { kind: 'gatehouse', username: 'site-b' });
    expect(await client.downloads.listPackageFiles('acme', 'cli', '1.4.0+b')).toEqual({
      found: true,
      files: [{ name: 'cli.tgz', size: 5, sha256: SHA }],
    });
    expect(await client.downloads.listPackageFiles('acme', 'cli', '9')).toEqual({ found: false });
    expect(up.hits[0].authorization).toMatch(/^Basic /);
    await client.close();
  });
});
