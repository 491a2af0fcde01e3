import { computeDigest, Descriptor, digestAlgorithm, parseManifest } from '@gatehouse/oci';
import { hasPrometheusFamily, readPrometheusSample } from './prometheus-text';
import { describeErrorResponse } from './oci-envelope';
import { fail, formatBytes, pass, RowResult, shortDigest, skip } from './verify-result';
import { PulledImage, VerifySession } from './verify-session';

export const PULL_ROW = 'entitled pull';
export const CACHE_ROW = 'cache hit';
const NEEDS_LOGIN = 'needs a login (see the login row)';
const HIT_METRIC = 'gatehouse_blob_cache_requests_total';

/** A mismatch or refusal while pulling, already worded as evidence. */
class PullError extends Error {}

/**
 * index → every child manifest → every config and layer blob, as a client pulls them, with each
 * digest recomputed from the bytes received and each size compared with its descriptor.
 */
export async function checkEntitledPull(s: VerifySession): Promise<RowResult> {
  if (!s.state.loggedIn) return skip(PULL_ROW, NEEDS_LOGIN);
  const { repository, tag } = s.options;
  try {
    const token = await s.token([`repository:${repository}:pull`]);
    const blobs = new Map<string, Descriptor>();
    const children: string[] = [];
    const top = await fetchManifest(s, token, tag);
    const walk = async (body: Buffer, contentType: string, depth: number): Promise<void> => {
      const parsed = parseManifest(body, contentType);
      for (const b of parsed.blobs) blobs.set(b.digest, b);
      if (depth > 1 && parsed.isIndex)
        throw new PullError('an index nested in an index: not a pullable image');
      for (const child of parsed.manifests) {
        const got = await fetchManifest(s, token, child.digest, child);
        children.push(child.digest);
        await walk(got.body, got.contentType, depth + 1);
      }
    };
    await walk(top.body, top.contentType, 0);
    const bytes = await pullBlobs(s, token, [...blobs.values()]);
    const pulled: PulledImage = {
      digest: top.digest,
      mediaType: top.contentType,
      manifests: children,
      blobs: [...blobs.values()],
      bytes,
    };
    s.state.pull = pulled;
    const kind =
      children.length > 0
        ? `index ${shortDigest(top.digest)} → ${children.length} manifests`
        : `manifest ${shortDigest(top.digest)}`;
    return pass(
      PULL_ROW,
      `${repository}:${tag}: ${kind} → ${blobs.size} blobs (${formatBytes(bytes)}); every digest and size verified from the bytes`,
    );
  } catch (e) {
    return fail(PULL_ROW, `${repository}:${tag}: ${(e as Error).message}`);
  }
}

async function fetchManifest(
  s: VerifySession,
  token: string,
  reference: string,
  expected?: Descriptor,
): Promise<{ body: Buffer; contentType: string; digest: string }> {
  const path = `${s.options.repository}/manifests/${reference}`;
  const reply = await s.http.text(s.v2(path), s.manifestRequest(token));
  if (reply.status !== 200)
    throw new PullError(`GET /v2/${path} → ${describeErrorResponse(reply.status, reply.body)}`);
  const header = reply.headers.get('docker-content-digest');
  const algorithm = digestAlgorithm(expected?.digest ?? header ?? 'sha256:');
  const actual = computeDigest(reply.bytes, algorithm);
  if (!header) throw new PullError(`GET /v2/${path} → 200 without Docker-Content-Digest`);
  if (header !== actual)
    throw new PullError(`GET /v2/${path}: Docker-Content-Digest ${header} but the body hashes to ${actual}`);
  if (expected && actual !== expected.digest)
    throw new PullError(`GET /v2/${path}: body hashes to ${actual}, not the digest asked for`);
  if (expected && expected.size >= 0 && expected.size !== reply.bytes.length)
    throw new PullError(`GET /v2/${path}: ${reply.bytes.length} bytes, the index says ${expected.size}`);
  return { body: reply.bytes, contentType: reply.headers.get('content-type') ?? '', digest: actual };
}

/** Streams every blob through a hash; returns the bytes received. */
async function pullBlobs(s: VerifySession, token: string, blobs: Descriptor[]): Promise<number> {
  let total = 0;
  for (const blob of blobs) {
    const path = `${s.options.repository}/blobs/${blob.digest}`;
    const got = await s.http.hashed(s.v2(path), digestAlgorithm(blob.digest), {
      headers: { authorization: `Bearer ${token}` },
    });
    if (got.status !== 200)
      throw new PullError(`GET /v2/${path} → ${describeErrorResponse(got.status, got.body)}`);
    if (blob.size >= 0 && got.size !== blob.size)
      throw new PullError(`GET /v2/${path}: ${got.size} bytes, the manifest says ${blob.size}`);
    if (got.digest !== blob.digest) throw new PullError(`GET /v2/${path}: the bytes hash to ${got.digest}`);
    total += got.size;
  }
  return total;
}

/**
 * Pulls the blobs a second time and reads the gateway's own counter of cache hits before and
 * after: every blob of the second pull must count as a hit.
 */
export async function checkCacheHit(s: VerifySession): Promise<RowResult> {
  const pulled = s.state.pull;
  if (!pulled) return skip(CACHE_ROW, 'needs the entitled pull (see its row)');
  const explicit = s.options.metricsUrl !== null;
  const metricsUrl = s.options.metricsUrl ?? new URL('/metrics', s.options.url);

  const readHits = async (): Promise<{ hits: number } | { problem: string }> => {
    let reply;
    try {
      reply = await s.http.text(metricsUrl);
    } catch (e) {
      return { problem: (e as Error).message };
    }
    if (reply.status !== 200) return { problem: `GET ${metricsUrl.href} → ${reply.status}` };
    if (!hasPrometheusFamily(reply.body, HIT_METRIC))
      return { problem: `${metricsUrl.href} has no ${HIT_METRIC}: not a Gatehouse metrics endpoint` };
    return { hits: readPrometheusSample(reply.body, HIT_METRIC, { result: 'hit' }) ?? 0 };
  };

  const before = await readHits();
  if ('problem' in before) {
    return explicit
      ? fail(CACHE_ROW, before.problem)
      : skip(
          CACHE_ROW,
          `${before.problem}; pass --metrics-url (VERIFY_OCI_METRICS_URL) where /metrics is published`,
        );
  }
  const token = await s.token([`repository:${s.options.repository}:pull`]);
  try {
    await pullBlobs(s, token, pulled.blobs);
  } catch (e) {
    return fail(CACHE_ROW, `second pull: ${(e as Error).message}`);
  }
  const after = await readHits();
  if ('problem' in after) return fail(CACHE_ROW, `after the second pull: ${after.problem}`);
  const delta = after.hits - before.hits;
  const evidence = `${HIT_METRIC}{result="hit"} ${before.hits} → ${after.hits} (+${delta}) for a second pull of ${pulled.blobs.length} blobs`;
  if (delta >= pulled.blobs.length) return pass(CACHE_ROW, evidence);
  return fail(
    CACHE_ROW,
    `${evidence}: not every blob was a hit (several replicas behind the URL? point --metrics-url at the one that served)`,
  );
}
