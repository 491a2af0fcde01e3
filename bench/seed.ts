import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
// The bench builds its images with the test harness's image builder and registry process.
// eslint-disable-next-line no-restricted-imports
import {
  OciLayoutWriter,
  startRegistry,
  writeImageManifest,
  writeRandomTarLayer,
} from '../libs/testing/src/upstream';
import { BENCH_DIR } from './paths';

const execFileAsync = promisify(execFile);

/** Bump when the bench images change; the storage is cached in a directory named after it. */
const BENCH_SEED_VERSION = '1';

/** The blob of figures 1, 2, 3 and 5: 200 MB of incompressible bytes in an uncompressed tar. */
export const BIG_FILE_BYTES = 200_000_000;
/** The blob of figure 4 (single flight): large enough that 32 requests overlap one fill. */
export const FLIGHT_FILE_BYTES = 64 * 1024 * 1024;

export interface BenchBlob {
  digest: string;
  size: number;
}

export interface BenchImage {
  repository: string;
  tag: string;
  manifestDigest: string;
  manifestMediaType: string;
  config: BenchBlob;
  layer: BenchBlob;
}

export interface BenchSeed {
  version: string;
  /** Registry storage root (serve a private copy with startRegistry({ copyFrom })). */
  storageDir: string;
  big: BenchImage;
  flight: BenchImage;
}

/** Path of a blob's data file inside a distribution registry storage tree. */
export function registryBlobPath(storageDir: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
}

async function buildImage(
  root: string,
  repository: string,
  tag: string,
  size: number,
): Promise<{ image: BenchImage; source: string }> {
  const layout = new OciLayoutWriter(join(root, repository.replace('/', '-')));
  await layout.init();
  const layer = await writeRandomTarLayer(layout, {
    fileName: 'payload.bin',
    size,
    seed: `${repository}:${tag}`,
  });
  const m = await writeImageManifest(layout, {
    platform: { os: 'linux', architecture: 'amd64' },
    layers: [layer],
    cmd: ['/bin/true'],
  });
  layout.addRef(tag, m.descriptor);
  await layout.finish();
  return {
    source: `oci:${layout.dir}:${tag}`,
    image: {
      repository,
      tag,
      manifestDigest: m.descriptor.digest,
      manifestMediaType: m.descriptor.mediaType,
      config: { digest: m.config.digest, size: m.config.size },
      layer: { digest: layer.descriptor.digest, size: layer.descriptor.size },
    },
  };
}

/**
 * The bench images in a registry storage tree, built once and reused while BENCH_SEED_VERSION
 * stays the same (.tmp/bench/seed-<version>/). Building takes about half a minute (400 MB on disk).
 */
export async function prepareBenchSeed(log: (s: string) => void): Promise<BenchSeed> {
  const root = join(BENCH_DIR, `seed-${BENCH_SEED_VERSION}`);
  const infoPath = join(root, 'seed.json');
  if (existsSync(infoPath)) return JSON.parse(await readFile(infoPath, 'utf8')) as BenchSeed;

  log('building the bench images (once): a 200 MB layer and a 64 MiB layer');
  const building = `${root}.building`;
  await rm(building, { recursive: true, force: true });
  await rm(root, { recursive: true, force: true });
  const oci = join(building, 'oci');
  await mkdir(oci, { recursive: true });
  const big = await buildImage(oci, 'bench/big', '1.0', BIG_FILE_BYTES);
  const flight = await buildImage(oci, 'bench/flight', '1.0', FLIGHT_FILE_BYTES);
  const storageDir = join(building, 'storage');
  const registry = await startRegistry({ storageDir });
  try {
    for (const { image, source } of [big, flight]) {
      await execFileAsync('skopeo', [
        '--insecure-policy',
        'copy',
        '--preserve-digests',
        '--dest-tls-verify=false',
        source,
        `docker://${registry.hostPort}/${image.repository}:${image.tag}`,
      ]);
    }
  } finally {
    await registry.stop();
  }
  // The OCI layout was only the push source; the registry storage holds the same bytes.
  await rm(oci, { recursive: true, force: true });
  const seed: BenchSeed = {
    version: BENCH_SEED_VERSION,
    storageDir: join(root, 'storage'),
    big: big.image,
    flight: flight.image,
  };
  await writeFile(join(building, 'seed.json'), JSON.stringify(seed, null, 2));
  await rename(building, root);
  return seed;
}
