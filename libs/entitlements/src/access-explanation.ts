import { AccessKey, accessKeyStatus, Member } from '@gatehouse/members';
import {
  ArtifactKind,
  describeArtifact,
  formatRefusalAnswer,
  RefusalAnswer,
  RefusalGround,
  refusalAnswer,
} from '@gatehouse/oci';
import type { EntitlementKind } from '@gatehouse/oci';
import type { EntitlementExplanation } from './entitlement.service';

/**
 * Why a member can or cannot pull, in the audit log's reason vocabulary where one exists:
 * `member_unknown` (the audit shows `bad_credentials`), `member_disabled`, `no_access_key`,
 * `key_revoked`, `key_expired`, `no_usable_key` (some revoked, some expired),
 * `repository_not_entitled`, `entitlement_expired`, `tag_not_entitled`, `subject_not_reachable`
 * (an artifact tag `sha256-<hex>[.sig|.att|.sbom]` whose subject digest no admitted tag reaches).
 */
export type ExplainReason =
  | 'member_unknown'
  | 'member_disabled'
  | 'no_access_key'
  | 'key_revoked'
  | 'key_expired'
  | 'no_usable_key'
  | 'repository_not_entitled'
  | 'entitlement_expired'
  | 'tag_not_entitled'
  | 'subject_not_reachable';

export interface ExplainCheck {
  check: 'member' | 'access_keys' | 'entitlement';
  ok: boolean;
  detail: string;
}

export interface AccessVerdict {
  allowed: boolean;
  /** The first failing check, null when allowed. */
  reason: ExplainReason | null;
  /** What the member's client gets, worded as a support person would tell them. */
  memberSees: string;
  /** The status and code the member's client gets (libs/oci `refusalAnswer`); null when allowed. */
  answer: RefusalAnswer | null;
  /**
   * When allowed: the answer if the tag (or release, version, file) does not exist upstream, which
   * explain does not check.
   */
  ifMissing: RefusalAnswer | null;
  /** What would change the answer (null when allowed). */
  fix: string | null;
  checks: ExplainCheck[];
}

export interface AccessExplanationInput {
  /** What support asked about (a username or a member id); named when no member has it. */
  memberRef: string;
  /** The target as it prints: `acme/app`, `releases:acme/tool`, `packages:acme/cli`. */
  repository: string;
  /** What the target is (images unless told): downloads are refused with a plain 404. */
  kind?: EntitlementKind;
  /** Without a tag the question is about the repository, and the entitlement check says which tags its rules admit. */
  tag?: string | null;
  member: Member | null;
  keys: readonly AccessKey[];
  /** null when there is no member to ask about. */
  entitlement: EntitlementExplanation | null;
  now: Date;
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

/**
 * The verdict a pull would meet now. Every check is made (not only the first failing one) so
 * support sees the whole picture; the first failing one is the reason, as on the pull path.
 */
export function explainAccess(input: AccessExplanationInput): AccessVerdict {
  const { memberRef, repository, member, keys, entitlement, now } = input;
  const tag = input.tag ?? null;
  const kind = input.kind ?? 'image';
  const ref = tag ? `${repository}${kind === 'image' ? ':' : '@'}${tag}` : repository;
  const checks: ExplainCheck[] = [];
  const failures: Array<{ reason: ExplainReason; fix: string }> = [];

  if (!member) {
    checks.push({ check: 'member', ok: false, detail: `no member named "${memberRef}" exists` });
    return {
      allowed: false,
      reason: 'member_unknown',
      memberSees:
        kind === 'image'
          ? 'docker login fails: 401 UNAUTHORIZED (the audit log shows token.refuse bad_credentials)'
          : `downloads answer 401 UNAUTHORIZED with WWW-Authenticate: Basic (the audit log shows bad_credentials)`,
      answer: refusalAnswer(kind, 'credentials'),
      ifMissing: null,
      fix: `check the spelling (gatehouse member list), or create the member: gatehouse member create ${memberRef}`,
      checks,
    };
  }

  if (member.status === 'active') {
    checks.push({ check: 'member', ok: true, detail: `member ${member.username} is active` });
  } else {
    checks.push({
      check: 'member',
      ok: false,
      detail: `member ${member.username} is disabled${member.disabledAt ? ` since ${iso(member.disabledAt)}` : ''}`,
    });
    failures.push({ reason: 'member_disabled', fix: `gatehouse member enable ${member.username}` });
  }

  const statuses = keys.map((k) => accessKeyStatus(k, now));
  const describeKey = (k: AccessKey, i: number) =>
    `${k.prefix}${k.name ? ` "${k.name}"` : ''} ${statuses[i]}` +
    (k.revokedAt
      ? ` at ${iso(k.revokedAt)}`
      : k.expiresAt
        ? ` ${statuses[i] === 'expired' ? 'at' : 'until'} ${iso(k.expiresAt)}`
        : '');
  const usable = keys.map(describeKey).filter((_, i) => statuses[i] === 'active');
  if (usable.length > 0) {
    checks.push({
      check: 'access_keys',
      ok: true,
      detail: `${usable.length} usable access key${usable.length === 1 ? '' : 's'}: ${usable.join('; ')}`,
    });
  } else {
    const kinds = new Set(statuses);
    const reason: ExplainReason =
      keys.length === 0
        ? 'no_access_key'
        : kinds.size === 1 && kinds.has('revoked')
          ? 'key_revoked'
          : kinds.size === 1 && kinds.has('expired')
            ? 'key_expired'
            : 'no_usable_key';
    checks.push({
      check: 'access_keys',
      ok: false,
      detail:
        keys.length === 0
          ? 'the member has no access key'
          : `no usable access key: ${keys.map(describeKey).join('; ')}`,
    });
    failures.push({ reason, fix: `give them a new key: gatehouse key create ${member.username}` });
  }

  if (!entitlement || (!entitlement.allowed && entitlement.reason === 'repository_not_entitled')) {
    checks.push({ check: 'entitlement', ok: false, detail: `no entitlement to ${repository}` });
    failures.push({
      reason: 'repository_not_entitled',
      fix: `gatehouse grant ${member.username} ${repository} --tags ${tag ?? '<tags>'}`,
    });
  } else if (entitlement.allowed) {
    const e = entitlement.entitlement;
    const expiry = e.expiresAt ? `expires ${iso(e.expiresAt)}` : 'no expiry';
    if (tag === null) {
      checks.push({
        check: 'entitlement',
        ok: true,
        detail: `entitlement to ${repository} admits the tags its rules match: ${e.tagRules.join(', ')}; ${expiry}`,
      });
    } else if (entitlement.admission?.via === 'subject') {
      const a = entitlement.admission;
      const what = describeArtifact(a.artifact.kind, a.subjectTag);
      checks.push({
        check: 'entitlement',
        ok: true,
        detail: `entitlement to ${repository} admits ${tag}: the ${what} (${a.artifact.subject} is reachable from ${a.subjectTag}, admitted by rule "${a.rule}"); ${expiry}`,
      });
    } else {
      const rule = entitlement.match
        ? `rule "${entitlement.match.rule}" (${entitlement.match.kind})`
        : 'a rule';
      const judged =
        entitlement.match && entitlement.match.tag !== tag
          ? ` (judged as ${entitlement.match.tag}, the tag the upstream serves for it)`
          : '';
      checks.push({
        check: 'entitlement',
        ok: true,
        detail: `entitlement to ${repository} admits ${tag}${judged} by ${rule}; ${expiry}`,
      });
    }
  } else if (entitlement.reason === 'entitlement_expired') {
    const e = entitlement.entitlement!;
    checks.push({
      check: 'entitlement',
      ok: false,
      detail: `entitlement to ${repository} expired at ${iso(e.expiresAt)} (rules: ${e.tagRules.join(', ')})`,
    });
    failures.push({
      reason: 'entitlement_expired',
      fix: `renew it: gatehouse grant ${member.username} ${repository} --tags '${e.tagRules.join(',')}' --expires <date>`,
    });
  } else if (entitlement.reason === 'subject_not_reachable') {
    const e = entitlement.entitlement!;
    const a = entitlement.artifact!;
    const what = describeArtifact(a.kind as ArtifactKind, a.subject);
    checks.push({
      check: 'entitlement',
      ok: false,
      detail: a.checked
        ? `${tag} is the ${what}, which no tag the rules admit (${e.tagRules.join(', ')}) reaches`
        : `${tag} is the ${what}: admitted exactly when that digest is reachable from a tag the rules admit (${e.tagRules.join(', ')}); not checked here, as that needs the upstream (GET /admin/explain checks it)`,
    });
    failures.push({
      reason: 'subject_not_reachable',
      fix: `grant a tag that points at ${a.subject}: gatehouse grant ${member.username} ${repository} --tags '${[...e.tagRules, '<tag>'].join(',')}'`,
    });
  } else {
    const e = entitlement.entitlement!;
    checks.push({
      check: 'entitlement',
      ok: false,
      detail: `entitlement to ${repository} does not admit ${tag}: its rules are ${e.tagRules.join(', ')}`,
    });
    failures.push({
      reason: 'tag_not_entitled',
      fix: `widen the rules: gatehouse grant ${member.username} ${repository} --tags '${[...e.tagRules, tag].join(',')}'`,
    });
  }

  const first = failures[0];
  const answer = first ? refusalAnswer(kind, groundOf(first.reason)) : null;
  return {
    allowed: !first,
    reason: first?.reason ?? null,
    memberSees: answer
      ? kind === 'image'
        ? imageSees(answer, ref)
        : downloadSees(answer, ref)
      : kind !== 'image'
        ? `downloads of ${ref} are served`
        : tag
          ? `docker pull of ${ref} is served`
          : `docker pull of ${ref} is served for the tags its rules admit`,
    answer,
    ifMissing: first ? null : refusalAnswer(kind, tag === null ? 'target' : 'tag'),
    fix: first ? failures.map((f) => f.fix).join('; then ') : null,
    checks,
  };
}

/** Which answer a failing check earns: the member learns only credentials, target or tag. */
function groundOf(reason: ExplainReason): RefusalGround {
  switch (reason) {
    case 'repository_not_entitled':
    case 'entitlement_expired':
      return 'target';
    case 'tag_not_entitled':
    case 'subject_not_reachable':
      return 'tag';
    default:
      return 'credentials';
  }
}

function downloadSees(answer: RefusalAnswer, ref: string): string {
  return answer.status === 401
    ? `downloads answer ${formatRefusalAnswer(answer)} with WWW-Authenticate: Basic (bad credentials)`
    : `downloads of ${ref} answer ${formatRefusalAnswer(answer)} (the same answer as for one that does not exist)`;
}

function imageSees(answer: RefusalAnswer, ref: string): string {
  if (answer.status === 401)
    return `docker login fails: ${formatRefusalAnswer(answer)} (tokens already issued stop working within 10 seconds)`;
  const what = answer.code === 'NAME_UNKNOWN' ? 'a repository' : 'a tag';
  return `docker pull ${ref} fails: ${formatRefusalAnswer(answer)} (the same answer as for ${what} that does not exist)`;
}
