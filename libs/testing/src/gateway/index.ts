export * from './create-test-gateway';
export * from './built-gateway';
export * from './upstream-gateway-stack';
export * from './stoppable-postgres';
