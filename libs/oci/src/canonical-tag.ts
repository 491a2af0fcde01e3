/**
 * Which spellings of a tag the upstream treats as one tag. Forgejo looks tags up by their
 * lowercase form (`lower_version`), so `v2.0.0-rC.1` and `v2.0.0-rc.1` name the same image
 * there; a case-sensitive registry (distribution) keeps them apart.
 */
export interface TagCanonicalization {
  caseInsensitive: boolean;
}

/** Forgejo's behaviour, and the default of UPSTREAM_TAGS_CASE_INSENSITIVE. */
export const FORGEJO_TAGS: TagCanonicalization = Object.freeze({ caseInsensitive: true });

/**
 * The one form of a tag that every decision about it is made on: the form the upstream resolves
 * it in. Two requests whose tags have the same canonical form are served the same image, so they
 * must get the same verdict; the pull path also asks the upstream for this form, so what is
 * served is exactly what was judged. Tags are ASCII by the grammar, so lowering is plain ASCII.
 */
export function canonicalTag(tag: string, how: TagCanonicalization): string {
  return how.caseInsensitive ? tag.toLowerCase() : tag;
}
