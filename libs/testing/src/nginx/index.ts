export * from './test-nginx';
