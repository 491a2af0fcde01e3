export * from './upstream.error';
export * from './www-authenticate.parser';
export * from './token-response.parser';
export * from './link-header.parser';
export * from './retry.policy';
export * from './credential-origin.policy';
export * from './upstream-failure.classifier';
export * from './verified-blob.stream';
export * from './upstream.types';
export * from './upstream-registry.client';
export * from './upstream-kind';
export { MEMBER_TAG_HEADER, MEMBER_TAG_KEY_PURPOSE, memberTagOf } from './upstream-member-tag';
export * from './upstream-health.service';
export * from './upstream.module';
export type {
  UpstreamDownload,
  UpstreamPackageFile,
  UpstreamPackageVersion,
  UpstreamRelease,
  UpstreamReleaseAsset,
} from './upstream-download.fetcher';
export { UpstreamDownloadFetcher } from './upstream-download.fetcher';
export type { DownloadFetcher } from './upstream-download.fetcher';
export { GatehouseDownloadFetcher } from './gatehouse-download.fetcher';
export { upstreamMember } from './explain-hint';
