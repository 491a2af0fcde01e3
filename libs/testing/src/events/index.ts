export * from './webhook-receiver';
export * from './test-nats';
