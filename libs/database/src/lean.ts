// The database lib without Nest or TypeORM (`@gatehouse/database/lean`): the embedded cluster's
// files and the migration list, for the CLI's read-only path. The index adds the modules and pools.
export { PostgresCluster } from './postgres-cluster';
export { MIGRATIONS, MIGRATIONS_TABLE } from './migrations';
