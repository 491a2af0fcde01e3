import {
  cosignLines,
  curlLine,
  expiringSoon,
  humanSize,
  imagePullSecretYaml,
  pullableTags,
  pullCommands,
  shellQuote,
  wgetLine,
} from './portal-view';

describe('the portal view', () => {
  it('keeps only what the matcher admits, newest version first', () => {
    const admits = (t: string) => t.startsWith('v1.');
    expect(pullableTags(['v1.2.0', 'v2.0.0', 'v1.10.0', 'v1.9.1', 'latest'], admits)).toEqual([
      'v1.10.0',
      'v1.9.1',
      'v1.2.0',
    ]);
  });

  it('prints commands that read the key from standard input and quote what a shell would read', () => {
    const c = pullCommands('registry.example.com', 'alice', 'acme/app', 'v1.0.0');
    expect(c.login).toBe('docker login registry.example.com -u alice --password-stdin');
    expect(c.docker).toBe('docker pull registry.example.com/acme/app:v1.0.0');
    expect(c.podman).toBe('podman pull registry.example.com/acme/app:v1.0.0');
    expect(shellQuote("a'b $(x)")).toBe(`'a'\\''b $(x)'`);
  });

  it('writes an imagePullSecret with a placeholder, never a key', () => {
    const yaml = imagePullSecretYaml('registry.example.com', 'alice');
    expect(yaml).toContain('type: kubernetes.io/dockerconfigjson');
    expect(yaml).toContain('"password":"<YOUR-ACCESS-KEY>"');
  });

  it('warns of what expires within the window, soonest first', () => {
    const now = new Date('2026-12-07T00:00:00Z');
    const at = (d: number) => new Date(now.getTime() + d * 86_400_000);
    const items = [
      { what: 'late', at: at(20) },
      { what: 'never', at: null },
      { what: 'key', at: at(10) },
      { what: 'grant', at: at(2) },
      { what: 'gone', at: at(-1) },
    ];
    expect(expiringSoon(items, now, 14).map((i) => i.what)).toEqual(['grant', 'key']);
    expect(expiringSoon(items, now, 0)).toEqual([]);
  });

  it('prints sizes and a resumable curl line that prompts for the key', () => {
    expect([humanSize(999), humanSize(10 * 1024 * 1024 + 123), humanSize(2_000_000_000)]).toEqual([
      '999 B',
      '10.5 MB',
      '2.0 GB',
    ]);
    expect(curlLine('alice', 'https://gw.example/downloads/releases/acme/tool/v1/a b')).toBe(
      "curl -fL -u alice: -O -C - 'https://gw.example/downloads/releases/acme/tool/v1/a b'",
    );
    expect(wgetLine("o'brien", 'https://gw.example/downloads/releases/acme/tool/v1/a b')).toBe(
      "wget --user 'o'\\''brien' --ask-password -c 'https://gw.example/downloads/releases/acme/tool/v1/a b'",
    );
  });

  it('prints one cosign line per kind of referrer, on the digest', () => {
    const d = `sha256:${'a'.repeat(64)}`;
    expect(
      cosignLines('gw.example', 'acme/app', d, [
        { kind: 'signature', predicateType: null },
        { kind: 'signature', predicateType: null },
        { kind: 'attestation', predicateType: 'https://slsa.dev/provenance/v0.2' },
        { kind: 'sbom', predicateType: null },
        { kind: 'sbom', predicateType: 'https://spdx.dev/Document' },
        { kind: 'other', predicateType: null },
      ]),
    ).toEqual([
      `cosign verify --key cosign.pub gw.example/acme/app@${d}`,
      `cosign verify-attestation --key cosign.pub --type https://slsa.dev/provenance/v0.2 gw.example/acme/app@${d}`,
      `cosign download sbom gw.example/acme/app@${d}`,
      `cosign verify-attestation --key cosign.pub --type https://spdx.dev/Document gw.example/acme/app@${d}`,
    ]);
    expect(cosignLines('gw.example', 'acme/app', d, [])).toEqual([]);
  });
});
