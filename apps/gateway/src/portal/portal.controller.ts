import { Controller, Get, Res, UseFilters, UseGuards } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { signedInRegistryAccess } from '@gatehouse/auth';
import { GatewayConfig } from '@gatehouse/config';
import { Entitlement, EntitlementService } from '@gatehouse/entitlements';
import { Clock } from '@gatehouse/observability';
import { OciError, parseArtifactTag } from '@gatehouse/oci';
import { ImageSummarySource, PullThroughService } from '@gatehouse/pull-through';
import { RegistryService } from '@gatehouse/registry';
import { esc, time } from '../console/console-html';
import { sendHtml } from '../console/console-http';
import { PortalErrorsFilter } from './portal-errors.filter';
import { portalLayout } from './portal-html';
import { PortalGuard, PortalPrincipal, Principal } from './portal.guard';
import { block, TagDetails, tagDetailsHtml } from './portal-tag-details';
import { daysUntil, expiringSoon, imagePullSecretYaml, pullableTags, pullCommands } from './portal-view';

/** Digests, platforms and signatures are read for the newest tags of a grant only. */
const DETAILS_SHOWN = 10;

/** How long until an expiry, in words, for a row of the page. */
function expiry(at: Date | null, now: Date): string {
  const days = daysUntil(at, now);
  if (days === null) return 'never expires';
  return `expires on ${time(at)} (in ${days} day${days === 1 ? '' : 's'})`;
}

/**
 * The member's own overview: the key they signed in with, and for each live image entitlement the
 * upstream tags the one matcher admits now, with the commands to pull them. Every read takes the
 * member from the session; nothing here takes a member, a repository or a tag from the URL.
 */
@Controller('portal')
@UseGuards(PortalGuard)
@UseFilters(PortalErrorsFilter)
export class PortalController {
  constructor(
    private readonly entitlements: EntitlementService,
    private readonly pull: PullThroughService,
    private readonly images: ImageSummarySource,
    private readonly registry: RegistryService,
    private readonly config: GatewayConfig,
    private readonly clock: Clock,
  ) {}

  @Get('overview')
  async overview(@Res() reply: FastifyReply, @Principal() who: PortalPrincipal): Promise<void> {
    const now = this.clock.date();
    const { member, accessKey } = who;
    const service = this.config.registry.service;
    const images = await this.entitlements.liveEntitlements(member.id, 'image');
    const soon = expiringSoon(
      [
        { what: 'Your access key', at: accessKey.expiresAt },
        ...images.map((e) => ({ what: `Your access to ${e.repository}`, at: e.expiresAt })),
      ],
      now,
      this.entitlements.expiryWarningDays,
    );
    let body = soon.length
      ? `<section class="warning" role="alert" aria-labelledby="expiring"><h2 id="expiring">Expiring soon</h2><ul>${soon
          .map((x) => `<li>${esc(x.what)} ${expiry(x.at, now)}.</li>`)
          .join('')}</ul><p>Ask your vendor to renew it before then.</p></section>`
      : '';
    body += `<section class="card" aria-labelledby="account"><h2 id="account">Your access key</h2>
<p>Signed in as <strong>${esc(member.username)}</strong> with the key
<code>${esc(accessKey.prefix)}…</code>${accessKey.name ? ` (${esc(accessKey.name)})` : ''}, which
<span class="key-expiry">${expiry(accessKey.expiresAt, now)}</span>.</p>
${block('login-command', pullCommands(service, member.username, 'x', 'x').login)}
</section>`;
    body += `<section aria-labelledby="pull"><h2 id="pull">What I may pull</h2>`;
    if (!images.length) body += `<p class="empty">No image is granted to you now.</p>`;
    for (const e of images) body += await this.imageCard(e, images, who, service, now);
    if (images.length)
      body += `<h3>Kubernetes imagePullSecret</h3>
<p>Put your access key where the placeholder is, then <code>kubectl apply -f</code> it.</p>
${block('pull-secret', imagePullSecretYaml(service, member.username))}`;
    body += `</section>`;
    sendHtml(reply, portalLayout('Your access', body, who));
  }

  /**
   * What the portal shows of one admitted tag: its digest (the pull-through's tag cache), its
   * platforms and sizes, and the signatures, attestations and SBOMs that refer to it (both read
   * through the pull path's own caches). A part the upstream does not answer now is left out.
   */
  private async tagDetails(repository: string, tag: string): Promise<TagDetails> {
    const digest = await this.pull.resolveTag(repository, tag).then(
      (r) => r?.digest ?? null,
      () => null,
    );
    if (!digest) return { digest: null, summary: null, artifacts: [] };
    const [summary, artifacts] = await Promise.all([
      this.images.summarize(repository, digest).catch(() => null),
      this.images.artifacts(repository, digest).catch(() => []),
    ]);
    return { digest, summary, artifacts };
  }

  /**
   * The grant's tags as the registry's own `tags/list` answers this member: RegistryService's
   * decision (the one matcher) and its audit row, the signed-in member as principal. A refusal
   * (the repository is not published upstream) is no tags; a failure is the error page.
   */
  private async admittedTags(e: Entitlement, all: Entitlement[], who: PortalPrincipal): Promise<string[]> {
    const { member, accessKey } = who;
    const access = signedInRegistryAccess(
      {
        memberId: member.id,
        username: member.username,
        accessKeyId: accessKey.id,
        accessKey: { prefix: accessKey.prefix, expiresAt: accessKey.expiresAt },
      },
      { kind: 'tags', name: e.repository },
      all,
      'portal',
    );
    try {
      const reply = await this.registry.handle(access, {
        method: 'GET',
        query: {},
        signal: new AbortController().signal,
      });
      return (reply.body as { tags: string[] }).tags;
    } catch (err) {
      if (err instanceof OciError && err.status < 500) return [];
      throw err;
    }
  }

  private async imageCard(
    e: Entitlement,
    all: Entitlement[],
    who: PortalPrincipal,
    service: string,
    now: Date,
  ): Promise<string> {
    const username = who.member.username;
    // Signatures and SBOMs (cosign's sha256-<hex>.sig tags) show under the tag they sign, not as tags.
    const tags = pullableTags(await this.admittedTags(e, all, who), (t) => !parseArtifactTag(t));
    const id = `image-${e.id}`;
    let html = `<article class="card image" id="${esc(id)}" data-repository="${esc(e.repository)}">
<h3><code>${esc(service)}/${esc(e.repository)}</code></h3>
<p>Tag rules: ${e.tagRules.map((r) => `<code>${esc(r)}</code>`).join(', ')}; this grant
<span class="grant-expiry">${expiry(e.expiresAt, now)}</span>.</p>`;
    if (!tags.length) return `${html}<p class="empty">No published tag matches your grant now.</p></article>`;
    const c = pullCommands(service, username, e.repository, tags[0]);
    // Bounded work per page: the newest tags only are resolved (each part cached by the pull path).
    const details = await Promise.all(
      tags.slice(0, DETAILS_SHOWN).map((t) => this.tagDetails(e.repository, t)),
    );
    html += `<ul class="tags">${tags
      .map(
        (t, i) =>
          `<li><code>${esc(t)}</code>${tagDetailsHtml(`${id}-tag-${i}`, service, e.repository, details[i])}</li>`,
      )
      .join('')}</ul>`;
    if (tags.length > DETAILS_SHOWN)
      html += `<p class="more">Digests, platforms and signatures are shown for the ${DETAILS_SHOWN} newest tags;
${tags.length - DETAILS_SHOWN} more match your grant.</p>`;
    html += `${block(`${id}-docker`, c.docker)}${block(`${id}-podman`, c.podman)}${block(`${id}-skopeo`, c.skopeo)}</article>`;
    return html;
  }
}
