import { Controller, Get, Res, UseFilters, UseGuards } from '@nestjs/common';
import bytes from 'bytes';
import type { FastifyReply } from 'fastify';
import { BlobCacheService, BlobCacheStats } from '@gatehouse/blob-cache';
import { GatewayConfig } from '@gatehouse/config';
import { ReplicaHeartbeat, ReplicaView } from '@gatehouse/database';
import { MetricsService } from '@gatehouse/observability';
import { ReadinessService } from '../health/readiness.service';
import { ConsoleErrorsFilter } from './console-errors.filter';
import { ConsoleGuard, Staff } from './console.guard';
import { esc, layout, time } from './console-html';
import { sendHtml } from './console-http';
import type { StaffSession } from './console-session.store';

/** The metrics a health page shows: cache, eviction, audit queue and spool, upstream. */
const SHOWN = /^gatehouse_.*(cache|evict|audit|spool|upstream)/;

const REPLICA_HEAD = `<thead><tr><th scope="col">Replica</th><th scope="col">Version</th><th scope="col">Listens on</th><th scope="col">Started</th><th scope="col">Last seen</th></tr></thead>`;

function replicaTable(rows: ReplicaView[], caption: string): string {
  const body = rows
    .map(
      (r) =>
        `<tr><th scope="row"><code>${esc(r.id)}</code>${r.self ? ' <span class="muted">(this page)</span>' : ''}</th><td>${esc(r.version)}</td><td><code>${esc(r.listenAddress)}</code></td><td>${time(r.startedAt)}</td><td>${time(r.lastSeenAt)}</td></tr>`,
    )
    .join('');
  return `<table><caption>${esc(caption)}</caption>${REPLICA_HEAD}<tbody>${body}</tbody></table>`;
}

/** What this replica's blob cache holds against its cap, and what eviction has removed. */
export function cacheUse(s: BlobCacheStats): string {
  const held = `${s.blobs} blob${s.blobs === 1 ? '' : 's'}, ${bytes(s.bytes) ?? '0B'}`;
  const cap = s.maxBytes
    ? ` of ${bytes(s.maxBytes)} (${Math.round((100 * s.bytes) / s.maxBytes)} %)`
    : ' (no cap)';
  return `This replica’s cache holds ${esc(held)}${esc(cap)}; ${s.evictions} evicted since it started.`;
}

/**
 * Readiness (the /readyz rows), the replicas seen recently (their heartbeats), cache settings and
 * the cache, audit and upstream metrics of this replica.
 */
@Controller('console/health')
@UseGuards(ConsoleGuard)
@UseFilters(ConsoleErrorsFilter)
export class ConsoleHealthController {
  constructor(
    private readonly readiness: ReadinessService,
    private readonly metrics: MetricsService,
    private readonly config: GatewayConfig,
    private readonly replicas: ReplicaHeartbeat,
    private readonly blobs: BlobCacheService,
  ) {}

  @Get()
  async page(@Res() reply: FastifyReply, @Staff() staff: StaffSession): Promise<void> {
    const checks = await Promise.all(
      (['database', 'cacheDir', 'upstream', 'releases'] as const).map(async (name) => {
        const result = await this.readiness[name]().catch((e: Error) => ({
          [name]: { status: 'down', message: e.message },
        }));
        const [key, value] = Object.entries(result)[0] as [string, Record<string, unknown>];
        return { key, status: String(value.status), message: String(value.message ?? value.reason ?? '') };
      }),
    );
    const rows = checks
      .map(
        (c) =>
          `<tr><th scope="row">${esc(c.key)}</th><td class="${c.status === 'up' ? 'allowed' : 'denied'}">${esc(c.status)}</td><td>${esc(c.message)}</td></tr>`,
      )
      .join('');
    const metrics = (await this.metrics.registry.getMetricsAsJSON())
      .filter((m) => SHOWN.test(m.name))
      .flatMap((m) =>
        m.values
          .filter((v) => !('metricName' in v) || !String(v.metricName).endsWith('_bucket'))
          .map(
            (v) =>
              `<tr><td><code>${esc(m.name)}</code></td><td>${esc(
                Object.entries(v.labels ?? {})
                  .map(([k, l]) => `${k}=${l}`)
                  .join(' '),
              )}</td><td>${esc(v.value)}</td><td>${esc(m.help)}</td></tr>`,
          ),
      );
    const replicas = await this.replicas.seen().catch(() => null);
    const replicaSection = !replicas
      ? '<p class="error" role="alert">The replica list needs the database, which did not answer; see the readiness rows.</p>'
      : `${
          replicas.recent.length
            ? replicaTable(replicas.recent, `${replicas.recent.length} seen in the last minute`)
            : '<p class="empty">No replica has written a heartbeat in the last minute: check the database row above.</p>'
        }${
          replicas.quiet.length
            ? replicaTable(
                replicas.quiet,
                `${replicas.quiet.length} gone quiet (listed for a day after their last heartbeat)`,
              )
            : '<p class="empty">No replica has gone quiet in the last day.</p>'
        }`;
    const cache = this.config.cache;
    const body = `<section aria-labelledby="ready"><h2 id="ready">Readiness (as /readyz)</h2>
<table><thead><tr><th scope="col">Check</th><th scope="col">Status</th><th scope="col">Detail</th></tr></thead><tbody>${rows}</tbody></table></section>
<section aria-labelledby="replicas"><h2 id="replicas">Replicas</h2>${replicaSection}</section>
<section aria-labelledby="cache"><h2 id="cache">Cache</h2>
<p>Directory <code>${esc(cache.dir)}</code>, cap ${cache.maxBytes ? esc(bytes(cache.maxBytes)) : 'none'}; tags cached ${cache.tagTtlSeconds} s.</p>
<p id="cache-use">${cacheUse(this.blobs.stats())}</p></section>
<section aria-labelledby="metrics"><h2 id="metrics">This replica’s cache, audit and upstream metrics</h2>${
      metrics.length
        ? `<table><thead><tr><th scope="col">Metric</th><th scope="col">Labels</th><th scope="col">Value</th><th scope="col">Meaning</th></tr></thead><tbody>${metrics.join('')}</tbody></table>`
        : '<p class="empty">No such metrics yet: they appear after the first pulls.</p>'
    }</section>`;
    sendHtml(reply, layout('Health', body, staff, '/console/health'));
  }
}
