export * from './docker-engine';
export * from './gateway-image';
