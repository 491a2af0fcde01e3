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

/** Member × repository × tag rules × optional expiry. One row per (member, repository). */
@Entity('entitlements')
@Unique('entitlements_member_id_repository_key', ['memberId', 'repository'])
export class Entitlement {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column('uuid')
  memberId!: string;

  @ManyToOne(() => Member, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'member_id' })
  member?: Member;

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
