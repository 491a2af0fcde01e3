import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
  Unique,
  UpdateDateColumn,
} from 'typeorm';
import { Member } from '@gatehouse/members';
import type { EntitlementKind } from '@gatehouse/oci';

/**
 * Member × target × tag rules × optional expiry. One row per (member, kind, repository): the
 * kind says what `repository` names (an image repository, a Forgejo repository's releases, or a
 * generic package) and what the rules match (image tags, release tags, package versions).
 */
@Entity('entitlements')
@Unique('entitlements_member_id_kind_repository_key', ['memberId', 'kind', 'repository'])
export class Entitlement {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column('uuid')
  memberId!: string;

  @ManyToOne(() => Member, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'member_id' })
  member?: Member;

  @Column('text', { default: 'image' })
  kind!: EntitlementKind;

  @Index()
  @Column('text')
  repository!: string;

  @Column('text', { array: true })
  tagRules!: string[];

  @Column('timestamptz', { nullable: true })
  expiresAt!: Date | null;

  @Column('text', { nullable: true })
  note!: string | null;

  @CreateDateColumn({ type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ type: 'timestamptz' })
  updatedAt!: Date;
}

export function isEntitlementLive(entitlement: Pick<Entitlement, 'expiresAt'>, now: Date): boolean {
  return entitlement.expiresAt === null || entitlement.expiresAt.getTime() > now.getTime();
}
