import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { gzipSync } from 'node:zlib';
import { buildTar, TarEntry, tarHeader, tarPadding, TAR_TRAILER } from './tar-writer';

export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** Every manifest media type a registry may hold; sent as Accept so nothing is converted. */
export const ALL_MANIFEST_MEDIA_TYPES = [
  MediaTypes.ociIndex,
  MediaTypes.ociManifest,
  MediaTypes.dockerManifestList,
  MediaTypes.dockerManifest,
] as const;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface BuiltLayer {
  descriptor: Descriptor;
  /** sha256 of the uncompressed tar, as listed in the config's rootfs.diff_ids */
  diffId: string;
}

export interface BuiltManifest {
  descriptor: Descriptor;
  config: Descriptor;
  layers: BuiltLayer[];
  platform: Platform;
}

export interface BuiltIndex {
  descriptor: Descriptor;
  manifests: BuiltManifest[];
}

export type ImageFormat = 'oci' | 'docker';

export function sha256Digest(bytes: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}

/** gzip with a zero mtime (zlib's default) and fixed level, so output only depends on zlib. */
export function gzipDeterministic(bytes: Buffer): Buffer {
  return gzipSync(bytes, { level: 6 });
}

/**
 * Writes an OCI image layout (oci-layout, index.json, blobs/sha256/...) that
 * `skopeo copy oci:<dir>:<tag>` can read.
 */
export class OciLayoutWriter {
  private readonly refs: Descriptor[] = [];

  constructor(readonly dir: string) {}

  private blobPath(digest: string): string {
    return join(this.dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  }

  async init(): Promise<void> {
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(this.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  }

  async writeBlob(bytes: Buffer, mediaType: string): Promise<Descriptor> {
    const digest = sha256Digest(bytes);
    await writeFile(this.blobPath(digest), bytes);
    return { mediaType, digest, size: bytes.length };
  }

  async writeJson(value: unknown, mediaType: string): Promise<{ descriptor: Descriptor; bytes: Buffer }> {
    const bytes = Buffer.from(JSON.stringify(value), 'utf8');
    return { descriptor: await this.writeBlob(bytes, mediaType), bytes };
  }

  /** Moves a file whose digest is already known into the blob directory. */
  async adoptBlobFile(path: string, digest: string): Promise<void> {
    await rename(path, this.blobPath(digest));
  }

  tempPath(name: string): string {
    return join(this.dir, `.${name}.partial`);
  }

  /**
   * Exports one image manifest in skopeo's `dir:` transport layout. skopeo's `oci:` transport
   * only resolves references to OCI media types, so Docker schema2 images are pushed from here.
   */
  async exportDirTransport(manifest: BuiltManifest, target: string): Promise<void> {
    await mkdir(target, { recursive: true });
    await writeFile(join(target, 'version'), 'Directory Transport Version: 1.1\n');
    await copyFile(this.blobPath(manifest.descriptor.digest), join(target, 'manifest.json'));
    for (const blob of [manifest.config, ...manifest.layers.map((l) => l.descriptor)]) {
      await copyFile(this.blobPath(blob.digest), join(target, blob.digest.slice('sha256:'.length)));
    }
  }

  addRef(name: string, descriptor: Descriptor): void {
    const { platform: _platform, ...rest } = descriptor;
    this.refs.push({ ...rest, annotations: { 'org.opencontainers.image.ref.name': name } });
  }

  async finish(): Promise<void> {
    await writeFile(join(this.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: this.refs }));
  }
}

export async function writeGzipLayer(
  layout: OciLayoutWriter,
  entries: readonly TarEntry[],
  format: ImageFormat = 'oci',
): Promise<BuiltLayer> {
  const tar = buildTar(entries);
  const mediaType = format === 'docker' ? MediaTypes.dockerLayerGzip : MediaTypes.ociLayerGzip;
  const descriptor = await layout.writeBlob(gzipDeterministic(tar), mediaType);
  return { descriptor, diffId: sha256Digest(tar) };
}

/**
 * Deterministic incompressible bytes: the AES-128-CTR keystream under a key derived from the
 * seed. It runs at memory speed, so a 100 MiB layer takes well under a second to produce.
 */
export function pseudoRandomStream(seed: string): (length: number) => Buffer {
  const key = createHash('sha256').update(`key:${seed}`).digest().subarray(0, 16);
  const iv = createHash('sha256').update(`iv:${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, iv);
  return (length) => cipher.update(Buffer.alloc(length));
}

/**
 * An uncompressed tar layer holding one file of `size` pseudo-random bytes, streamed to disk
 * (never held in memory) and hashed on the way. Uncompressed, its digest is also its diff_id.
 */
export async function writeRandomTarLayer(
  layout: OciLayoutWriter,
  options: { fileName: string; size: number; seed: string },
): Promise<BuiltLayer> {
  const tmp = layout.tempPath(
    `random-${createHash('sha256').update(options.seed).digest('hex').slice(0, 16)}`,
  );
  const out = createWriteStream(tmp);
  const hash = createHash('sha256');
  let written = 0;
  const write = async (chunk: Buffer): Promise<void> => {
    hash.update(chunk);
    written += chunk.length;
    if (!out.write(chunk)) await once(out, 'drain');
  };
  const next = pseudoRandomStream(options.seed);
  await write(tarHeader({ type: 'file', name: options.fileName, size: options.size }));
  const chunkSize = 1 << 20;
  for (let left = options.size; left > 0; left -= chunkSize) {
    await write(next(Math.min(chunkSize, left)));
  }
  await write(tarPadding(options.size));
  await write(TAR_TRAILER);
  out.end();
  await once(out, 'finish');
  const digest = 'sha256:' + hash.digest('hex');
  if ((await stat(tmp)).size !== written) throw new Error('random layer was not fully written');
  await layout.adoptBlobFile(tmp, digest);
  return { descriptor: { mediaType: MediaTypes.ociLayerTar, digest, size: written }, diffId: digest };
}

export async function writeImageManifest(
  layout: OciLayoutWriter,
  options: {
    platform: Platform;
    layers: BuiltLayer[];
    format?: ImageFormat;
    cmd?: string[];
    labels?: Record<string, string>;
  },
): Promise<BuiltManifest> {
  const format = options.format ?? 'oci';
  const created = '2024-01-01T00:00:00Z';
  const config = {
    architecture: options.platform.architecture,
    os: options.platform.os,
    ...(options.platform.variant ? { variant: options.platform.variant } : {}),
    created,
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: options.cmd ?? ['/bin/sh'],
      Labels: options.labels ?? {},
    },
    rootfs: { type: 'layers', diff_ids: options.layers.map((l) => l.diffId) },
    history: options.layers.map((_, i) => ({ created, created_by: `gatehouse test seed layer ${i}` })),
  };
  const configType = format === 'docker' ? MediaTypes.dockerConfig : MediaTypes.ociConfig;
  const { descriptor: configDescriptor } = await layout.writeJson(config, configType);
  const manifestType = format === 'docker' ? MediaTypes.dockerManifest : MediaTypes.ociManifest;
  const manifest = {
    schemaVersion: 2,
    mediaType: manifestType,
    config: configDescriptor,
    layers: options.layers.map((l) => l.descriptor),
  };
  const { descriptor } = await layout.writeJson(manifest, manifestType);
  return {
    descriptor: { ...descriptor, platform: options.platform },
    config: configDescriptor,
    layers: options.layers,
    platform: options.platform,
  };
}

export async function writeImageIndex(
  layout: OciLayoutWriter,
  manifests: BuiltManifest[],
  format: ImageFormat = 'oci',
): Promise<BuiltIndex> {
  const mediaType = format === 'docker' ? MediaTypes.dockerManifestList : MediaTypes.ociIndex;
  const index = {
    schemaVersion: 2,
    mediaType,
    manifests: manifests.map((m) => ({
      mediaType: m.descriptor.mediaType,
      digest: m.descriptor.digest,
      size: m.descriptor.size,
      platform: m.platform,
    })),
  };
  const { descriptor } = await layout.writeJson(index, mediaType);
  return { descriptor, manifests };
}
