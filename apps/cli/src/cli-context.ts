import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import * as fs from 'node:fs';
import { GatewayConfig, loadGatewayConfig } from '@gatehouse/config';
import { PostgresCluster } from '@gatehouse/database';
import { AppLogger, createPinoLogger } from '@gatehouse/observability';
import { CliError } from './cli-error';
import { CliModule } from './cli.module';
import { CliIo, Output } from './output';

export interface AppOptions {
  /** Apply pending migrations while booting. Default: config.database.migrateOnStart. */
  migrate?: boolean;
  /**
   * The command only reads (audit, explain, lists): it answers from existing data or fails. It
   * never initialises an embedded PostgreSQL or an access-key secret: a support engineer asking
   * an empty database would read "no events" as "the customer never tried".
   */
  readOnly?: boolean;
  /** Writes the database but never hashes a key (migrate): a missing secret is not created. */
  noSecret?: boolean;
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
    this.out = new Output(io, env);
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
    const config = this.prepareState(this.config, options);
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

  /**
   * Read-only commands refuse to run on state that does not exist; write commands say (one line
   * on stderr) where they create it, the first time.
   */
  private prepareState(config: GatewayConfig, options: AppOptions): GatewayConfig {
    const { dataDir } = config.server;
    const where = this.env.DATA_DIR ? `DATA_DIR ${dataDir}` : `DATA_DIR (unset, so ${dataDir})`;
    const embeddedDir = config.database.embeddedDir;
    const noCluster =
      config.database.url === null &&
      !new PostgresCluster({ dataDir: embeddedDir, password: '' }).isInitialised();
    const secret = config.auth.accessKeySecretFile;
    const noSecret = !config.auth.accessKeySecretFileFromEnv && !fs.existsSync(secret);
    if (options.readOnly && noCluster)
      throw new CliError(
        `No Gatehouse data to read: DATABASE_URL is not set and ${where} holds no embedded PostgreSQL (looked for ${embeddedDir}). Fix: set DATA_DIR to the gateway's data directory, or DATABASE_URL to its database.`,
        2,
      );
    if (noCluster)
      this.out.error(
        `Creating a new embedded PostgreSQL in ${embeddedDir}: DATABASE_URL is unset, ${where}. If the gateway keeps its data elsewhere, stop and set DATA_DIR or DATABASE_URL.`,
      );
    if (options.readOnly || options.noSecret)
      return withAuth(config, { ...config.auth, secretFilesReadOnly: true });
    if (noSecret)
      this.out.error(
        `Creating a new access-key secret at ${secret} under ${where}. Keys made with it work only on a gateway that reads this file.`,
      );
    return config;
  }
}

/** A copy with other auth settings; every other field (present or added later) is kept. */
function withAuth(config: GatewayConfig, auth: GatewayConfig['auth']): GatewayConfig {
  return Object.assign(Object.create(GatewayConfig.prototype) as GatewayConfig, config, { auth });
}
