import { Injectable } from '@nestjs/common';
import { Gauge } from 'prom-client';
import { GatewayConfig } from '@gatehouse/config';
import { MetricsService } from '@gatehouse/observability';

/** A taken slot; `release` is idempotent, so every way a response ends may call it. */
export interface BlobStreamSlot {
  release(): void;
}

/**
 * Concurrent blob bodies per member (or per client IP without a token). A blob stream holds a
 * socket, a cache file and a read buffer for as long as its client takes; without a cap one
 * member's stalled downloads exhausted the process's descriptors and every other member's pulls
 * and the health check failed with them. `RATE_LIMIT_BLOB_STREAMS_PER_MEMBER` (default 64; 0
 * disables). `gatehouse_blob_streams_active` is the number of slots taken.
 */
@Injectable()
export class BlobStreamSlots {
  private readonly active = new Map<string, number>();
  private readonly gauge: Gauge;
  private total = 0;
  readonly perKey: number;

  constructor(config: GatewayConfig, metrics: MetricsService) {
    this.perKey = config.rateLimit.blobStreamsPerMember;
    this.gauge = metrics.gauge('gatehouse_blob_streams_active', 'Blob bodies being streamed to clients');
  }

  /** A slot for `key`, or null when it already streams `perKey` blobs. */
  acquire(key: string): BlobStreamSlot | null {
    const n = this.active.get(key) ?? 0;
    if (this.perKey > 0 && n >= this.perKey) return null;
    this.active.set(key, n + 1);
    this.total++;
    this.gauge.set(this.total);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const left = (this.active.get(key) ?? 1) - 1;
        if (left <= 0) this.active.delete(key);
        else this.active.set(key, left);
        this.total--;
        this.gauge.set(this.total);
      },
    };
  }

  /** Slots taken by `key`, or by everyone. */
  count(key?: string): number {
    return key === undefined ? this.total : (this.active.get(key) ?? 0);
  }
}
