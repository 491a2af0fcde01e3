import type { EntitlementKind } from './entitlement-target';
import { OCI_ERROR_CODES, OciErrorCode } from './oci-error';

/**
 * Why a member's request is not served, as far as the member may learn it: credentials refused,
 * a target (repository, release repository, package) or a tag (tag, release tag, version)
 * refused or unknown. Unentitled and unknown are one ground: the member never learns which.
 */
export type RefusalGround = 'credentials' | 'target' | 'tag';

export interface RefusalAnswer {
  status: number;
  code: OciErrorCode;
}

/**
 * THE answer a member gets, by kind and ground: what the registry and the downloads send, and
 * what `gatehouse explain` says the member sees, so the two cannot disagree. Images follow the
 * distribution spec (NAME_UNKNOWN for a repository, MANIFEST_UNKNOWN for a tag); a download has
 * one not-found answer whatever was missing, so it says nothing about what exists.
 */
export function refusalAnswer(kind: EntitlementKind, ground: RefusalGround): RefusalAnswer {
  const code: OciErrorCode =
    ground === 'credentials'
      ? 'UNAUTHORIZED'
      : kind === 'image' && ground === 'tag'
        ? 'MANIFEST_UNKNOWN'
        : 'NAME_UNKNOWN';
  return { status: OCI_ERROR_CODES[code].status, code };
}

/** `404 MANIFEST_UNKNOWN`: how an answer is written in explanations and the docs. */
export function formatRefusalAnswer(answer: RefusalAnswer): string {
  return `${answer.status} ${answer.code}`;
}
