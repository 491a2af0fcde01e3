import type { ArtifactTag } from '@gatehouse/oci';
import type { TagMatch } from './tag-rule.util';

/**
 * Reachability as the pull path computes it (libs/pull-through `PullThroughService`
 * `findReachingTag`, which satisfies this shape): an admitted tag of `name` whose manifests reach
 * `digest`, or null. `admits` is asked before a tag is resolved, so a tag it refuses is never
 * requested upstream.
 */
export interface Reachability {
  findReachingTag(
    name: string,
    digest: string,
    admits: (tag: string) => boolean | Promise<boolean>,
  ): Promise<{ tag: string; size: number } | null>;
}

/** Why a tag is admitted: a rule matches it, or it is an artifact of a reachable subject. */
export type TagAdmission =
  | { via: 'rule'; tag: string; match: TagMatch }
  | {
      via: 'subject';
      /** The canonical form of the artifact tag: the form to ask the upstream for. */
      tag: string;
      artifact: ArtifactTag;
      /** The rule-admitted tag from which the subject digest is reachable (e.g. `v1.0.0`). */
      subjectTag: string;
      /** The rule that admits `subjectTag`. */
      rule: string;
    };

/** A digest's way in: a tag it is reachable from, and (through an artifact tag) that tag's subject's tag. */
export interface DigestReach {
  tag: string;
  size: number;
  /** Set when `tag` is an artifact tag admitted through its subject. */
  subjectTag?: string;
}
