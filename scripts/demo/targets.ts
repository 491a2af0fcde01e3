/**
 * What the demo grants, shows and refuses, and THE place its download URLs are built: when the
 * download route grammar changes, this file is the one to update (the demo's test reads the
 * printed lines, so it follows).
 */
export const DEMO = {
  member: 'demo',
  image: { repository: 'acme/app', tag: 'v1.0.0', rules: 'v1.0.0', refusedTag: 'v1.1.0' },
  release: {
    owner: 'acme',
    repo: 'tool',
    rules: 'semver:^1.2',
    tag: 'v1.2.0',
    /** About 10 MB: big enough to show a resumed download. */
    asset: 'tool-linux-amd64',
    refusedTag: 'v2.0.0',
  },
  package: {
    owner: 'acme',
    name: 'cli',
    rules: '1.4.*',
    version: '1.4.0',
    file: 'cli.tar.gz',
    refusedVersion: '2.0.0',
  },
} as const;

export const targets = {
  image: DEMO.image.repository,
  releases: `releases:${DEMO.release.owner}/${DEMO.release.repo}`,
  packages: `packages:${DEMO.package.owner}/${DEMO.package.name}`,
};

const seg = encodeURIComponent;

/** The gateway's download routes (CONTRACT "Downloads"), from its base URL. */
export function downloadUrls(base: string) {
  const r = DEMO.release;
  const p = DEMO.package;
  const release = (tag: string) =>
    `${base}/downloads/releases/${seg(r.owner)}/${seg(r.repo)}/${seg(tag)}/${seg(r.asset)}`;
  const pkg = (version: string) =>
    `${base}/downloads/packages/${seg(p.owner)}/${seg(p.name)}/${seg(version)}/${seg(p.file)}`;
  return {
    releaseList: `${base}/downloads/releases/${seg(r.owner)}/${seg(r.repo)}`,
    releaseAsset: release(r.tag),
    refusedReleaseAsset: release(r.refusedTag),
    packageFile: pkg(p.version),
    refusedPackageFile: pkg(p.refusedVersion),
  };
}
