import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { GatewayConfig } from '@gatehouse/config';
import { DataSource } from 'typeorm';

/** The readiness checks that need no other module: database and cache directory. */
@Injectable()
export class ReadinessService {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly config: GatewayConfig,
    private readonly dataSource: DataSource,
  ) {}

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
