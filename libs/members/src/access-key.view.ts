import { AccessKey, accessKeyStatus } from './access-key.entity';

/**
 * An access key as the CLI's json output and the admin API both print it: never the secret or
 * its hash; `member` is null when the relation was not loaded.
 */
export function accessKeyView(k: AccessKey, now: Date) {
  return {
    id: k.id,
    member: k.member?.username ?? null,
    name: k.name,
    prefix: k.prefix,
    status: accessKeyStatus(k, now),
    createdAt: k.createdAt,
    expiresAt: k.expiresAt,
    lastUsedAt: k.lastUsedAt,
    revokedAt: k.revokedAt,
  };
}
