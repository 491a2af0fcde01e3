import { AppLogger, MetricsService } from '@gatehouse/observability';
import { PullThroughMetrics } from './pull-through-metrics.interface';

/** The pull path's own counters as Prometheus metrics, with a warning for the operator. */
export class PromPullThroughMetrics implements PullThroughMetrics {
  private readonly invalidTags;

  constructor(
    metrics: MetricsService,
    private readonly logger: AppLogger,
  ) {
    this.invalidTags = metrics.counter(
      'gatehouse_upstream_invalid_tags_total',
      'Tags in upstream tag lists that are not valid OCI tags (skipped)',
    );
  }

  invalidUpstreamTags(repository: string, tags: string[]): void {
    this.invalidTags.inc(tags.length);
    this.logger.warn(
      { repository, count: tags.length, sample: tags.slice(0, 5) },
      'the upstream tag list holds tags that are not valid OCI tags; they are skipped. Fix: check the upstream registry',
    );
  }
}
