import { Column, Entity, PrimaryColumn } from 'typeorm';

/** pg returns bigint as a string; audit byte counts stay far below 2^53. */
const bigintAsNumber = {
  to: (v: number | null | undefined) => v,
  from: (v: string | null) => (v === null ? null : Number(v)),
};

/** One security-relevant event (table audit_events). Append-only; `id` is made by the writer. */
@Entity('audit_events')
export class AuditEvent {
  @PrimaryColumn('uuid')
  id!: string;

  @Column('timestamptz')
  occurredAt!: Date;

  @Column('text', { nullable: true })
  requestId!: string | null;

  /** The client's own X-Request-Id, when it sent one (requestId is always the gateway's). */
  @Column('text', { nullable: true })
  clientRequestId!: string | null;

  /**
   * A mirror Gatehouse's opaque tag of its own member (X-Gatehouse-Member-Tag), recorded only
   * when this gateway accepted the request's credentials.
   */
  @Column('text', { nullable: true })
  clientMemberTag!: string | null;

  @Column('uuid', { nullable: true })
  memberId!: string | null;

  @Column('text', { nullable: true })
  username!: string | null;

  @Column('text', { nullable: true })
  clientIp!: string | null;

  @Column('text', { nullable: true })
  userAgent!: string | null;

  @Column('text')
  action!: string;

  @Column('text', { nullable: true })
  repository!: string | null;

  @Column('text', { nullable: true })
  reference!: string | null;

  @Column('text', { nullable: true })
  digest!: string | null;

  @Column('text')
  outcome!: string;

  @Column('text', { nullable: true })
  reason!: string | null;

  @Column('integer', { nullable: true })
  httpStatus!: number | null;

  @Column('bigint', { nullable: true, transformer: bigintAsNumber })
  bytes!: number | null;

  @Column('text', { nullable: true })
  cache!: string | null;

  @Column('integer', { nullable: true })
  durationMs!: number | null;

  @Column('integer', { nullable: true })
  upstreamStatus!: number | null;

  @Column('jsonb', { nullable: true })
  details!: Record<string, unknown> | null;
}
