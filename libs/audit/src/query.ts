// The audit search without Nest or TypeORM (`@gatehouse/audit/query`): the statements, the row
// mapping and the time filters, for the CLI's read-only path. The index adds the services and modules.
export * from './audit-query.sql';
export * from './audit-time.util';
export * from './audit-csv';
