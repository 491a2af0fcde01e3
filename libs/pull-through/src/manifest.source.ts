import { OciError } from '@gatehouse/oci';
import { ManifestCacheResult, ManifestFetchTrace } from './manifest-fetch.trace';
import { PullThroughService } from './pull-through.service';

/** A manifest ready to be written to the client. */
export interface ManifestReply {
  /** `hit`: served from the store without this request fetching it. */
  source: ManifestCacheResult;
  digest: string;
  mediaType: string;
  /** Bytes of `body`. */
  size: number;
  body: Buffer;
}

/**
 * Serves manifests by digest: the store (memory, then disk) first, then upstream, written
 * through; one upstream fetch per digest however many requests ask at once. The caller must
 * have established that the digest may be served (resolved from an admitted tag, or reachable
 * from one) with the same trace, so the reply's `source` counts that work too.
 */
export class ManifestSource {
  constructor(private readonly pull: PullThroughService) {}

  async get(name: string, digest: string, trace: ManifestFetchTrace): Promise<ManifestReply> {
    const manifest = await this.pull.getManifest(name, digest, trace);
    if (!manifest) throw new OciError('MANIFEST_UNKNOWN', { reason: 'manifest_unknown_upstream' });
    return {
      source: trace.resultFor(manifest.digest),
      digest: manifest.digest,
      mediaType: manifest.mediaType,
      size: manifest.body.length,
      body: manifest.body,
    };
  }
}
