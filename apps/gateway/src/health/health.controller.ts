import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { ReadinessService } from './readiness.service';

@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly readiness: ReadinessService,
  ) {}

  /** Liveness: the process answers. Dependencies belong to /readyz, or a database blip would restart us. */
  @Get('healthz')
  @HealthCheck()
  healthz() {
    return this.health.check([]);
  }

  @Get('readyz')
  @HealthCheck()
  readyz() {
    return this.health.check([
      () => this.readiness.database(),
      () => this.readiness.cacheDir(),
      () => this.readiness.upstream(),
      () => this.readiness.releases(),
      () => this.readiness.eventsOutbox(),
    ]);
  }
}
