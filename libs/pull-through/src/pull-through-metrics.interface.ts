/** What the pull path reports beyond the blob cache's own counters. */
export interface PullThroughMetrics {
  /** An upstream tag list named tags that are not valid OCI tags; they were skipped. */
  invalidUpstreamTags(repository: string, tags: string[]): void;
}

export class NoopPullThroughMetrics implements PullThroughMetrics {
  invalidUpstreamTags(): void {}
}
