export * from './create-test-gateway';
export * from './built-gateway';
