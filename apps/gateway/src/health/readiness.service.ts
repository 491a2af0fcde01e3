import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { GatewayConfig } from '@gatehouse/config';
import { DownloadsReadiness } from '@gatehouse/downloads';
import { EventsStatusProbe } from '@gatehouse/events';
import { UpstreamHealth } from '@gatehouse/upstream';
import { DataSource } from 'typeorm';

/** The readiness checks that need no other module: database and cache directory. */
@Injectable()
export class ReadinessService {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly config: GatewayConfig,
    private readonly dataSource: DataSource,
    private readonly upstreamHealth: UpstreamHealth,
    private readonly downloads: DownloadsReadiness,
    private readonly events: EventsStatusProbe,
  ) {}

  /** The event outbox: down when no worker fans events out (receivers' backlogs are reported only). */
  async eventsOutbox(): Promise<HealthIndicatorResult> {
    const check = this.indicators.check('eventsOutbox');
    try {
      const { ok, ...status } = await withTimeout(
        this.events.check(),
        3000,
        'database did not answer within 3 s',
      );
      return ok ? check.up(status) : check.down(status);
    } catch (e) {
      return check.down({ message: `cannot tell: ${(e as Error).message}` });
    }
  }

  /** Release downloads: the service token lists releases (read:repository) once releases are entitled. */
  async releases(): Promise<HealthIndicatorResult> {
    const check = this.indicators.check('releases');
    if (!this.config.upstream.enabled) return check.up({ message: 'registry disabled' });
    let status: Awaited<ReturnType<DownloadsReadiness['check']>>;
    try {
      status = await this.downloads.check();
    } catch (e) {
      // It reads which releases are entitled: with the database away that is unknown, and the
      // database row already says why; the other rows must still be reported.
      return check.down({ reason: 'unknown', message: `cannot tell: ${(e as Error).message}` });
    }
    return status.ok
      ? check.up({ message: status.message })
      : check.down({ reason: status.reason, message: status.message });
  }

  /** Upstream reachable and accepting the service token (cached ~30 s inside UpstreamHealth). */
  async upstream(): Promise<HealthIndicatorResult> {
    const check = this.indicators.check('upstream');
    if (!this.config.upstream.enabled) {
      return check.down({
        message: `registry disabled: set ${this.config.upstream.missing.join(' and ')} (see .env.example)`,
      });
    }
    const status = await this.upstreamHealth.check();
    // The kind (UPSTREAM_KIND, or detected by this check's ping) and where it comes from.
    const kind = status.kind ? { kind: status.kind.kind, kindSource: status.kind.source } : {};
    return status.ok
      ? check.up({ message: status.message, ...kind })
      : check.down({ reason: status.reason, message: status.message, ...kind });
  }

  async database(): Promise<HealthIndicatorResult> {
    const check = this.indicators.check('database');
    try {
      await withTimeout(this.dataSource.query('SELECT 1'), 3000, 'database did not answer within 3 s');
      return check.up();
    } catch (e) {
      return check.down({ message: (e as Error).message });
    }
  }

  async cacheDir(): Promise<HealthIndicatorResult> {
    const check = this.indicators.check('cacheDir');
    const dir = this.config.cache.dir;
    const probe = path.join(dir, `.readyz-${process.pid}`);
    try {
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(probe, 'ok');
      await fs.unlink(probe);
      return check.up({ path: dir });
    } catch (e) {
      return check.down({
        path: dir,
        message: `cache directory is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). Fix: give the gateway's user write access to OCI_CACHE_DIR`,
      });
    }
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]);
}
