import { isValidPackageVersion, isValidReleaseTag } from './download-route';
import { isValidRepositoryName } from './grammar';
import { ImageReferenceError, parseImageReference } from './image-reference';

/**
 * What an entitlement is to: an OCI image repository (`acme/app`), the assets of a Forgejo
 * repository's releases (`releases:acme/tool`, rules match release tags) or a generic package's
 * files (`packages:acme/cli`, rules match package versions).
 */
export type EntitlementKind = 'image' | 'releases' | 'packages';

export interface EntitlementTarget {
  kind: EntitlementKind;
  /** `owner/image…` for images; exactly `owner/name` for releases and packages. */
  name: string;
}

/** A target with the tag (image tag, release tag, package version) and digest a person typed. */
export interface TargetReference extends EntitlementTarget {
  tag: string | null;
  digest: string | null;
}

const PREFIXES = { 'releases:': 'releases', 'packages:': 'packages' } as const;
const COMPONENT = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const show = (s: string) => JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}…` : s);

/** `owner/name` of a release repository or generic package: two lowercase components. */
export function isValidDownloadName(name: string): boolean {
  const parts = name.split('/');
  return parts.length === 2 && parts.every((p) => p.length <= 128 && COMPONENT.test(p));
}

/**
 * A release tag or package version the gateway serves: every one Forgejo accepts (git's tag
 * grammar for releases, one trimmed path segment for packages; `v1.4.0+build7` is both).
 */
export function isValidDownloadVersion(version: string, kind: 'releases' | 'packages'): boolean {
  return kind === 'releases' ? isValidReleaseTag(version) : isValidPackageVersion(version);
}

/** An asset or package file name: one path segment, no control characters, at most 255 bytes. */
export function isValidAssetFilename(name: string): boolean {
  return (
    name.length > 0 &&
    Buffer.byteLength(name) <= 255 &&
    name !== '.' &&
    name !== '..' &&
    !/[/\\]/.test(name) &&
    ![...name].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)
  );
}

export function formatEntitlementTarget(target: EntitlementTarget): string {
  return target.kind === 'image' ? target.name : `${target.kind}:${target.name}`;
}

function splitKind(text: string): { kind: EntitlementKind; rest: string } {
  const value = text.trim();
  for (const [prefix, kind] of Object.entries(PREFIXES)) {
    if (value.toLowerCase().startsWith(prefix)) return { kind, rest: value.slice(prefix.length) };
  }
  return { kind: 'image', rest: value };
}

function checkDownloadName(kind: EntitlementKind, name: string): string {
  const normalized = name.replace(/^\/+|\/+$/g, '').toLowerCase();
  if (!isValidDownloadName(normalized)) {
    throw new ImageReferenceError(
      'repository_invalid',
      `${show(name)} is not a ${kind === 'releases' ? 'repository' : 'package'} name: give ${kind}:<owner>/<name>, e.g. ${kind}:acme/tool (lowercase letters, digits, and . _ - inside the two components)`,
    );
  }
  return normalized;
}

/**
 * The one parser of what people type for a target, with an optional version after `@` for
 * releases and packages (`releases:acme/tool@v1.2.0`, `packages:acme/cli@1.4.0`); anything
 * without a kind prefix is an image reference, parsed by `parseImageReference`.
 */
export function parseTargetReference(text: string): TargetReference {
  const { kind, rest } = splitKind(text);
  if (kind === 'image') {
    const image = parseImageReference(rest);
    return { kind, name: image.repository, tag: image.tag, digest: image.digest };
  }
  const at = rest.indexOf('@');
  const name = checkDownloadName(kind, at < 0 ? rest : rest.slice(0, at));
  const tag = at < 0 ? null : rest.slice(at + 1);
  if (tag !== null && !isValidDownloadVersion(tag, kind)) {
    throw new ImageReferenceError(
      'tag_invalid',
      kind === 'releases'
        ? `${show(tag)} is not a valid release tag: git's tag rules (no spaces, ~ ^ : ? * [ \\, "..", "@{", empty or dot-led parts), at most 255 bytes`
        : `${show(tag)} is not a valid package version: one path segment (no "/"), no surrounding spaces, at most 255 bytes`,
    );
  }
  return { kind, name, tag, digest: null };
}

/** A target without tag or digest (grant, revoke, filters): `acme/app`, `releases:acme/tool`. */
export function parseEntitlementTarget(text: string): EntitlementTarget {
  const parsed = parseTargetReference(text);
  if (parsed.tag !== null || parsed.digest !== null) {
    throw new ImageReferenceError(
      'repository_invalid',
      `${show(text.trim())} names a version; give the target alone (e.g. acme/app or releases:acme/tool) and the versions as tag rules`,
    );
  }
  if (parsed.kind === 'image' && !isValidRepositoryName(parsed.name)) {
    throw new ImageReferenceError('repository_invalid', `${show(parsed.name)} is not a repository name`);
  }
  return { kind: parsed.kind, name: parsed.name };
}
