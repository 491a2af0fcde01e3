import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { accessKeyDisplayPrefix, generateAccessKey, normalizeUsername } from './access-key-format.util';
import { AccessKeyHasher } from './access-key-hasher.service';
import { AccessKey, accessKeyUnusableReason } from './access-key.entity';
import { Clock } from '@gatehouse/observability';
import { Member } from './member.entity';
import { MembersError } from './members.exception';
import { MemberService } from './member.service';
import { notifyMemberChanged } from './member-change.notify';

/** The reason codes a credential check can fail with (the audit log's vocabulary). */
export type CredentialFailureReason = 'bad_credentials' | 'key_revoked' | 'key_expired' | 'member_disabled';

export type CredentialCheck =
  | { ok: true; member: Member; accessKey: AccessKey }
  | { ok: false; reason: CredentialFailureReason; member: Member | null; accessKey: AccessKey | null };

export interface CreatedAccessKey {
  /** The secret: shown once, never stored. */
  key: string;
  accessKey: AccessKey;
}

/** last_used_at is refreshed at most this often, so a busy client does not write on every login. */
const LAST_USED_RESOLUTION_MS = 60_000;

@Injectable()
export class AccessKeyService {
  constructor(
    @InjectRepository(AccessKey) private readonly keys: Repository<AccessKey>,
    private readonly members: MemberService,
    private readonly hasher: AccessKeyHasher,
    private readonly clock: Clock,
  ) {}

  async create(
    username: string,
    options: { name?: string | null; expiresAt?: Date | null } = {},
  ): Promise<CreatedAccessKey> {
    const member = await this.members.get(username);
    if (options.expiresAt && options.expiresAt.getTime() <= this.clock.now()) {
      throw new MembersError(
        'expiry_invalid',
        `the expiry ${options.expiresAt.toISOString()} is in the past`,
      );
    }
    const key = generateAccessKey();
    const accessKey = await this.keys.save(
      this.keys.create({
        memberId: member.id,
        name: options.name ?? null,
        prefix: accessKeyDisplayPrefix(key),
        keyHash: this.hasher.hash(key),
        expiresAt: options.expiresAt ?? null,
      }),
    );
    accessKey.member = member;
    return { key, accessKey };
  }

  /** Keys with their member, newest first; one member's keys when a username is given. */
  async list(username?: string): Promise<AccessKey[]> {
    const where = username ? { memberId: (await this.members.get(username)).id } : {};
    return this.keys.find({ where, relations: { member: true }, order: { createdAt: 'DESC' } });
  }

  /**
   * Revokes a key named by its id or by its listed prefix (`ghk_AbCd1234`). Idempotent: an
   * already revoked key keeps its first revoked_at.
   */
  async revoke(idOrPrefix: string): Promise<AccessKey> {
    const ref = idOrPrefix.trim();
    const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(ref);
    const matches = isUuid
      ? await this.keys.find({ where: { id: ref.toLowerCase() }, relations: { member: true } })
      : await this.keys.find({ where: { prefix: ref }, relations: { member: true } });
    if (matches.length === 0) {
      throw new MembersError(
        'access_key_not_found',
        `no access key with id or prefix "${ref}" (list them with \`gatehouse key list\`)`,
      );
    }
    if (matches.length > 1) {
      throw new MembersError(
        'access_key_ambiguous',
        `${matches.length} keys share the prefix "${ref}"; revoke by id: ${matches.map((k) => k.id).join(', ')}`,
      );
    }
    const key = matches[0];
    if (!key.revokedAt) {
      key.revokedAt = this.clock.date();
      await this.keys.update({ id: key.id }, { revokedAt: key.revokedAt });
      await notifyMemberChanged(this.keys, key.memberId);
    }
    return key;
  }

  /**
   * Checks a username and a presented key. The HMAC is computed and one indexed lookup by hash
   * made whether or not the user exists, so an unknown user and a wrong key take the same path
   * and the same time. The caller shows every failure as the same 401; `reason` is for the audit.
   */
  async check(username: string, presentedKey: string): Promise<CredentialCheck> {
    const hash = this.hasher.hash(presentedKey);
    const key = await this.keys.findOne({ where: { keyHash: hash }, relations: { member: true } });
    const member = key?.member ?? null;
    // The lookup already matched the hash; these comparisons keep the decision constant-time
    // and make a key presented under another member's name worthless.
    const hashMatches = AccessKeyHasher.sameHash(key?.keyHash ?? '0'.repeat(64), hash);
    const userMatches = AccessKeyHasher.sameHash(
      this.hasher.hash(`username:${member?.username ?? ''}`),
      this.hasher.hash(`username:${normalizeUsername(username)}`),
    );
    if (!key || !member || !hashMatches || !userMatches) {
      return { ok: false, reason: 'bad_credentials', member: null, accessKey: null };
    }
    return this.usable(member, key);
  }

  /** The state of a key already known by id (refresh tokens, issued access tokens). */
  async checkById(accessKeyId: string, memberId: string): Promise<CredentialCheck> {
    const key = await this.keys.findOne({
      where: { id: accessKeyId, memberId },
      relations: { member: true },
    });
    if (!key || !key.member) return { ok: false, reason: 'bad_credentials', member: null, accessKey: null };
    return this.usable(key.member, key);
  }

  async touchLastUsed(accessKeyId: string): Promise<void> {
    const now = this.clock.date();
    const threshold = new Date(now.getTime() - LAST_USED_RESOLUTION_MS);
    await this.keys
      .createQueryBuilder()
      .update()
      .set({ lastUsedAt: now })
      .where('id = :id AND (last_used_at IS NULL OR last_used_at < :threshold)', {
        id: accessKeyId,
        threshold,
      })
      .execute();
  }

  private usable(member: Member, key: AccessKey): CredentialCheck {
    if (member.status !== 'active') return { ok: false, reason: 'member_disabled', member, accessKey: key };
    const unusable = accessKeyUnusableReason(key, this.clock.date());
    if (unusable) return { ok: false, reason: unusable, member, accessKey: key };
    return { ok: true, member, accessKey: key };
  }
}
