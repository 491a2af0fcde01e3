import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { FindOptionsWhere, Repository } from 'typeorm';
import { BoundedCache } from '@gatehouse/bounded-cache';
import { DEFAULT_EXPIRY_WARNING_DAYS, GatewayConfig } from '@gatehouse/config';
import { isDatabaseUnavailableError } from '@gatehouse/database';
import { MemberService, notifyMemberChanged } from '@gatehouse/members';
import { Clock } from '@gatehouse/observability';
import {
  ArtifactTag,
  EntitlementKind,
  EntitlementTarget,
  FORGEJO_TAGS,
  ImageReferenceError,
  canonicalTag,
  isValidRepositoryName,
  parseArtifactTag,
  parseEntitlementTarget,
  TagCanonicalization,
} from '@gatehouse/oci';
import { Entitlement, isEntitlementLive } from './entitlement.entity';
import { EntitlementsError } from './entitlements.exception';
import { expiryWarning } from './expiry-warning';
import { DigestReach, Reachability, TagAdmission } from './tag-admission';
import { canonicalRule, matchTagRules, parseTagRules, TagMatch, TagRuleError } from './tag-rule.util';

export interface GrantOptions {
  expiresAt?: Date | null;
  note?: string | null;
}

export interface GrantResult {
  entitlement: Entitlement;
  created: boolean;
}

/** Why a member may or may not pull a repository/tag, for support answers and the audit. */
export type EntitlementExplanation =
  | { allowed: true; entitlement: Entitlement; match: TagMatch | null; admission?: TagAdmission }
  | {
      allowed: false;
      reason:
        'repository_not_entitled' | 'entitlement_expired' | 'tag_not_entitled' | 'subject_not_reachable';
      entitlement: Entitlement | null;
      /** For an artifact tag: the subject it names, and whether reachability could be checked. */
      artifact?: { subject: string; kind: string; checked: boolean };
    };

/** Members whose lists are kept (least recently used dropped first). */
const MAX_CACHED_MEMBERS = 10_000;

/**
 * Entitlements and the questions the pull path asks of them. The per-member list is cached for
 * AUTH_STATE_CACHE_SECONDS (≤ 10) so a pull does not query the database on every request, while
 * a removed entitlement stops working within that time. Expiry is re-checked on every call.
 */
@Injectable()
export class EntitlementService {
  private readonly cache: BoundedCache<string, Entitlement[]>;
  private readonly configuredTtlMs: number;
  /** How the upstream resolves tags; every tag decision is made on that form. */
  readonly tagCanonicalization: TagCanonicalization;

  constructor(
    @InjectRepository(Entitlement) private readonly entitlements: Repository<Entitlement>,
    private readonly members: MemberService,
    private readonly clock: Clock,
    config: GatewayConfig,
  ) {
    this.configuredTtlMs = config.auth.stateCacheSeconds * 1000;
    this.cache = new BoundedCache({
      max: MAX_CACHED_MEMBERS,
      ttlMs: this.configuredTtlMs,
      // PostgreSQL away: the last state checked within the grace still answers (no revocation can
      // be committed while it is away); any other failure is thrown.
      staleIfErrorMs: (config.auth.outageGraceSeconds ?? 0) * 1000,
      staleOn: isDatabaseUnavailableError,
      now: () => clock.now(),
    });
    this.tagCanonicalization = Object.freeze({ caseInsensitive: config.upstream.tagsCaseInsensitive });
    this.expiryWarningDays = config.auth.expiryWarningDays ?? DEFAULT_EXPIRY_WARNING_DAYS;
  }

  /** Days ahead an expiring entitlement or key is warned about (EXPIRY_WARNING_DAYS). */
  readonly expiryWarningDays: number;

  /** The `Warning: 299` text for an entitlement expiring within EXPIRY_WARNING_DAYS, else null. */
  expiryWarning(entitlement: Pick<Entitlement, 'expiresAt' | 'repository'>): string | null {
    return expiryWarning(
      `your access to ${entitlement.repository}`,
      entitlement.expiresAt,
      this.clock.date(),
      this.expiryWarningDays,
    );
  }

  /** The `Warning: 299` text for the caller's access key expiring within EXPIRY_WARNING_DAYS, else null. */
  keyExpiryWarning(key: { prefix: string; expiresAt: Date | null } | undefined): string | null {
    if (!key) return null;
    return expiryWarning(
      `your access key ${key.prefix}`,
      key.expiresAt,
      this.clock.date(),
      this.expiryWarningDays,
    );
  }

  /**
   * Creates or replaces the member's entitlement to a target (rules, expiry and note): an image
   * repository (`acme/app`), `releases:<owner>/<repo>` or `packages:<owner>/<name>`.
   */
  async grant(
    username: string,
    target: string,
    rules: readonly string[],
    options: GrantOptions = {},
  ): Promise<GrantResult> {
    const member = await this.members.get(username);
    const { kind, name } = normalizeTarget(target);
    let tagRules: string[];
    try {
      tagRules = parseTagRules(rules).map((r) => r.rule);
    } catch (e) {
      if (e instanceof TagRuleError) throw new EntitlementsError('tag_rule_invalid', e.message);
      throw e;
    }
    if (options.expiresAt && options.expiresAt.getTime() <= this.clock.now()) {
      throw new EntitlementsError(
        'expiry_invalid',
        `the expiry ${options.expiresAt.toISOString()} is in the past`,
      );
    }
    const existing = await this.entitlements.findOne({
      where: { memberId: member.id, kind, repository: name },
    });
    const entitlement = existing ?? this.entitlements.create({ memberId: member.id, kind, repository: name });
    entitlement.tagRules = tagRules;
    entitlement.expiresAt = options.expiresAt ?? null;
    entitlement.note = options.note ?? null;
    const saved = await this.entitlements.save(entitlement);
    saved.member = member;
    this.cache.delete(member.id);
    await notifyMemberChanged(this.entitlements, member.id);
    return { entitlement: saved, created: !existing };
  }

  async revoke(username: string, target: string): Promise<Entitlement> {
    const member = await this.members.get(username);
    const { kind, name } = normalizeTarget(target);
    const existing = await this.entitlements.findOne({
      where: { memberId: member.id, kind, repository: name },
    });
    if (!existing) {
      throw new EntitlementsError(
        'entitlement_not_found',
        `"${member.username}" has no entitlement to "${formatTarget({ kind, name })}" (list them with \`gatehouse entitlements --member ${member.username}\`)`,
      );
    }
    await this.entitlements.delete({ id: existing.id });
    this.cache.delete(member.id);
    await notifyMemberChanged(this.entitlements, member.id);
    existing.member = member;
    return existing;
  }

  /** Drops the member's cached list (a change announced by another replica). */
  forgetMember(memberId: string): void {
    this.cache.delete(memberId);
  }

  /** Drops every cached list (the change listener reconnected and may have missed changes). */
  forgetAll(): void {
    this.cache.clear();
  }

  /**
   * While the change listener is down, lists are kept at most `ms` (the short cache), not
   * AUTH_STATE_CACHE_SECONDS; null restores the configured time.
   */
  shortenCache(ms: number | null): void {
    this.cache.ttlMs = ms === null ? this.configuredTtlMs : Math.min(ms, this.configuredTtlMs);
  }

  /** Every entitlement (expired ones too), with the member, filtered by username and/or repository. */
  async list(filter: { username?: string; repository?: string } = {}): Promise<Entitlement[]> {
    const where: FindOptionsWhere<Entitlement> = {};
    if (filter.username) where.memberId = (await this.members.get(filter.username)).id;
    if (filter.repository) {
      const { kind, name } = normalizeTarget(filter.repository);
      where.kind = kind;
      where.repository = name;
    }
    return this.entitlements.find({
      where,
      relations: { member: true },
      order: { kind: 'ASC', repository: 'ASC', createdAt: 'ASC' },
    });
  }

  /**
   * The member's live (unexpired) entitlements of one kind (images unless told), from the
   * short-lived cache. The registry, the token endpoint and the catalog see image entitlements
   * only: a releases grant never opens a /v2/ repository of the same name.
   */
  async liveEntitlements(memberId: string, kind: EntitlementKind = 'image'): Promise<Entitlement[]> {
    const now = this.clock.date();
    return (await this.cachedList(memberId)).filter((e) => kindOf(e) === kind && isEntitlementLive(e, now));
  }

  /** The live entitlement of a member to a target, or null (not entitled, or expired). */
  async liveEntitlement(
    memberId: string,
    repository: string,
    kind: EntitlementKind = 'image',
  ): Promise<Entitlement | null> {
    return (await this.liveEntitlements(memberId, kind)).find((e) => e.repository === repository) ?? null;
  }

  /**
   * The rule that admits `tag`, or null: the one matcher of the registry (manifests, tag lists,
   * reachability), `explain` and the admin API. The tag is judged in the form the upstream
   * resolves it (`match.tag`), and that is the form to ask the upstream for.
   */
  tagAllowed(
    entitlement: Pick<Entitlement, 'tagRules'> & { kind?: EntitlementKind },
    tag: string,
  ): TagMatch | null {
    return matchTagRules(entitlement.tagRules, tag, this.canonicalizationOf(entitlement));
  }

  /**
   * How tags of an entitlement's kind are judged: image tags in the form the upstream resolves
   * them; release tags are git tags, case-sensitive; Forgejo finds generic package versions by
   * their lowercase form (lower_version), so `1.0-RC1` is `1.0-rc1` there.
   */
  canonicalizationOf(entitlement: { kind?: EntitlementKind }): TagCanonicalization {
    const kind = kindOf(entitlement);
    return kind === 'image' ? this.tagCanonicalization : kind === 'packages' ? FORGEJO_TAGS : EXACT_CASE;
  }

  /**
   * The rules an upstream that finds tags whatever their case compares in another form than
   * typed (`canonicalRule` under Forgejo's case folding), for `gatehouse grant`'s note. Release
   * tags are never folded, so their rules are never listed; package versions always are.
   */
  caseFoldedRules(entitlement: Pick<Entitlement, 'tagRules'> & { kind?: EntitlementKind }): string[] {
    if (kindOf(entitlement) === 'releases') return [];
    return entitlement.tagRules.filter((r) => canonicalRule(r, FORGEJO_TAGS) !== r);
  }

  /** The artifact tag (`sha256-<hex>[.sig|.att|.sbom]`) `tag` names, judged canonically; images only. */
  private artifactOf(entitlement: { kind?: EntitlementKind }, tag: string): ArtifactTag | null {
    // Artifact tags follow an image's subject; release tags and package versions have none.
    if (kindOf(entitlement) !== 'image') return null;
    return parseArtifactTag(canonicalTag(tag, this.tagCanonicalization));
  }

  /**
   * Whether `tag` of `name` is admitted, and why: by a rule (`tagAllowed`), or as an artifact tag
   * (`sha256-<hex>[.sig|.att|.sbom]`, libs/oci `parseArtifactTag`) whose subject digest is
   * reachable from a rule-admitted tag. The one admission decision of the registry's tag route,
   * `tags/list` and `explain`. For an artifact of an unreachable subject nothing about the
   * artifact or the subject is asked upstream (reachability resolves admitted tags only).
   */
  async admitTag(
    entitlement: Pick<Entitlement, 'tagRules' | 'repository'> & { kind?: EntitlementKind },
    tag: string,
    reach: Reachability,
  ): Promise<TagAdmission | null> {
    const match = this.tagAllowed(entitlement, tag);
    if (match) return { via: 'rule', tag: match.tag, match };
    const artifact = this.artifactOf(entitlement, tag);
    if (!artifact) return null;
    const subject = await reach.findReachingTag(entitlement.repository, artifact.subject, (t) =>
      this.ruleAdmits(entitlement, t),
    );
    if (!subject) return null;
    const rule = this.tagAllowed(entitlement, subject.tag)!.rule;
    return { via: 'subject', tag: artifact.tag, artifact, subjectTag: subject.tag, rule };
  }

  /**
   * The tag through which `digest` is reachable for this entitlement, or null: first from the
   * tags its rules admit, then through artifact tags whose subject is reachable (a signature's
   * manifest and blobs are pullable exactly when the signed image is). An artifact tag is
   * resolved only after its subject has been found reachable.
   */
  async findReachingTag(
    entitlement: Pick<Entitlement, 'tagRules' | 'repository'> & { kind?: EntitlementKind },
    digest: string,
    reach: Reachability,
  ): Promise<DigestReach | null> {
    const name = entitlement.repository;
    const rules = (t: string) => this.ruleAdmits(entitlement, t);
    const direct = await reach.findReachingTag(name, digest, rules);
    if (direct) return direct;
    const subjects = new Map<string, string | null>();
    const viaArtifact = await reach.findReachingTag(name, digest, async (t) => {
      const artifact = this.artifactOf(entitlement, t);
      if (!artifact) return false;
      if (!subjects.has(artifact.subject)) {
        subjects.set(
          artifact.subject,
          (await reach.findReachingTag(name, artifact.subject, rules))?.tag ?? null,
        );
      }
      return subjects.get(artifact.subject) !== null;
    });
    if (!viaArtifact) return null;
    const artifact = this.artifactOf(entitlement, viaArtifact.tag)!;
    return { ...viaArtifact, subjectTag: subjects.get(artifact.subject) ?? undefined };
  }

  private ruleAdmits(entitlement: Pick<Entitlement, 'tagRules'>, tag: string): boolean {
    return !!this.tagAllowed(entitlement, tag);
  }

  /** Names of the repositories the member may pull now, sorted (for the catalog). */
  async entitledRepositories(memberId: string): Promise<string[]> {
    return [...new Set((await this.liveEntitlements(memberId)).map((e) => e.repository))].sort();
  }

  /**
   * Reads the database (no cache): what support needs to answer "why can't X pull Y?". An
   * artifact tag is judged by `admitTag` when the pull path's reachability is given (the
   * gateway), and reported as not checked without it (the CLI has no upstream).
   */
  async explain(
    memberId: string,
    repository: string,
    tag?: string,
    reach?: Reachability,
    kind: EntitlementKind = 'image',
  ): Promise<EntitlementExplanation> {
    const entitlement = await this.entitlements.findOne({ where: { memberId, kind, repository } });
    if (!entitlement) return { allowed: false, reason: 'repository_not_entitled', entitlement: null };
    if (!isEntitlementLive(entitlement, this.clock.date())) {
      return { allowed: false, reason: 'entitlement_expired', entitlement };
    }
    if (tag === undefined) return { allowed: true, entitlement, match: null };
    const match = this.tagAllowed(entitlement, tag);
    if (match) return { allowed: true, entitlement, match };
    const artifact = this.artifactOf(entitlement, tag);
    if (!artifact) return { allowed: false, reason: 'tag_not_entitled', entitlement };
    const admission = reach ? await this.admitTag(entitlement, tag, reach) : null;
    if (admission) return { allowed: true, entitlement, match: null, admission };
    return {
      allowed: false,
      reason: 'subject_not_reachable',
      entitlement,
      artifact: { subject: artifact.subject, kind: artifact.kind, checked: !!reach },
    };
  }

  /** Up to `max` distinct targets of this kind that members hold, newest grant first: what readiness probes. */
  async someTargets(kind: EntitlementKind, max: number): Promise<string[]> {
    const rows = await this.entitlements.find({
      where: { kind },
      order: { createdAt: 'DESC' },
      select: { repository: true },
      take: max * 10,
    });
    return [...new Set(rows.map((e) => e.repository))].slice(0, max);
  }

  /** Forgets cached lists (all, or one member's); changes made through this service do it themselves. */
  invalidate(memberId?: string): void {
    if (memberId) this.cache.delete(memberId);
    else this.cache.clear();
  }

  /** Concurrent requests share one query; a failed one is not kept; none is cached with a zero TTL. */
  private async cachedList(memberId: string): Promise<Entitlement[]> {
    const query = () => this.entitlements.find({ where: { memberId } });
    if (this.cache.ttlMs <= 0) return query();
    return (await this.cache.fetch(memberId, query)).value;
  }
}

const EXACT_CASE: TagCanonicalization = Object.freeze({ caseInsensitive: false });

/** Rows loaded before the kind column existed in a test double count as images. */
function kindOf(e: { kind?: EntitlementKind }): EntitlementKind {
  return e.kind ?? 'image';
}

/** `acme/app`, `releases:acme/tool` or `packages:acme/cli` as it prints (CLI, admin API, errors). */
export function formatTarget(target: { kind?: EntitlementKind; name?: string; repository?: string }): string {
  const name = target.name ?? target.repository ?? '';
  const kind = target.kind ?? 'image';
  return kind === 'image' ? name : `${kind}:${name}`;
}

/** A target as typed, by the one target grammar (libs/oci); image names as `normalizeRepository` says. */
export function normalizeTarget(text: string): EntitlementTarget {
  let target: EntitlementTarget;
  try {
    target = parseEntitlementTarget(text.trim().replace(/^\/+|\/+$/g, ''));
  } catch (e) {
    if (!(e instanceof ImageReferenceError)) throw e;
    if (/^(releases|packages):/i.test(text.trim()))
      throw new EntitlementsError('repository_invalid', e.message);
    return { kind: 'image', name: normalizeRepository(text) };
  }
  return target.kind === 'image' ? { kind: 'image', name: normalizeRepository(target.name) } : target;
}

export function normalizeRepository(repository: string): string {
  const name = repository.trim().replace(/^\/+|\/+$/g, '');
  if (!isValidRepositoryName(name)) {
    throw new EntitlementsError(
      'repository_invalid',
      `"${repository}" is not a repository name: use lowercase path components like acme/app or acme/tools/cli (letters, digits, and . _ - inside components)`,
    );
  }
  return name;
}
