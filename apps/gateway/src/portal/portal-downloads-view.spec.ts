import { memberActivity } from './portal-activity';
import { fileList, grantLine, packageCard, wgetLine } from './portal-downloads-view';

const file = (name: string) => ({
  name,
  size: 500_000,
  sha256: 'a'.repeat(64),
  url: `https://gw.example/downloads/packages/acme/cli/1.4.0/${encodeURIComponent(name)}`,
});

describe('the download cards of the portal', () => {
  it('prints a wget line that asks for the key and resumes, quoted for the shell', () => {
    expect(wgetLine('alice', 'https://gw.example/downloads/packages/acme/cli/1.4.0/cli.tgz')).toBe(
      'wget --user alice --ask-password -c https://gw.example/downloads/packages/acme/cli/1.4.0/cli.tgz',
    );
    expect(wgetLine("o'brien", 'https://gw.example/a b')).toBe(
      `wget --user 'o'\\''brien' --ask-password -c 'https://gw.example/a b'`,
    );
  });

  it('lists a file with its size, sha256, link, curl and wget lines, all as text', () => {
    const html = fileList('alice', [file('<img src=x onerror=1>.tgz')]);
    expect(html).not.toContain('<img');
    expect(html).toContain('&#60;img src=x onerror=1&#62;.tgz');
    expect(html).toContain('500.0 kB');
    expect(html).toContain(`<code class="sha256">sha256:${'a'.repeat(64)}</code>`);
    expect(html).toContain('<pre><code>curl -fL -u alice: -O -C - ');
    expect(html).toContain('<pre><code>wget --user alice --ask-password -c ');
  });

  it('gives the newest versions with files and names the older ones', () => {
    const html = packageCard(
      'acme/cli',
      grantLine(['1.*'], null, new Date()),
      [
        { version: '1.4.0', publishedAt: '2026-01-01T00:00:00Z', files: [file('cli.tgz')] },
        { version: '1.3.0', publishedAt: '2026-01-01T00:00:00Z', files: null },
      ],
      'alice',
    );
    expect([...html.matchAll(/<h3>([^<]+)<\/h3>/g)].map((m) => m[1])).toEqual(['1.4.0', 'Older versions']);
    expect(html).toContain('Also yours: <code>1.3.0</code>');
    expect(html).toContain('never expires');
    expect(packageCard('acme/cli', '', [], 'alice')).toContain(
      'No published version matches your grant now.',
    );
  });

  it("names a package listing in the member's activity", () => {
    const [row] = memberActivity([
      {
        occurredAt: new Date(),
        action: 'download.list',
        repository: 'packages:acme/cli',
        reference: null,
        digest: null,
        outcome: 'allowed',
        reason: null,
        httpStatus: 200,
      },
    ]);
    expect(row.what).toBe('list package versions');
  });
});
