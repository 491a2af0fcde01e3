import { Member } from './member.entity';

/**
 * A member as `gatehouse ... --format json` and the admin API both print it: one shape, so
 * scripts can switch between them.
 */
export function memberView(m: Member) {
  return {
    id: m.id,
    username: m.username,
    status: m.status,
    note: m.note,
    createdAt: m.createdAt,
    updatedAt: m.updatedAt,
    disabledAt: m.disabledAt,
  };
}
