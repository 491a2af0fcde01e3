import { randomBytes } from 'node:crypto';
import {
  canonicalTag,
  FORGEJO_TAGS,
  ImageReference,
  ImageReferenceError,
  isValidRepositoryName,
  isValidTag,
  parseImageReference,
} from '@gatehouse/oci';

/** Everything one verification run needs; secrets stay in here and never reach the output. */
export interface VerifyOciOptions {
  /** Where clients reach the registry, e.g. `https://registry.example.com` (no path). */
  url: URL;
  username: string;
  password: string;
  repository: string;
  tag: string;
  unentitledTag: string;
  unknownRepository: string;
  /** Explicitly given, or null for the default `<url>/metrics` (then a missing endpoint is a SKIP). */
  metricsUrl: URL | null;
  adminUrl: URL | null;
  adminToken: string | null;
  checkRateLimit: boolean;
  /** Bad logins to send before declaring that no rate limit answered. */
  rateLimitMaxRequests: number;
  /** Run skopeo (or docker) when installed. */
  realClient: boolean;
  /** Per request; blob bodies get this much time between bytes, not in total. */
  timeoutMs: number;
  /** A tag no entitlement admits and no image has, for the "wrong tag" envelope. */
  missingTag: string;
}

export class VerifyOptionsError extends Error {}

export interface RawVerifyOptions {
  url?: string;
  username?: string;
  password?: string;
  image?: string;
  unentitledTag?: string;
  unknownRepository?: string;
  metricsUrl?: string;
  adminUrl?: string;
  adminToken?: string;
  checkRateLimit?: boolean;
  rateLimitMax?: string;
  client?: boolean;
  timeout?: string;
}

/** `owner/image:tag` by the one image-reference parser (libs/oci); a digest cannot be "the pinned tag". */
export function parseVerifyImage(image: string): { repository: string; tag: string } {
  let parsed: ImageReference;
  try {
    parsed = parseImageReference(image);
  } catch (e) {
    if (e instanceof ImageReferenceError) throw new VerifyOptionsError(`--image: ${e.message}`);
    throw e;
  }
  if (parsed.tag === null || parsed.digest !== null)
    throw new VerifyOptionsError(`--image must be <repository>:<tag>, e.g. acme/app:v1.0.0 (got "${image}")`);
  return { repository: parsed.repository, tag: parsed.tag };
}

function parseHttpUrl(value: string, flag: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new VerifyOptionsError(
      `${flag} must be an http(s) URL, e.g. https://registry.example.com (got "${value}")`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new VerifyOptionsError(`${flag} must be an http(s) URL (got "${value}")`);
  return url;
}

function positiveInt(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new VerifyOptionsError(`${flag} must be a positive integer (got "${value}")`);
  return n;
}

/** Validates the flags (already merged with their environment variables) into options. */
export function resolveVerifyOptions(raw: RawVerifyOptions): VerifyOciOptions {
  const missing: string[] = [];
  if (!raw.url) missing.push('--url (VERIFY_OCI_URL)');
  if (!raw.username) missing.push('--username (VERIFY_OCI_USERNAME)');
  if (!raw.password) missing.push('--password (VERIFY_OCI_PASSWORD)');
  if (!raw.image) missing.push('--image (VERIFY_OCI_IMAGE)');
  if (!raw.unentitledTag) missing.push('--unentitled-tag (VERIFY_OCI_UNENTITLED_TAG)');
  if (missing.length > 0) throw new VerifyOptionsError(`missing ${missing.join(', ')}`);

  const url = parseHttpUrl(raw.url!, '--url');
  if (url.pathname !== '/' || url.search)
    throw new VerifyOptionsError(
      `--url is the registry's origin, without a path (got "${raw.url}"); clients pull <host>/<repository>`,
    );
  const { repository, tag } = parseVerifyImage(raw.image!);
  if (!isValidTag(raw.unentitledTag!))
    throw new VerifyOptionsError(`--unentitled-tag: "${raw.unentitledTag}" is not a valid tag`);
  // Forgejo finds tags whatever their case: a case variant of the pinned tag is the same image.
  if (canonicalTag(raw.unentitledTag!, FORGEJO_TAGS) === canonicalTag(tag, FORGEJO_TAGS))
    throw new VerifyOptionsError(
      '--unentitled-tag must differ from the tag of --image (in more than letter case: Forgejo finds tags whatever their case)',
    );
  const unknownRepository =
    raw.unknownRepository ?? `${repository.split('/')[0]}/gatehouse-verify-oci-unknown`;
  if (!isValidRepositoryName(unknownRepository))
    throw new VerifyOptionsError(
      `--unknown-repository: "${unknownRepository}" is not a valid repository name`,
    );
  if (unknownRepository === repository)
    throw new VerifyOptionsError('--unknown-repository must differ from the repository of --image');
  if (!!raw.adminUrl !== !!raw.adminToken)
    throw new VerifyOptionsError(
      '--admin-url and --admin-token go together (VERIFY_OCI_ADMIN_URL, VERIFY_OCI_ADMIN_TOKEN)',
    );

  return {
    url,
    username: raw.username!,
    password: raw.password!,
    repository,
    tag,
    unentitledTag: raw.unentitledTag!,
    unknownRepository,
    metricsUrl: raw.metricsUrl ? parseHttpUrl(raw.metricsUrl, '--metrics-url') : null,
    adminUrl: raw.adminUrl ? parseHttpUrl(raw.adminUrl, '--admin-url') : null,
    adminToken: raw.adminToken ?? null,
    checkRateLimit: !!raw.checkRateLimit,
    rateLimitMaxRequests: positiveInt(raw.rateLimitMax, '--rate-limit-max', 50),
    realClient: raw.client !== false,
    timeoutMs: positiveInt(raw.timeout, '--timeout', 30) * 1000,
    missingTag: `gatehouse-verify-oci-missing-${randomBytes(4).toString('hex')}`,
  };
}
