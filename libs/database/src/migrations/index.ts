import { InitialSchema1767225600000 } from './1767225600000-initial-schema';
import { AuditSupportIndexes1767398400000 } from './1767398400000-audit-support-indexes';
import { AuditClientRequestId1767484800000 } from './1767484800000-audit-client-request-id';
import { EntitlementKinds1767571200000 } from './1767571200000-entitlement-kinds';
import { ReplicaSecretFingerprints1767657600000 } from './1767657600000-replica-secret-fingerprints';
import { EventsOutbox1790200000000 } from './1790200000000-events-outbox';
import { ConsoleSessions1790300000000 } from './1790300000000-console-sessions';
import { AuditDailyRollups1790300000001 } from './1790300000001-audit-daily-rollups';
import { PortalSessions1790700000000 } from './1790700000000-portal-sessions';
import { GatewayReplicas1790800000000 } from './1790800000000-gateway-replicas';
import { AuditClientMemberTag1790830000000 } from './1790830000000-audit-client-member-tag';

/** The table TypeORM records applied migrations in. */
export const MIGRATIONS_TABLE = 'migrations';

/** Every migration, oldest first. A new migration is one file here and one line in this list. */
export const MIGRATIONS = [
  InitialSchema1767225600000,
  AuditSupportIndexes1767398400000,
  AuditClientRequestId1767484800000,
  EntitlementKinds1767571200000,
  ReplicaSecretFingerprints1767657600000,
  EventsOutbox1790200000000,
  ConsoleSessions1790300000000,
  AuditDailyRollups1790300000001,
  PortalSessions1790700000000,
  GatewayReplicas1790800000000,
  AuditClientMemberTag1790830000000,
];
