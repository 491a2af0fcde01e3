/** Where one request's manifest came from: the store, a fetch it made, or a fetch it waited for. */
export type ManifestCacheResult = 'hit' | 'miss' | 'joined';

/**
 * The manifests one request's work fetched from upstream. Resolving a tag or proving that a
 * digest is reachable may fetch the very manifest the request then serves; the trace is how the
 * served manifest's cache result stays truthful (a cold GET is a miss even though the manifest is
 * in the store by the time it is served). One trace per request, never shared.
 */
export class ManifestFetchTrace {
  private readonly fetched = new Map<string, 'miss' | 'joined'>();

  /** This request's own work fetched `digest` from upstream. */
  fetchedHere(digest: string): void {
    this.fetched.set(digest, 'miss');
  }

  /** Adds what a step run for this request fetched; its own results stand. */
  absorb(step: ManifestFetchTrace): void {
    for (const [digest, result] of step.fetched) {
      if (this.fetched.get(digest) !== 'miss') this.fetched.set(digest, result);
    }
  }

  /** Adds what another request's work fetched while this one waited for it. */
  joined(other: ManifestFetchTrace): void {
    for (const digest of other.fetched.keys()) {
      if (!this.fetched.has(digest)) this.fetched.set(digest, 'joined');
    }
  }

  resultFor(digest: string): ManifestCacheResult {
    return this.fetched.get(digest) ?? 'hit';
  }
}
