import { InitialSchema1767225600000 } from './1767225600000-initial-schema';
import { AuditSupportIndexes1767398400000 } from './1767398400000-audit-support-indexes';
import { EntitlementKinds1767484800000 } from './1767484800000-entitlement-kinds';

/** Every migration, oldest first. A new migration is one file here and one line in this list. */
export const MIGRATIONS = [
  InitialSchema1767225600000,
  AuditSupportIndexes1767398400000,
  EntitlementKinds1767484800000,
];
