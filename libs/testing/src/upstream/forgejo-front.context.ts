import { createHash, randomBytes } from 'node:crypto';
import { Socket } from 'node:net';
import { Agent } from 'undici';
import { BlobBehaviour, ForgejoFrontOptions, FrontRequestRecord, FrontToken } from './forgejo-front.types';

export const DIST_HEADER = { 'docker-distribution-api-version': 'registry/2.0' };
export const PAT_RE = /^[a-f0-9]{40}$/;
export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
export const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
export const IMAGE_RE = /^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/;
export const GHOST_USER_ID = -1;

/** A 40-hex PAT, derived from a label when given so tests can print stable values. */
export function generatePat(label?: string): string {
  return label === undefined
    ? randomBytes(20).toString('hex')
    : createHash('sha256').update(`pat:${label}`).digest('hex').slice(0, 40);
}

export interface Principal {
  userId: number;
  user: string;
  /** PAT scopes; undefined for a JWT with an empty scope (no scope check applies) */
  scopes?: string[];
}

export type AuthResult = { kind: 'none' } | { kind: 'error' } | { kind: 'user'; principal: Principal };

/** The front's state, shared by its route tables; the control methods of ForgejoFront change it. */
export interface FrontContext {
  options: ForgejoFrontOptions;
  log: (line: string) => void;
  tokens: Map<string, FrontToken>;
  owners: Map<string, { name: string; private: boolean }>;
  userNames: Map<number, string>;
  /** The Forgejo user id of a user name, allotted on first sight. */
  userId(name: string): number;
  jwtSecret: Buffer;
  presignSecret: Buffer;
  jwtTtl: number;
  presignTtl: number;
  serveDirect: boolean;
  rangeSupport: boolean;
  requireSigninView: boolean;
  behaviours: Map<string, BlobBehaviour>;
  /** Tags listed on top of what the registry holds (a broken or lying upstream). */
  listedTags: Map<string, string[]>;
  /** Off: Forgejo's empty 404 for referrers. On: an OCI 1.1 referrers API. */
  referrersApi: boolean;
  /** Extra referrers by `repository\u0000subject`, listed by the API when it is on. */
  referrers: Map<string, Record<string, unknown>[]>;
  requests: FrontRequestRecord[];
  agent: Agent;
  upstreamAuth: string | undefined;
  upstreamBase: string;
  storageHost: string;
  /** Set once the front listens (from the options, else its own address). */
  rootUrl: string;
  storageUrl: string;
  openSockets: Set<Socket>;
}

export function createFrontContext(options: ForgejoFrontOptions): FrontContext {
  const owners = new Map<string, { name: string; private: boolean }>();
  const privateSet = new Set((options.privateOwners ?? []).map((o) => o.toLowerCase()));
  for (const o of options.knownOwners)
    owners.set(o.toLowerCase(), { name: o, private: privateSet.has(o.toLowerCase()) });
  const userIds = new Map<string, number>();
  const userNames = new Map<number, string>();
  return {
    options,
    log: options.log ?? (() => undefined),
    tokens: new Map<string, FrontToken>(Object.entries(options.tokens ?? {})),
    owners,
    userNames,
    userId: (name: string): number => {
      let id = userIds.get(name);
      if (id === undefined) {
        id = userIds.size + 1;
        userIds.set(name, id);
        userNames.set(id, name);
      }
      return id;
    },
    jwtSecret: randomBytes(32),
    presignSecret: randomBytes(32),
    jwtTtl: options.jwtTtlSeconds ?? 24 * 3600,
    presignTtl: options.presignTtlSeconds ?? 300,
    serveDirect: options.serveDirect ?? false,
    rangeSupport: options.rangeSupport ?? true,
    requireSigninView: options.requireSigninView ?? true,
    behaviours: new Map<string, BlobBehaviour>(),
    listedTags: new Map<string, string[]>(),
    referrersApi: false,
    referrers: new Map<string, Record<string, unknown>[]>(),
    requests: [],
    agent: new Agent({ keepAliveTimeout: 2000, connections: 32 }),
    upstreamAuth: options.upstreamCreds
      ? 'Basic ' +
        Buffer.from(`${options.upstreamCreds.username}:${options.upstreamCreds.password}`).toString('base64')
      : undefined,
    upstreamBase: options.upstreamUrl.replace(/\/+$/, ''),
    storageHost: options.storageHost ?? 'localhost',
    rootUrl: options.rootUrl ?? '',
    storageUrl: '',
    openSockets: new Set<Socket>(),
  };
}
