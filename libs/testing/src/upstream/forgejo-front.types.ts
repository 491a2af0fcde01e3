import type { BasicCredentials } from './registry-process';

/** The Forgejo front's public shapes: its options, its request log and its control surface. */

export interface FrontToken {
  /** Forgejo scope names: 'read:package', 'write:package', 'all', 'public-only', ... */
  scopes: string[];
  revoked?: boolean;
  /** Forgejo user owning the PAT; defaults to `gatehouse-service` */
  user?: string;
}

export type BlobBehaviour =
  | 'normal'
  /** headers and no body bytes, ever */
  | 'hang'
  /** body at ~160 KiB/s, or `trickle:<bytes per second>` */
  | 'trickle'
  | `trickle:${number}`
  /** announce the full length, send N bytes, then reset the connection */
  | `cut-after:${number}`
  /** send N bytes, then keep the connection open without sending more */
  | `stall-after:${number}`
  /** answer with this status and an empty body */
  | `fail:${number}`;

export interface ForgejoFrontOptions {
  /** the front's port on 127.0.0.1; 0 or unset: a free one */
  port?: number;
  /** the registry that holds the content, e.g. `RegistryProcess.url` */
  upstreamUrl: string;
  upstreamCreds?: BasicCredentials;
  /** Forgejo ROOT_URL ending in `/`; defaults to the front's own `http://127.0.0.1:<port>/` */
  rootUrl?: string;
  tokens?: Record<string, FrontToken>;
  /** owners (users or organisations) that exist; anything else is 404 `Not found.` */
  knownOwners: string[];
  privateOwners?: string[];
  /** owners each Forgejo user may read; a user missing here reads every known owner */
  userOwners?: Record<string, string[]>;
  /** answer blob and manifest GETs with a 307 to a presigned "S3" URL on another origin */
  serveDirect?: boolean;
  /** false reproduces v11 LTS: Range ignored, 200 with the full body */
  rangeSupport?: boolean;
  /** REQUIRE_SIGNIN_VIEW; when false anonymous users get a ghost token for public owners */
  requireSigninView?: boolean;
  jwtTtlSeconds?: number;
  presignTtlSeconds?: number;
  /** host name put in presigned URLs; a name other than the front's makes Go clients drop Authorization */
  storageHost?: string;
  log?: (line: string) => void;
}

export type FrontRequestKind =
  | 'ping'
  | 'token'
  | 'catalog'
  | 'manifest'
  | 'blob'
  | 'tags'
  /** `GET /v2/<name>/referrers/<digest>` (404 with an empty body unless `setReferrersApi(true)`) */
  | 'referrers'
  /** the releases API, a release asset download (front or storage), generic package files */
  | 'releases'
  | 'asset'
  | 'package-files'
  /** `GET /api/v1/packages/<owner>?type=…&q=…` (one item per version) */
  | 'package-versions'
  | 'package-file'
  | 'other';

export interface FrontRequestRecord {
  server: 'front' | 'storage';
  method: string;
  /** path without the query */
  path: string;
  query: string;
  kind: FrontRequestKind;
  /** owner/image for image routes */
  repository?: string;
  /** tag or digest for manifest and blob routes */
  reference?: string;
  auth: 'none' | 'basic' | 'bearer' | 'other';
  /** 0 while the response has not finished (or never did) */
  status: number;
  at: number;
}

export interface ForgejoFront {
  /** `http://127.0.0.1:<port>` without a trailing slash */
  readonly url: string;
  readonly hostPort: string;
  readonly port: number;
  readonly rootUrl: string;
  readonly storageUrl: string;
  readonly requests: FrontRequestRecord[];
  countRequests(predicate?: (r: FrontRequestRecord) => boolean): number;
  resetCounts(): void;
  addToken(pat: string, token: FrontToken): void;
  revokeToken(pat: string): void;
  setTokenScopes(pat: string, scopes: string[]): void;
  addOwner(name: string, options?: { private?: boolean }): void;
  setOwnerPrivate(name: string, isPrivate: boolean): void;
  /** rotate the signing secret: every JWT issued so far becomes invalid */
  invalidateJwts(): void;
  setJwtTtl(seconds: number): void;
  /** what GET /v2/token would return for this PAT */
  mintJwt(pat: string): Promise<string>;
  /** How the blob, or the manifest (GET by tag or digest), with this digest is served. */
  setBlobBehaviour(digest: string, behaviour: BlobBehaviour): void;
  /**
   * Lists `tag` in the repository's tags/list on top of what the registry holds, as a broken or
   * lying upstream would (it need not be a valid tag, and no manifest answers to it).
   */
  addListedTag(repository: string, tag: string): void;
  setServeDirect(enabled: boolean): void;
  /**
   * Off (Forgejo): referrers requests fall to the catch-all, 404 with an empty body. On: answers
   * `/v2/<name>/referrers/<digest>` as an OCI 1.1 registry would, with the registry's
   * `sha256-<hex>` tag-schema index plus what `addReferrer` added (no filtering).
   */
  setReferrersApi(enabled: boolean): void;
  /** A descriptor the referrers API lists for `subject` in `repository` (only when it is on). */
  addReferrer(repository: string, subject: string, descriptor: Record<string, unknown>): void;
  /** Publishes a release of `owner/repo` with assets (name → bytes); newest last unless `createdAt`. */
  addRelease(
    repository: string,
    release: {
      tag: string;
      assets: Record<string, Buffer>;
      draft?: boolean;
      prerelease?: boolean;
      createdAt?: Date;
    },
  ): void;
  /**
   * Uploads a generic package file (`owner/name`, version, filename); the version's first upload
   * fixes the case its name and version are listed in and its time (now unless `createdAt`).
   */
  addPackageFile(
    packageName: string,
    version: string,
    filename: string,
    data: Buffer,
    createdAt?: Date,
  ): void;
  /** Release assets and package files answered with a 303 to presigned storage (MinIO SERVE_DIRECT). */
  setDownloadServeDirect(enabled: boolean): void;
  setRangeSupport(enabled: boolean): void;
  setPresignTtl(seconds: number): void;
  stop(): Promise<void>;
}
