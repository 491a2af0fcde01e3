import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import {
  ALL_MANIFEST_MEDIA_TYPES,
  BuiltIndex,
  BuiltLayer,
  BuiltManifest,
  Descriptor,
  OciLayoutWriter,
  Platform,
  writeGzipLayer,
  writeImageIndex,
  writeImageManifest,
  writeRandomTarLayer,
} from './image-builder';
import { startRegistry } from './registry-process';

const execFileAsync = promisify(execFile);

/** Bump whenever the seeded content changes; the cache lives in a directory named after it. */
export const SEED_GENERATOR_VERSION = '1';
export const SEED_INFO_FILE = 'seed-info.json';
export const BIG_LAYER_SIZE = 100 * 1024 * 1024;

export interface SeedBlob {
  digest: string;
  size: number;
  mediaType: string;
}

export interface SeedLayer extends SeedBlob {
  /** sha256 of the uncompressed layer tar */
  diffId: string;
}

export interface SeedManifest extends SeedBlob {
  platform: Platform;
  config: SeedBlob;
  layers: SeedLayer[];
}

export interface SeedImage extends SeedBlob {
  repository: string;
  tag: string;
  /** true when the tag points at an index / manifest list */
  isIndex: boolean;
  /** the children of an index, or the manifest itself (same digest as the image) */
  manifests: SeedManifest[];
}

export interface SeedInfo {
  generatorVersion: string;
  /** registry storage root to serve with `startRegistry({ copyFrom })` */
  storageDir: string;
  ociLayoutDir: string;
  /** keyed by `repository:tag`, e.g. `acme/app:v1.0.0` */
  images: Record<string, SeedImage>;
  /** repository -> tags, sorted */
  tags: Record<string, string[]>;
}

const AMD64: Platform = { os: 'linux', architecture: 'amd64' };
const ARM64: Platform = { os: 'linux', architecture: 'arm64', variant: 'v8' };

function findRepoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, 'utf8')).name === 'gatehouse') return dir;
      } catch {
        // keep walking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

export function defaultSeedDir(): string {
  return join(findRepoRoot(), '.tmp', 'test-upstream', SEED_GENERATOR_VERSION);
}

function seedInfoPathFromEnv(): string {
  const fromEnv = process.env.GATEHOUSE_TEST_SEED;
  if (fromEnv) return fromEnv.endsWith('.json') ? resolve(fromEnv) : join(resolve(fromEnv), SEED_INFO_FILE);
  return join(defaultSeedDir(), SEED_INFO_FILE);
}

export function loadSeedInfo(): SeedInfo {
  const path = seedInfoPathFromEnv();
  if (!existsSync(path)) {
    throw new Error(`no seeded test upstream at ${path}: call prepareSeededStorage() first`);
  }
  return JSON.parse(readFileSync(path, 'utf8')) as SeedInfo;
}

export function seedImage(info: SeedInfo, repository: string, tag: string): SeedImage {
  const image = info.images[`${repository}:${tag}`];
  if (!image) throw new Error(`the seed has no ${repository}:${tag}`);
  return image;
}

export function seedManifestFor(image: SeedImage, architecture: string): SeedManifest {
  const found = image.manifests.find((m) => m.platform.architecture === architecture);
  if (!found) throw new Error(`${image.repository}:${image.tag} has no ${architecture} manifest`);
  return found;
}

/** Config and layer blobs of every manifest of an image, without duplicates. */
export function seedBlobs(image: SeedImage): SeedBlob[] {
  const byDigest = new Map<string, SeedBlob>();
  for (const m of image.manifests) {
    for (const b of [m.config, ...m.layers])
      byDigest.set(b.digest, { digest: b.digest, size: b.size, mediaType: b.mediaType });
  }
  return [...byDigest.values()];
}

/** Layers of `a` that `b` lacks, e.g. `seedLayersOnlyIn(info, 'acme/app:v1.1.0', 'acme/app:v1.0.0')`. */
export function seedLayersOnlyIn(info: SeedInfo, a: string, b: string): SeedLayer[] {
  const [ra, ta] = splitRef(a);
  const [rb, tb] = splitRef(b);
  const other = new Set(seedImage(info, rb, tb).manifests.flatMap((m) => m.layers.map((l) => l.digest)));
  const seen = new Set<string>();
  const out: SeedLayer[] = [];
  for (const m of seedImage(info, ra, ta).manifests) {
    for (const l of m.layers) {
      if (!other.has(l.digest) && !seen.has(l.digest)) {
        seen.add(l.digest);
        out.push(l);
      }
    }
  }
  return out;
}

function splitRef(ref: string): [string, string] {
  const at = ref.lastIndexOf(':');
  return [ref.slice(0, at), ref.slice(at + 1)];
}

// ---- building ------------------------------------------------------------------------

interface Push {
  repository: string;
  tag: string;
  /** skopeo source reference, `oci:<dir>:<ref>` or `dir:<dir>` */
  source: string;
  built: BuiltIndex | BuiltManifest;
}

function blobOf(d: Descriptor): SeedBlob {
  return { digest: d.digest, size: d.size, mediaType: d.mediaType };
}

function layerOf(l: BuiltLayer): SeedLayer {
  return { ...blobOf(l.descriptor), diffId: l.diffId };
}

function manifestOf(m: BuiltManifest): SeedManifest {
  return {
    ...blobOf(m.descriptor),
    platform: m.platform,
    config: blobOf(m.config),
    layers: m.layers.map(layerOf),
  };
}

function imageOf(p: Push): SeedImage {
  if ('manifests' in p.built) {
    return {
      ...blobOf(p.built.descriptor),
      repository: p.repository,
      tag: p.tag,
      isIndex: true,
      manifests: p.built.manifests.map(manifestOf),
    };
  }
  return {
    ...blobOf(p.built.descriptor),
    repository: p.repository,
    tag: p.tag,
    isIndex: false,
    manifests: [manifestOf(p.built)],
  };
}

async function newLayout(root: string, name: string): Promise<OciLayoutWriter> {
  const layout = new OciLayoutWriter(join(root, name));
  await layout.init();
  return layout;
}

async function buildAcmeApp(root: string): Promise<Push[]> {
  const layout = await newLayout(root, 'acme-app');
  const dir = layout.dir;
  const base = async (p: Platform): Promise<BuiltLayer> =>
    writeGzipLayer(layout, [
      { type: 'dir', name: 'etc' },
      { type: 'file', name: 'etc/gatehouse-base', content: `base layer for ${p.os}/${p.architecture}\n` },
      {
        type: 'file',
        name: 'hello.txt',
        content: `hello from the gatehouse test base (${p.architecture})\n`,
      },
    ]);
  const app = async (version: string, p: Platform): Promise<BuiltLayer> =>
    writeGzipLayer(layout, [
      { type: 'dir', name: 'app' },
      { type: 'file', name: 'app/VERSION', content: `${version}\n` },
      { type: 'file', name: 'app/PLATFORM', content: `${p.os}/${p.architecture}\n` },
    ]);
  // Arch-independent, present only in 1.1.0: one blob shared by both of its platforms.
  const notes = await writeGzipLayer(layout, [
    { type: 'dir', name: 'app' },
    { type: 'file', name: 'app/CHANGELOG', content: '1.1.0: adds this layer\n' },
  ]);
  const bases = { amd64: await base(AMD64), arm64: await base(ARM64) };
  const image = async (version: string, p: Platform, extra: BuiltLayer[]): Promise<BuiltManifest> =>
    writeImageManifest(layout, {
      platform: p,
      layers: [bases[p.architecture as 'amd64' | 'arm64'], await app(version, p), ...extra],
      cmd: ['/bin/cat', '/app/VERSION'],
      labels: { 'org.opencontainers.image.version': version },
    });
  const v100 = await writeImageIndex(layout, [
    await image('1.0.0', AMD64, []),
    await image('1.0.0', ARM64, []),
  ]);
  const v110 = await writeImageIndex(layout, [
    await image('1.1.0', AMD64, [notes]),
    await image('1.1.0', ARM64, [notes]),
  ]);
  const rc = await image('2.0.0-rc.1', AMD64, []);
  layout.addRef('v1.0.0', v100.descriptor);
  layout.addRef('v1.1.0', v110.descriptor);
  layout.addRef('v2.0.0-rc.1', rc.descriptor);
  await layout.finish();
  const repository = 'acme/app';
  return [
    { repository, tag: 'v1.0.0', source: `oci:${dir}:v1.0.0`, built: v100 },
    { repository, tag: 'v1.1.0', source: `oci:${dir}:v1.1.0`, built: v110 },
    { repository, tag: 'latest', source: `oci:${dir}:v1.1.0`, built: v110 },
    { repository, tag: 'v2.0.0-rc.1', source: `oci:${dir}:v2.0.0-rc.1`, built: rc },
  ];
}

async function buildAcmeTool(root: string): Promise<Push[]> {
  const layout = await newLayout(root, 'acme-tool');
  const layer = await writeGzipLayer(
    layout,
    [
      { type: 'dir', name: 'usr' },
      { type: 'dir', name: 'usr/bin' },
      { type: 'file', name: 'usr/bin/tool', content: '#!/bin/sh\necho tool 1.0.0\n', mode: 0o755 },
      { type: 'file', name: 'hello.txt', content: 'hello from acme/tool\n' },
    ],
    'docker',
  );
  const m = await writeImageManifest(layout, {
    platform: AMD64,
    layers: [layer],
    format: 'docker',
    cmd: ['/usr/bin/tool'],
  });
  await layout.finish();
  const dirSource = join(root, 'acme-tool-dir');
  await layout.exportDirTransport(m, dirSource);
  return [{ repository: 'acme/tool', tag: '1.0.0', source: `dir:${dirSource}`, built: m }];
}

async function buildAcmeBig(root: string): Promise<Push[]> {
  const layout = await newLayout(root, 'acme-big');
  const layer = await writeRandomTarLayer(layout, {
    fileName: 'big.bin',
    size: BIG_LAYER_SIZE,
    seed: 'acme/big:1.0',
  });
  const m = await writeImageManifest(layout, { platform: AMD64, layers: [layer], cmd: ['/bin/true'] });
  layout.addRef('1.0', m.descriptor);
  await layout.finish();
  return [{ repository: 'acme/big', tag: '1.0', source: `oci:${layout.dir}:1.0`, built: m }];
}

async function buildOtherSecret(root: string): Promise<Push[]> {
  const layout = await newLayout(root, 'other-secret');
  const layer = await writeGzipLayer(layout, [
    { type: 'file', name: 'hello.txt', content: 'hello from other/secret\n' },
  ]);
  const m = await writeImageManifest(layout, { platform: AMD64, layers: [layer] });
  layout.addRef('1.0', m.descriptor);
  await layout.finish();
  return [{ repository: 'other/secret', tag: '1.0', source: `oci:${layout.dir}:1.0`, built: m }];
}

async function skopeoCopy(push: Push, hostPort: string): Promise<void> {
  // --preserve-digests stops skopeo from compressing the uncompressed big layer (or rewriting
  // anything else), so what lands in the registry is byte-identical to the layout.
  const args = [
    '--insecure-policy',
    'copy',
    '--all',
    '--preserve-digests',
    '--dest-tls-verify=false',
    push.source,
    `docker://${hostPort}/${push.repository}:${push.tag}`,
  ];
  try {
    await execFileAsync('skopeo', args, { maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`skopeo ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

async function verifyPushed(url: string, image: SeedImage): Promise<void> {
  const check = async (path: string, digest: string, accept?: string): Promise<void> => {
    const res = await request(`${url}${path}`, {
      method: 'HEAD',
      headers: accept ? { accept } : {},
    });
    await res.body.dump();
    if (res.statusCode !== 200 || res.headers['docker-content-digest'] !== digest) {
      throw new Error(
        `seed verification failed for ${path}: ${res.statusCode} ${String(res.headers['docker-content-digest'])} (wanted ${digest})`,
      );
    }
  };
  const accept = ALL_MANIFEST_MEDIA_TYPES.join(', ');
  await check(`/v2/${image.repository}/manifests/${image.tag}`, image.digest, accept);
  for (const m of image.manifests) {
    await check(`/v2/${image.repository}/manifests/${m.digest}`, m.digest, accept);
    for (const b of [m.config, ...m.layers])
      await check(`/v2/${image.repository}/blobs/${b.digest}`, b.digest);
  }
}

async function buildSeed(target: string): Promise<SeedInfo> {
  const ociRoot = join(target, 'oci');
  const storageDir = join(target, 'storage');
  await mkdir(ociRoot, { recursive: true });
  const pushes = [
    ...(await buildAcmeApp(ociRoot)),
    ...(await buildAcmeTool(ociRoot)),
    ...(await buildAcmeBig(ociRoot)),
    ...(await buildOtherSecret(ociRoot)),
  ];
  const registry = await startRegistry({ storageDir });
  const images: Record<string, SeedImage> = {};
  try {
    for (const push of pushes) await skopeoCopy(push, registry.hostPort);
    for (const push of pushes) {
      const image = imageOf(push);
      await verifyPushed(registry.url, image);
      images[`${push.repository}:${push.tag}`] = image;
    }
  } finally {
    await registry.stop();
  }
  const tags: Record<string, string[]> = {};
  for (const p of pushes) (tags[p.repository] ??= []).push(p.tag);
  for (const list of Object.values(tags)) list.sort();
  return { generatorVersion: SEED_GENERATOR_VERSION, storageDir, ociLayoutDir: ociRoot, images, tags };
}

// ---- caching across processes ---------------------------------------------------------

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function withLock<T>(
  lockDir: string,
  fn: () => Promise<T>,
  isDone: () => boolean,
): Promise<T | undefined> {
  const deadline = Date.now() + 10 * 60 * 1000;
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (isDone()) return undefined;
      const owner = Number(await readFile(join(lockDir, 'pid'), 'utf8').catch(() => 'NaN'));
      // A lock whose owner died (or never wrote its pid after a while) is stale.
      if (Number.isFinite(owner) && !pidAlive(owner)) await rm(lockDir, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`timed out waiting for the seed lock ${lockDir}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

let preparing: Promise<SeedInfo> | undefined;

/**
 * Builds the seed images, pushes them into a registry storage directory and records what was
 * pushed. The result is cached under `.tmp/test-upstream/<version>/` and shared by every test
 * process; only the first caller of a new version pays for the build (a few seconds).
 */
export function prepareSeededStorage(): Promise<SeedInfo> {
  preparing ??= prepare().catch((err) => {
    preparing = undefined;
    throw err;
  });
  return preparing;
}

async function prepare(): Promise<SeedInfo> {
  const root = defaultSeedDir();
  const infoPath = join(root, SEED_INFO_FILE);
  const done = (): boolean => existsSync(infoPath);
  if (!done()) {
    await mkdir(dirname(root), { recursive: true });
    await withLock(
      `${root}.lock`,
      async () => {
        if (done()) return;
        await rm(root, { recursive: true, force: true });
        const building = `${root}.building-${process.pid}`;
        await rm(building, { recursive: true, force: true });
        const built = await buildSeed(building);
        const info: SeedInfo = {
          ...built,
          storageDir: join(root, 'storage'),
          ociLayoutDir: join(root, 'oci'),
        };
        await writeFile(join(building, SEED_INFO_FILE), JSON.stringify(info, null, 2));
        await rename(building, root);
      },
      done,
    );
  }
  return JSON.parse(await readFile(infoPath, 'utf8')) as SeedInfo;
}
