export type EntitlementsErrorCode =
  'repository_invalid' | 'tag_rule_invalid' | 'expiry_invalid' | 'entitlement_not_found';

/** Operator-facing errors of the entitlements domain; the CLI prints the message as is. */
export class EntitlementsError extends Error {
  constructor(
    readonly code: EntitlementsErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'EntitlementsError';
  }
}
