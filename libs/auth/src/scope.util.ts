import { EntitlementKind, isValidDownloadName, isValidRepositoryName } from '@gatehouse/oci';

/**
 * Docker token scopes (distribution docs, spec/auth/scope.md):
 *   resourcescope := resourcetype ":" resourcename ":" action [ "," action ]*
 *   resourcetype  := /[a-z0-9]+/ [ "(" /[a-z0-9]+/ ")" ]
 * A name may hold a host with a port (`host:5000/app`), so the type ends at the first colon and
 * the actions start after the last one. A request's scopes are space separated (POST) or
 * repeated parameters (GET), which may themselves hold several space-separated scopes.
 */
export interface ResourceScope {
  /** `repository`, `registry`, or `repository(plugin)` etc. verbatim. */
  type: string;
  name: string;
  actions: string[];
}

/** One entry of the token's `access` claim, the shape Docker registries read. */
export interface ScopeGrant {
  type: string;
  name: string;
  actions: string[];
}

export class ScopeParseError extends Error {
  constructor(readonly scope: string) {
    super(
      `malformed scope "${scope}": expected <type>:<name>:<action>[,<action>], e.g. repository:acme/app:pull`,
    );
    this.name = 'ScopeParseError';
  }
}

const TYPE_REGEXP = /^[a-z0-9]+(?:\([a-z0-9]+\))?$/;
const ACTION_REGEXP = /^(?:[a-z]*|\*)$/;
const SCOPE_MAX_LENGTH = 1024;
/** More scopes than any real client asks for at once; bounds the work a request can cause. */
export const MAX_SCOPES = 64;

export function parseResourceScope(text: string): ResourceScope {
  if (text.length > SCOPE_MAX_LENGTH) throw new ScopeParseError(text.slice(0, 64) + '…');
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (first <= 0 || last === first) throw new ScopeParseError(text);
  const type = text.slice(0, first);
  const name = text.slice(first + 1, last);
  const actions = text.slice(last + 1).split(',');
  if (
    !TYPE_REGEXP.test(type) ||
    name === '' ||
    /\s/.test(name) ||
    !actions.every((a) => ACTION_REGEXP.test(a))
  ) {
    throw new ScopeParseError(text);
  }
  return { type, name, actions: [...new Set(actions.filter((a) => a !== ''))] };
}

/** Parses every scope of a request: each value may hold several space-separated scopes. */
export function parseScopes(values: readonly string[]): ResourceScope[] {
  const out: ResourceScope[] = [];
  for (const value of values) {
    for (const part of value.split(' ')) {
      if (part === '') continue;
      out.push(parseResourceScope(part));
      if (out.length > MAX_SCOPES) throw new ScopeParseError(`${MAX_SCOPES + 1} scopes or more`);
    }
  }
  return out;
}

export function formatScope(scope: ResourceScope | ScopeGrant): string {
  return `${scope.type}:${scope.name}:${scope.actions.join(',')}`;
}

/** The scope a request under /v2/ needs; null for the ping (`GET /v2/`), which only needs a login. */
export type RequiredScope = ScopeGrant | null;

export function repositoryPullScope(name: string): ScopeGrant {
  return { type: 'repository', name, actions: ['pull'] };
}

export const CATALOG_SCOPE: ScopeGrant = Object.freeze({
  type: 'registry',
  name: 'catalog',
  actions: ['*'],
}) as ScopeGrant;

/**
 * The download scope types, beside Docker's `repository` and `registry`: `release:<owner>/<repo>:pull`
 * opens the release assets of a `releases:` entitlement, `package:<owner>/<name>:pull` the files of
 * a `packages:` one. A Bearer token on /downloads must carry the one that covers its target.
 */
const DOWNLOAD_SCOPE_TYPES = { releases: 'release', packages: 'package' } as const;
const DOWNLOAD_KINDS: Record<string, 'releases' | 'packages'> = { release: 'releases', package: 'packages' };

export type DownloadKind = keyof typeof DOWNLOAD_SCOPE_TYPES;

/** The scope a download of `kind` from `name` (`owner/repo`, `owner/package`) needs. */
export function downloadPullScope(kind: DownloadKind, name: string): ScopeGrant {
  return { type: DOWNLOAD_SCOPE_TYPES[kind], name, actions: ['pull'] };
}

/**
 * The grant: the requested scopes intersected with what the member may do. Pull-only: push,
 * delete and any other action are never granted; `repository:<name>:*` yields pull (so do
 * `release:` and `package:` scopes). The catalog is granted to any member (it lists only their
 * entitled repositories). Unknown resource types and targets the member is not entitled to are
 * left out: a partial grant is not an error.
 */
export function grantScopes(
  requested: readonly ResourceScope[],
  isEntitled: (kind: EntitlementKind, name: string) => boolean,
): ScopeGrant[] {
  const grants = new Map<string, ScopeGrant>();
  for (const scope of requested) {
    let grant: ScopeGrant | null = null;
    const wantsAll = scope.actions.includes('*');
    const wantsPull = wantsAll || scope.actions.includes('pull');
    const downloadKind = Object.hasOwn(DOWNLOAD_KINDS, scope.type) ? DOWNLOAD_KINDS[scope.type] : undefined;
    if (scope.type === 'repository') {
      if (wantsPull && isValidRepositoryName(scope.name) && isEntitled('image', scope.name)) {
        grant = repositoryPullScope(scope.name);
      }
    } else if (downloadKind) {
      if (wantsPull && isValidDownloadName(scope.name) && isEntitled(downloadKind, scope.name)) {
        grant = downloadPullScope(downloadKind, scope.name);
      }
    } else if (scope.type === 'registry' && scope.name === 'catalog' && wantsAll) {
      grant = { ...CATALOG_SCOPE, actions: ['*'] };
    }
    if (grant) grants.set(`${grant.type}:${grant.name}`, grant);
  }
  return [...grants.values()];
}

/** The entitlement kinds a request's scopes name (the token endpoint loads only those). */
export function scopeKinds(requested: readonly ResourceScope[]): EntitlementKind[] {
  const kinds = new Set<EntitlementKind>();
  for (const scope of requested) {
    if (scope.type === 'repository') kinds.add('image');
    else if (Object.hasOwn(DOWNLOAD_KINDS, scope.type)) kinds.add(DOWNLOAD_KINDS[scope.type]);
  }
  return [...kinds];
}

/** True when `access` holds every action of `required`. */
export function accessCovers(access: readonly ScopeGrant[], required: ScopeGrant): boolean {
  return access.some(
    (g) =>
      g.type === required.type &&
      g.name === required.name &&
      required.actions.every((a) => g.actions.includes(a) || g.actions.includes('*')),
  );
}
