import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GatewayConfig, loadGatewayConfig } from '@gatehouse/config';
import { AppLogger, createPinoLogger } from '@gatehouse/observability';
import { CliModule } from './cli.module';
import { CliIo, Output } from './output';

export interface AppOptions {
  /** Apply pending migrations while booting. Default: config.database.migrateOnStart. */
  migrate?: boolean;
}

/** What every command gets: the configuration, the output, and a Nest context on demand. */
export class CliContext {
  readonly out: Output;
  private loaded: GatewayConfig | null = null;
  verbose = false;

  constructor(
    readonly io: CliIo,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.out = new Output(io);
  }

  /** Loaded on first use, so `--help` works with an incomplete environment. */
  get config(): GatewayConfig {
    this.loaded ??= loadGatewayConfig(this.env);
    return this.loaded;
  }

  /**
   * Boots the services (database, domain modules), runs `fn`, and closes them again: queued audit
   * events are written and an embedded PostgreSQL started by this process is stopped.
   */
  async withApp<T>(fn: (app: INestApplicationContext) => Promise<T>, options: AppOptions = {}): Promise<T> {
    const config = this.config;
    // Logs go to stderr so stdout stays parseable (`--format json`).
    const logger = new AppLogger(
      createPinoLogger(this.verbose ? 'info' : 'warn', { write: (s: string) => this.io.stderr.write(s) }),
    );
    const app = await NestFactory.createApplicationContext(
      CliModule.forRoot({ config, logger, migrate: options.migrate ?? config.database.migrateOnStart }),
      { logger: false, abortOnError: false },
    );
    try {
      return await fn(app);
    } finally {
      await app.close();
    }
  }
}
