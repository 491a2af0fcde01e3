// The configuration without Nest (`@gatehouse/config/load`): what a short-lived process such as the
// CLI needs to read the environment. The index adds ConfigModule, which loads @nestjs/common.
export { ConfigValidationError } from './errors';
export { GatewayConfig, loadGatewayConfig } from './gateway-config';
