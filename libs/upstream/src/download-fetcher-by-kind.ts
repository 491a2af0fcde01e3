import type { DownloadFetcher } from './upstream-download.fetcher';
import type { UpstreamKind } from './upstream-kind';

/**
 * The download port for the upstream's kind at each call: Forgejo's APIs or another Gatehouse's
 * /downloads/ routes. When the kind is neither configured nor detected yet, `resolveKind` asks
 * the upstream first (the shared auth discovery), so the first download after a start goes to
 * the right routes.
 */
export class DownloadFetcherByKind implements DownloadFetcher {
  constructor(
    private readonly fetchers: Record<UpstreamKind, DownloadFetcher>,
    private readonly resolveKind: () => Promise<UpstreamKind>,
  ) {}

  private async fetcher(): Promise<DownloadFetcher> {
    return this.fetchers[await this.resolveKind()];
  }

  async listReleases(...args: Parameters<DownloadFetcher['listReleases']>) {
    return (await this.fetcher()).listReleases(...args);
  }

  async listPackageVersions(...args: Parameters<DownloadFetcher['listPackageVersions']>) {
    return (await this.fetcher()).listPackageVersions(...args);
  }

  async listPackageFiles(...args: Parameters<DownloadFetcher['listPackageFiles']>) {
    return (await this.fetcher()).listPackageFiles(...args);
  }

  async openReleaseAsset(...args: Parameters<DownloadFetcher['openReleaseAsset']>) {
    return (await this.fetcher()).openReleaseAsset(...args);
  }

  async openPackageFile(...args: Parameters<DownloadFetcher['openPackageFile']>) {
    return (await this.fetcher()).openPackageFile(...args);
  }
}
