import { DataSourceOptions } from 'typeorm';
import { MIGRATIONS, MIGRATIONS_TABLE } from './migrations';
import { SnakeNamingStrategy } from './snake-naming.strategy';

export { MIGRATIONS_TABLE } from './migrations';

type EntityList = NonNullable<DataSourceOptions['entities']>;

/**
 * Options for a DataSource outside Nest (tests, scripts). Schema changes come only from
 * MIGRATIONS: synchronize is never on.
 */
export function createDataSourceOptions(
  url: string,
  poolSize = 10,
  entities: EntityList = [],
): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    entities,
    migrations: MIGRATIONS,
    migrationsTableName: MIGRATIONS_TABLE,
    migrationsTransactionMode: 'each',
    migrationsRun: false,
    synchronize: false,
    namingStrategy: new SnakeNamingStrategy(),
    // A connection attempt against a dead address must fail fast instead of hanging a request.
    extra: { max: poolSize, connectionTimeoutMillis: 10_000 },
  };
}
