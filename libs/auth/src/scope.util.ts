import { isValidRepositoryName } from '@gatehouse/oci';

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
 * The grant: the requested scopes intersected with what the member may do. Pull-only: push,
 * delete and any other action are never granted; `repository:<name>:*` yields pull. The catalog
 * is granted to any member (it lists only their entitled repositories). Unknown resource types
 * and repositories the member is not entitled to are left out: a partial grant is not an error.
 */
export function grantScopes(
  requested: readonly ResourceScope[],
  isEntitled: (repository: string) => boolean,
): ScopeGrant[] {
  const grants = new Map<string, ScopeGrant>();
  for (const scope of requested) {
    let grant: ScopeGrant | null = null;
    const wantsAll = scope.actions.includes('*');
    if (scope.type === 'repository') {
      if (
        (wantsAll || scope.actions.includes('pull')) &&
        isValidRepositoryName(scope.name) &&
        isEntitled(scope.name)
      ) {
        grant = repositoryPullScope(scope.name);
      }
    } else if (scope.type === 'registry' && scope.name === 'catalog' && wantsAll) {
      grant = { ...CATALOG_SCOPE, actions: ['*'] };
    }
    if (grant) grants.set(`${grant.type}:${grant.name}`, grant);
  }
  return [...grants.values()];
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
