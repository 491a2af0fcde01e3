import { Injectable } from '@nestjs/common';
import type { UpstreamConfig } from '@gatehouse/config';
import type { Digest } from '@gatehouse/oci';
import { AppLogger, Clock, MetricsService } from '@gatehouse/observability';
import { CredentialOriginPolicy } from './credential-origin.policy';
import { RetryPolicy } from './retry.policy';
import { UpstreamAuthSession } from './upstream-auth.session';
import { UpstreamBlobFetcher } from './upstream-blob.fetcher';
import { UpstreamBodyReader } from './upstream-body.reader';
import { DownloadFetcherByKind } from './download-fetcher-by-kind';
import { GatehouseDownloadFetcher } from './gatehouse-download.fetcher';
import { DownloadFetcher, UpstreamDownloadFetcher } from './upstream-download.fetcher';
import { UpstreamFailureReporter } from './upstream-failure.reporter';
import { UpstreamKind, UpstreamKindState, UpstreamKindStatus } from './upstream-kind';
import { UpstreamMemberTag } from './upstream-member-tag';
import { UpstreamManifestFetcher } from './upstream-manifest.fetcher';
import { UpstreamReadinessProbe } from './upstream-readiness.probe';
import { UpstreamReferrersFetcher } from './upstream-referrers.fetcher';
import { UpstreamTagLister } from './upstream-tag.lister';
import { UpstreamTokenCache } from './upstream-token.cache';
import { UpstreamTransport } from './upstream-transport';
import {
  AccessCheckResult,
  UpstreamBlob,
  UpstreamBlobHead,
  UpstreamClientOptions,
  UpstreamManifest,
  UpstreamNotFound,
  UpstreamTagPage,
} from './upstream.types';

/**
 * The one client for the upstream registry (Forgejo, or any registry with Bearer-token or Basic
 * auth), using the single service credential FORGEJO_API_USERNAME / FORGEJO_API_TOKEN.
 *
 * A facade over the parts of one upstream conversation, each in its own file:
 * UpstreamTransport (pools, redirects, retries), UpstreamAuthSession (challenge discovery and
 * the authenticated request), UpstreamTokenCache (realm tokens), UpstreamBodyReader (bounded
 * bodies, not-found answers), UpstreamFailureReporter (every failure classified once, logged
 * once at error level with the cause and the fix, and counted in
 * gatehouse_upstream_failures_total{reason}), and the manifest, blob, tag, referrers and readiness
 * calls.
 */
@Injectable()
export class UpstreamRegistryClient {
  private readonly transport: UpstreamTransport;
  private readonly session: UpstreamAuthSession;
  private readonly manifests: UpstreamManifestFetcher;
  private readonly blobs: UpstreamBlobFetcher;
  private readonly tags: UpstreamTagLister;
  private readonly referrers: UpstreamReferrersFetcher;
  private readonly readiness: UpstreamReadinessProbe;
  /** Release assets and generic package files (per the upstream's kind, on the same transport). */
  readonly downloads: DownloadFetcher;
  private readonly kindState: UpstreamKindState;
  private readonly memberTag: UpstreamMemberTag;

  constructor(
    config: UpstreamConfig,
    logger: AppLogger,
    metrics: MetricsService,
    clock: Clock = new Clock(),
    options: UpstreamClientOptions = {},
  ) {
    const log = logger.child({ component: 'upstream' });
    const kind = new UpstreamKindState(config.kind, log);
    this.kindState = kind;
    const failures = new UpstreamFailureReporter(config, log, metrics, clock, () => kind.current);
    const retry = new RetryPolicy({
      retries: config.retries,
      baseDelayMs: options.retryBaseDelayMs,
      maxDelayMs: options.retryMaxDelayMs,
    });
    const maxListBytes = options.maxListBytes ?? 4 * 1024 * 1024;
    const baseUrl = config.baseUrl ? config.baseUrl.replace(/\/+$/, '') : null;
    const policy = baseUrl ? new CredentialOriginPolicy(baseUrl) : null;
    const body = new UpstreamBodyReader(failures, log);
    this.memberTag = new UpstreamMemberTag(config.sendMemberTag, () => kind.current);
    this.transport = new UpstreamTransport(
      config,
      baseUrl,
      policy,
      retry,
      failures,
      log,
      metrics,
      this.memberTag,
    );
    const tokens = new UpstreamTokenCache(
      config,
      policy,
      this.transport,
      body,
      failures,
      clock,
      log,
      metrics,
    );
    this.session = new UpstreamAuthSession(
      config,
      baseUrl,
      policy,
      this.transport,
      tokens,
      failures,
      log,
      kind,
    );
    this.manifests = new UpstreamManifestFetcher(this.session, body, failures, config.manifestDeadlineMs);
    this.blobs = new UpstreamBlobFetcher(this.session, body, failures);
    this.referrers = new UpstreamReferrersFetcher(this.session, body, failures);
    this.tags = new UpstreamTagLister(this.session, body, failures, policy, log, maxListBytes);
    this.downloads = new DownloadFetcherByKind(
      {
        gatehouse: new GatehouseDownloadFetcher(config, this.transport, body, failures),
        forgejo: new UpstreamDownloadFetcher(config, this.transport, body, failures),
      },
      () => this.resolveKind(),
    );
    this.readiness = new UpstreamReadinessProbe(this.session, body, failures, this.tags, maxListBytes);
  }

  get enabled(): boolean {
    return this.session.enabled;
  }

  /** The upstream's kind now: UPSTREAM_KIND, else the last detected one (Forgejo until one is seen). */
  get kind(): UpstreamKind {
    return this.kindState.current;
  }

  kindStatus(): UpstreamKindStatus {
    return this.kindState.status();
  }

  /**
   * The kind, asking the upstream first (the shared auth discovery) when it is neither configured
   * nor detected yet. A discovery that fails (already logged) leaves the assumed kind.
   */
  async resolveKind(): Promise<UpstreamKind> {
    if (!this.kindState.known && this.session.enabled) await this.session.discover().catch(() => undefined);
    return this.kindState.current;
  }

  /**
   * The key member tags are made with (UPSTREAM_SEND_MEMBER_TAG), derived from the access-key
   * secret by the composition root at start; without it no tag is sent.
   */
  useMemberTagKey(key: Buffer): void {
    this.memberTag.useKey(key);
  }

  /** Closes the keep-alive pools (module shutdown). */
  async close(): Promise<void> {
    await this.transport.close();
  }

  getManifest(
    name: string,
    reference: string,
    options: { method?: 'GET' | 'HEAD'; signal?: AbortSignal } = {},
  ): Promise<UpstreamManifest | UpstreamNotFound> {
    return this.manifests.getManifest(name, reference, options);
  }

  /** See UpstreamBlobFetcher.getBlob: verified (or length-checked) as it streams. */
  getBlob(
    name: string,
    digest: Digest,
    options: { range?: string; expectedSize?: number; signal?: AbortSignal; verifyDigest?: boolean } = {},
  ): Promise<(UpstreamBlob & { found: true }) | UpstreamNotFound> {
    return this.blobs.getBlob(name, digest, options);
  }

  headBlob(
    name: string,
    digest: Digest,
    options: { signal?: AbortSignal } = {},
  ): Promise<UpstreamBlobHead | UpstreamNotFound> {
    return this.blobs.headBlob(name, digest, options);
  }

  listTags(
    name: string,
    options: { n?: number; last?: string; signal?: AbortSignal } = {},
  ): Promise<UpstreamTagPage | UpstreamNotFound> {
    return this.tags.listTags(name, options);
  }

  /** Every tag, following `Link: rel="next"`. */
  listAllTags(
    name: string,
    options: { pageSize?: number; signal?: AbortSignal } = {},
  ): Promise<{ found: true; name: string; tags: string[] } | UpstreamNotFound> {
    return this.tags.listAllTags(name, options);
  }

  /**
   * The upstream's referrers API for a subject: the image index bytes, or `null` when the upstream
   * has none (Forgejo: 404 with an empty body; others 405 or 400).
   */
  listReferrers(
    name: string,
    digest: Digest,
    options: { signal?: AbortSignal } = {},
  ): Promise<Buffer | null> {
    return this.referrers.listReferrers(name, digest, options);
  }

  /** Every repository the upstream's `/v2/_catalog` lists to the service credentials (see UpstreamTagLister). */
  listCatalog(options: { signal?: AbortSignal } = {}): Promise<string[] | null> {
    return this.tags.listCatalog(options);
  }

  /** Readiness (see UpstreamReadinessProbe.checkAccess). */
  checkAccess(options: { probeRepository?: string; signal?: AbortSignal } = {}): Promise<AccessCheckResult> {
    return this.readiness.checkAccess(options);
  }
}
