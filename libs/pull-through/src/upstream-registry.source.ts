import { Injectable } from '@nestjs/common';
import type { Digest, UpstreamBlob } from '@gatehouse/oci';
import { UpstreamRegistryClient } from '@gatehouse/upstream';
import { FetchedManifest, ManifestHead, UpstreamSource } from './upstream-source.interface';

/** The upstream client behind the pull path's `UpstreamSource` port. */
@Injectable()
export class UpstreamRegistrySource implements UpstreamSource {
  constructor(private readonly client: UpstreamRegistryClient) {}

  async getManifest(name: string, reference: string, signal?: AbortSignal): Promise<FetchedManifest | null> {
    const m = await this.client.getManifest(name, reference, { method: 'GET', signal });
    if (!m.found || !m.body) return null;
    return { body: m.body, mediaType: m.mediaType, digest: m.digest };
  }

  async headManifest(name: string, reference: string, signal?: AbortSignal): Promise<ManifestHead | null> {
    const m = await this.client.getManifest(name, reference, { method: 'HEAD', signal });
    return m.found ? { mediaType: m.mediaType, digest: m.digest, size: m.size } : null;
  }

  async getBlob(
    name: string,
    digest: Digest,
    options: {
      range?: { start: number; end?: number };
      expectedSize?: number;
      signal?: AbortSignal;
      verifyDigest?: boolean;
    },
  ): Promise<UpstreamBlob | null> {
    const range = options.range ? `bytes=${options.range.start}-${options.range.end ?? ''}` : undefined;
    const b = await this.client.getBlob(name, digest, {
      range,
      expectedSize: options.expectedSize,
      signal: options.signal,
      verifyDigest: options.verifyDigest,
    });
    if (!b.found) return null;
    const { found: _found, ...blob } = b;
    return blob;
  }

  async headBlob(name: string, digest: Digest, signal?: AbortSignal): Promise<{ size: number } | null> {
    const h = await this.client.headBlob(name, digest, { signal });
    return h.found ? { size: h.size ?? -1 } : null;
  }

  async listTags(name: string, signal?: AbortSignal): Promise<string[] | null> {
    const list = await this.client.listAllTags(name, { signal });
    return list.found ? list.tags : null;
  }

  /** The upstream's referrers API; `null` when it has none, so the tag schema is read instead. */
  listReferrers(name: string, digest: string, signal?: AbortSignal): Promise<Buffer | null> {
    return this.client.listReferrers(name, digest as Digest, { signal });
  }
}
