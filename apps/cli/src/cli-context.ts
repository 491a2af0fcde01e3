import type { INestApplicationContext } from '@nestjs/common';
import * as fs from 'node:fs';
import type { GatewayConfig } from '@gatehouse/config/load';
import { CliError } from './cli-error';
import { connectSql, pendingMigrationNames, SqlRunner } from './cli-sql';
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

/**
 * What every command gets: the configuration, the output, and the database on demand: a bare SQL
 * connection (withSql) or the Nest context (withApp). Nest, TypeORM and the domain libs are
 * loaded only by the command that needs them (dev-docs/decisions.md, "CLI start"): `--help` and
 * `audit` never load them.
 */
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
    this.loaded ??= loadConfig().loadGatewayConfig(this.env);
    return this.loaded;
  }

  /**
   * Runs `fn` with plain SQL: a `pg` connection to DATABASE_URL, without the Nest context, for the
   * read-only commands whose statements live in their lib (e.g. libs/audit audit-query.sql.ts).
   * The embedded PostgreSQL (DATABASE_URL unset) and a database with migrations to apply take the
   * Nest context as before: it starts or joins the embedded server and applies the migrations.
   */
  async withSql<T>(fn: (run: SqlRunner) => Promise<T>, options: AppOptions = {}): Promise<T> {
    const config = this.prepareState(this.config, options);
    const url = config.database.url;
    if (url !== null) {
      const db = await connectSql(url);
      try {
        const migrate = options.migrate ?? config.database.migrateOnStart;
        if (!migrate || (await pendingMigrationNames(db.run)).length === 0) return await fn(db.run);
      } finally {
        await db.close();
      }
    }
    return this.boot(config, options, async (app) => {
      const { DataSource } = await import('typeorm');
      const dataSource = app.get(DataSource);
      return fn(async (sql) => dataSource.query(sql.text, sql.values));
    });
  }

  /**
   * Boots the services (database, domain modules), runs `fn`, and closes them again: queued audit
   * events are written and an embedded PostgreSQL started by this process is stopped.
   */
  withApp<T>(fn: (app: INestApplicationContext) => Promise<T>, options: AppOptions = {}): Promise<T> {
    return this.boot(this.prepareState(this.config, options), options, fn);
  }

  private async boot<T>(
    config: GatewayConfig,
    options: AppOptions,
    fn: (app: INestApplicationContext) => Promise<T>,
  ): Promise<T> {
    const [{ NestFactory }, { AppLogger, createPinoLogger }, { CliModule }] = await Promise.all([
      import('@nestjs/core'),
      import('@gatehouse/observability'),
      import('./cli.module'),
    ]);
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
      !new (loadDatabase().PostgresCluster)({ dataDir: embeddedDir, password: '' }).isInitialised();
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
  const { GatewayConfig: Config } = loadConfig();
  return Object.assign(Object.create(Config.prototype) as GatewayConfig, config, { auth });
}

// Loaded on first use (synchronously: `config` is a getter): reading the environment loads
// class-validator, which `--help` does not need. The lean entries load neither Nest nor TypeORM.
/* eslint-disable @typescript-eslint/no-require-imports */
const loadConfig = () => require('@gatehouse/config/load') as typeof import('@gatehouse/config/load');
const loadDatabase = () => require('@gatehouse/database/lean') as typeof import('@gatehouse/database/lean');
/* eslint-enable @typescript-eslint/no-require-imports */
