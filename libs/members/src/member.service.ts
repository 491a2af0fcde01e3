import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { QueryFailedError, Repository } from 'typeorm';
import { normalizeUsername, usernameProblem } from './access-key-format.util';
import { Clock } from '@gatehouse/observability';
import { Member } from './member.entity';
import { MembersError } from './members.exception';
import { notifyMemberChanged } from './member-change.notify';

const UNIQUE_VIOLATION = '23505';

@Injectable()
export class MemberService {
  constructor(
    @InjectRepository(Member) private readonly members: Repository<Member>,
    private readonly clock: Clock,
  ) {}

  async create(username: string, note?: string | null): Promise<Member> {
    const problem = usernameProblem(username);
    if (problem) throw new MembersError('username_invalid', problem);
    const normalized = normalizeUsername(username);
    try {
      return await this.members.save(
        this.members.create({ username: normalized, status: 'active', note: note ?? null }),
      );
    } catch (e) {
      if (e instanceof QueryFailedError && (e.driverError as { code?: string }).code === UNIQUE_VIOLATION) {
        throw new MembersError('member_exists', `a member named "${normalized}" already exists`);
      }
      throw e;
    }
  }

  list(): Promise<Member[]> {
    return this.members.find({ order: { username: 'ASC' } });
  }

  /** The member or null; usernames compare lowercase. */
  findByUsername(username: string): Promise<Member | null> {
    return this.members.findOne({ where: { username: normalizeUsername(username) } });
  }

  findById(id: string): Promise<Member | null> {
    return this.members.findOne({ where: { id } });
  }

  async get(username: string): Promise<Member> {
    const member = await this.findByUsername(username);
    if (!member) {
      throw new MembersError(
        'member_not_found',
        `no member named "${normalizeUsername(username)}" (list them with \`gatehouse member list\`)`,
      );
    }
    return member;
  }

  /** Idempotent: disabling a disabled member keeps the first disabled_at. */
  async disable(username: string): Promise<Member> {
    const member = await this.get(username);
    if (member.status === 'disabled') return member;
    member.status = 'disabled';
    member.disabledAt = this.clock.date();
    const saved = await this.members.save(member);
    await notifyMemberChanged(this.members, member.id);
    return saved;
  }

  async enable(username: string): Promise<Member> {
    const member = await this.get(username);
    if (member.status === 'active') return member;
    member.status = 'active';
    member.disabledAt = null;
    const saved = await this.members.save(member);
    await notifyMemberChanged(this.members, member.id);
    return saved;
  }
}
