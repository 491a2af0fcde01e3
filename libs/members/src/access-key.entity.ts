import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
} from 'typeorm';
import { Member } from './member.entity';

/** A member's secret. Only the keyed hash is stored; `prefix` is what listings show. */
@Entity('access_keys')
export class AccessKey {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Index()
  @Column('uuid')
  memberId!: string;

  @ManyToOne(() => Member, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'member_id' })
  member?: Member;

  @Column('text', { nullable: true })
  name!: string | null;

  @Column('text')
  prefix!: string;

  @Column('text', { unique: true })
  keyHash!: string;

  @CreateDateColumn({ type: 'timestamptz' })
  createdAt!: Date;

  @Column('timestamptz', { nullable: true })
  expiresAt!: Date | null;

  @Column('timestamptz', { nullable: true })
  lastUsedAt!: Date | null;

  @Column('timestamptz', { nullable: true })
  revokedAt!: Date | null;
}

/** Why a key cannot be used right now, or null when it can. */
export function accessKeyUnusableReason(
  key: Pick<AccessKey, 'revokedAt' | 'expiresAt'>,
  now: Date,
): 'key_revoked' | 'key_expired' | null {
  if (key.revokedAt) return 'key_revoked';
  if (key.expiresAt && key.expiresAt.getTime() <= now.getTime()) return 'key_expired';
  return null;
}

export type AccessKeyStatus = 'active' | 'revoked' | 'expired';

/** The word listings, the admin API and explanations show for a key; revoked wins over expired, as on login. */
export function accessKeyStatus(key: Pick<AccessKey, 'revokedAt' | 'expiresAt'>, now: Date): AccessKeyStatus {
  const unusable = accessKeyUnusableReason(key, now);
  return unusable === 'key_revoked' ? 'revoked' : unusable === 'key_expired' ? 'expired' : 'active';
}
