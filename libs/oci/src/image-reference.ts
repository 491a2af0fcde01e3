import { isSupportedDigest, isValidRepositoryName, isValidTag } from './grammar';

/**
 * `<repository>[:<tag>][@<digest>]`, as support staff and operators type an image
 * (`acme/app:v1.2.3`, `acme/tools/cli`, `acme/app@sha256:…`, `acme/app:v1@sha256:…`). The
 * registry host is not part of it: the gateway is the registry.
 */
export interface ImageReference {
  repository: string;
  tag: string | null;
  digest: string | null;
}

export type ImageReferenceProblem = 'empty' | 'repository_invalid' | 'tag_invalid' | 'digest_invalid';

/** A reference that is not one; `message` says what is wrong and what a good one looks like. */
export class ImageReferenceError extends Error {
  constructor(
    readonly problem: ImageReferenceProblem,
    message: string,
  ) {
    super(message);
    this.name = 'ImageReferenceError';
  }
}

const show = (s: string) => JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}…` : s);

/**
 * The one parser of image references (the CLI's explain and verify-oci, the admin API). The tag
 * is after a colon in the last path component, the digest after `@`; each part is checked by the
 * distribution-spec grammar the `/v2/` routes use, so a reference accepted here names the same
 * repository, tag and digest a pull would.
 */
export function parseImageReference(text: string): ImageReference {
  const value = text.trim();
  if (value === '')
    throw new ImageReferenceError(
      'empty',
      'an image reference is empty: give <repository>:<tag>, e.g. acme/app:v1.2.3',
    );
  const at = value.indexOf('@');
  const named = at < 0 ? value : value.slice(0, at);
  const digest = at < 0 ? null : value.slice(at + 1);
  if (digest !== null && !isSupportedDigest(digest)) {
    throw new ImageReferenceError(
      'digest_invalid',
      `${show(digest)} is not a valid digest: sha256:<64 lowercase hex> or sha512:<128 lowercase hex>`,
    );
  }
  const slash = named.lastIndexOf('/');
  const colon = named.indexOf(':', slash + 1);
  const repository = colon < 0 ? named : named.slice(0, colon);
  const tag = colon < 0 ? null : named.slice(colon + 1);
  if (!isValidRepositoryName(repository)) {
    const host = repository.split('/', 1)[0];
    throw new ImageReferenceError(
      'repository_invalid',
      /[:]|^localhost$/.test(host) && repository.includes('/')
        ? `${show(repository)} is not a valid repository name: leave out the registry host (${show(host)}), e.g. acme/app:v1.2.3`
        : `${show(repository)} is not a valid repository name: use lowercase path components like acme/app or acme/tools/cli (letters, digits, and . _ - inside components)`,
    );
  }
  if (tag !== null && !isValidTag(tag)) {
    throw new ImageReferenceError(
      'tag_invalid',
      `${show(tag)} is not a valid tag: tags are 1-128 characters of letters, digits, ".", "_" and "-", not starting with "." or "-"`,
    );
  }
  return { repository, tag, digest };
}
