/**
 * The OCI distribution-spec grammar for repository names, tags and digests
 * (distribution-spec "Pulling manifests": <name> and <reference>).
 */
const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
export const NAME_REGEXP = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
export const TAG_REGEXP = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
export const SHA256_DIGEST_REGEXP = /^sha256:[a-f0-9]{64}$/;
export const SHA512_DIGEST_REGEXP = /^sha512:[a-f0-9]{128}$/;
/** Names longer than this are refused (docker's limit on the full reference is 255). */
export const NAME_MAX_LENGTH = 255;

export function isValidRepositoryName(name: string): boolean {
  return name.length <= NAME_MAX_LENGTH && NAME_REGEXP.test(name);
}

export function isValidTag(tag: string): boolean {
  return TAG_REGEXP.test(tag);
}

declare const DIGEST_BRAND: unique symbol;

/**
 * A digest that passed `isSupportedDigest`: `sha256:` + 64 or `sha512:` + 128 lowercase hex.
 * Only a check makes one (the route parse, a manifest's descriptors, `computeDigest`), so code
 * that takes a `Digest` needs no second look at it; see dev-docs/architecture.md.
 */
export type Digest = string & { readonly [DIGEST_BRAND]: true };

/** True for a digest this registry can verify (sha256 and sha512 with the right length). */
export function isSupportedDigest(digest: string): digest is Digest {
  return SHA256_DIGEST_REGEXP.test(digest) || SHA512_DIGEST_REGEXP.test(digest);
}

export function looksLikeDigest(reference: string): boolean {
  return reference.includes(':');
}
