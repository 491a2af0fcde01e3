export * from './gateway-config';
export * from './config.module';
export { parseByteSize } from './byte-size';
export { realmProblem, realmHostWarning } from './realm-rules';
export { unwritableDirectories } from './writable-directories';
export * from './events-config';
