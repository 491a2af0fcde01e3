import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { LRUCache } from 'lru-cache';
import { computeDigest, parseManifest, ParsedManifest, SHA256_DIGEST_REGEXP } from '@gatehouse/oci';
import { CACHE_DIR_MODE, CACHE_FILE_MODE } from '@gatehouse/blob-cache';

export interface StoredManifest {
  digest: string;
  mediaType: string;
  body: Buffer;
  parsed: ParsedManifest;
}

export interface ManifestStoreOptions {
  /** Manifests are kept under `<dir>/sha256/<2 hex>/<64 hex>`. */
  dir: string;
  /** Bound of the in-memory copy, in bytes of manifest bodies. */
  memoryMaxBytes: number;
}

/**
 * Manifests by digest: immutable, so once verified they are kept for good, in memory (LRU,
 * bounded by bytes) and on disk (so a restart or an upstream outage loses nothing).
 *
 * A disk file is `<media type>\n<body>` written to a temp file and renamed, so a reader sees a
 * whole manifest or none; on read the body is hashed again and a damaged file is dropped.
 */
export class ManifestStore {
  /** LRU bounded by body bytes (lru-cache); a manifest larger than the bound is not kept. */
  private readonly memory: LRUCache<string, StoredManifest>;

  constructor(private readonly options: ManifestStoreOptions) {
    this.memory = new LRUCache<string, StoredManifest>({
      maxSize: Math.max(1, options.memoryMaxBytes),
      sizeCalculation: (m) => Math.max(1, m.body.length),
    });
  }

  async init(): Promise<void> {
    await fs.mkdir(path.join(this.options.dir, 'tmp'), { recursive: true, mode: CACHE_DIR_MODE });
    for (const entry of await fs.readdir(path.join(this.options.dir, 'tmp'))) {
      await fs.rm(path.join(this.options.dir, 'tmp', entry), { force: true });
    }
  }

  /** Memory, then disk. Never upstream: callers decide whether a digest may be fetched. */
  async get(digest: string): Promise<StoredManifest | null> {
    const hit = this.memory.get(digest);
    if (hit) return hit;
    const file = this.filePath(digest);
    if (!file) return null;
    let raw: Buffer;
    try {
      raw = await fs.readFile(file);
    } catch {
      return null;
    }
    const nl = raw.indexOf(0x0a);
    const body = nl >= 0 ? raw.subarray(nl + 1) : Buffer.alloc(0);
    if (nl < 0 || computeDigest(body) !== digest) {
      await fs.rm(file, { force: true });
      return null;
    }
    const stored = this.remember(digest, raw.subarray(0, nl).toString('utf8'), Buffer.from(body));
    return stored;
  }

  /** Stores a manifest whose digest the caller has verified (the upstream client does). */
  async put(digest: string, mediaType: string, body: Buffer): Promise<StoredManifest> {
    const stored = this.remember(digest, mediaType, body);
    const file = this.filePath(digest);
    if (file) {
      const tmp = path.join(this.options.dir, 'tmp', randomUUID());
      try {
        await fs.mkdir(path.dirname(file), { recursive: true, mode: CACHE_DIR_MODE });
        await fs.writeFile(tmp, Buffer.concat([Buffer.from(`${stored.mediaType}\n`), body]), {
          mode: CACHE_FILE_MODE,
        });
        await fs.rename(tmp, file);
      } catch {
        // The disk copy is an optimisation; the memory copy still serves this process. A write
        // that failed half-way (disk full) must not leave its temp file behind to fill it further.
        await fs.rm(tmp, { force: true }).catch(() => undefined);
      }
    }
    return stored;
  }

  private remember(digest: string, mediaType: string, body: Buffer): StoredManifest {
    const parsed = parseManifest(body, mediaType);
    const stored: StoredManifest = { digest, mediaType: mediaType || parsed.mediaType, body, parsed };
    if (body.length > this.options.memoryMaxBytes) return stored;
    this.memory.set(digest, stored);
    return stored;
  }

  private filePath(digest: string): string | null {
    if (!SHA256_DIGEST_REGEXP.test(digest)) return null;
    const hex = digest.slice('sha256:'.length);
    return path.join(this.options.dir, 'sha256', hex.slice(0, 2), hex);
  }
}
