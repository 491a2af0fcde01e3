export * from './access-explain.service';
export * from './access-explanation';
export * from './entitlement.entity';
export * from './entitlement.service';
export * from './entitlement.view';
export * from './entitlements.exception';
export * from './entitlements.module';
export * from './tag-rule.util';
