export * from './database.module';
export * from './embedded-postgres.module';
export * from './embedded-postgres.service';
export {
  PostgresCluster,
  EmbeddedPostgresError,
  ensureDatabase,
  freePort,
  postgresBinaries,
} from './postgres-cluster';
export type { PostgresClusterOptions, PostgresBinaries } from './postgres-cluster';
export * from './data-source-options';
export * from './database-unavailable';
export * from './migration-runner';
export * from './snake-naming.strategy';
export { MIGRATIONS } from './migrations';
export * from './replica-heartbeat';
export * from './pg-channel.listener';
