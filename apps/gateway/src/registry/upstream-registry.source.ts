import { Injectable } from '@nestjs/common';
import { FetchedManifest, ManifestHead, UpstreamBlob, UpstreamSource } from '@gatehouse/pull-through';
import { UpstreamRegistryClient } from '@gatehouse/upstream';

/** Adapts the upstream client to the narrow interface the pull-through layer needs. */
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
    digest: string,
    options: {
      range?: { start: number; end?: number };
      expectedSize?: number;
      signal?: AbortSignal;
      /** false only for a caller that verifies the digest itself (the blob cache's fill). */
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
    return {
      status: b.status,
      body: b.body,
      size: b.size ?? -1,
      ...(b.contentRange ? { contentRange: b.contentRange } : {}),
    };
  }

  async headBlob(name: string, digest: string, signal?: AbortSignal): Promise<{ size: number } | null> {
    const h = await this.client.headBlob(name, digest, { signal });
    return h.found ? { size: h.size ?? -1 } : null;
  }

  async listTags(name: string, signal?: AbortSignal): Promise<string[] | null> {
    const list = await this.client.listAllTags(name, { signal });
    return list.found ? list.tags : null;
  }
}
