import { GatewayConfig } from '@gatehouse/config';
import { Clock } from '@gatehouse/observability';
import { UpstreamRegistryClient } from '@gatehouse/upstream';

/**
 * What the upstream lets this gateway's service credentials see, for `/v2/_catalog`: null when
 * the upstream does not filter by member (Forgejo: the service token sees what the entitlements
 * name), the listed repositories when it does (another Gatehouse).
 */
export abstract class UpstreamCatalog {
  abstract visible(): Promise<ReadonlySet<string> | null>;
}

/** No upstream filter: the catalog is the member's entitlements. */
export class UnfilteredUpstreamCatalog extends UpstreamCatalog {
  visible(): Promise<null> {
    return Promise.resolve(null);
  }
}

/**
 * Another Gatehouse's `/v2/_catalog` for this gateway's member there, held for the tag TTL so a
 * catalog request costs at most one upstream listing per TTL. A failed listing shows nothing
 * rather than repositories the upstream may refuse.
 */
export class GatehouseUpstreamCatalog extends UpstreamCatalog {
  private held: { at: number; repositories: ReadonlySet<string> } | null = null;

  constructor(
    private readonly client: Pick<UpstreamRegistryClient, 'listCatalog'>,
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {
    super();
  }

  async visible(): Promise<ReadonlySet<string>> {
    const now = this.clock.now();
    if (this.held && now - this.held.at < this.ttlMs) return this.held.repositories;
    const listed = await this.client.listCatalog().catch(() => null);
    const repositories = new Set((listed ?? []).map((r) => r.toLowerCase()));
    if (listed !== null) this.held = { at: now, repositories };
    return repositories;
  }
}

/**
 * The filter for the upstream's kind at each request (UPSTREAM_KIND, or detected: a kind learnt
 * after the start, or changed, applies from the next catalog request on).
 */
export class UpstreamCatalogByKind extends UpstreamCatalog {
  private readonly unfiltered = new UnfilteredUpstreamCatalog();
  private readonly gatehouse: GatehouseUpstreamCatalog;

  constructor(
    private readonly client: Pick<UpstreamRegistryClient, 'listCatalog' | 'resolveKind'>,
    ttlMs: number,
    clock: Clock,
  ) {
    super();
    this.gatehouse = new GatehouseUpstreamCatalog(client, ttlMs, clock);
  }

  async visible(): Promise<ReadonlySet<string> | null> {
    const kind = await this.client.resolveKind();
    return kind === 'gatehouse' ? this.gatehouse.visible() : this.unfiltered.visible();
  }
}

export function upstreamCatalogOf(
  config: GatewayConfig,
  client: UpstreamRegistryClient,
  clock: Clock,
): UpstreamCatalog {
  return new UpstreamCatalogByKind(client, config.cache.tagTtlSeconds * 1000, clock);
}
