import type { AppLogger } from '@gatehouse/observability';

/** What FORGEJO_BASE_URL is: Forgejo (its APIs and scoped token) or another Gatehouse. */
export type UpstreamKind = 'forgejo' | 'gatehouse';

/** The header a Gatehouse answers on `/v2/` and `/downloads/` (Forgejo sends none). */
export const GATEHOUSE_API_VERSION_HEADER = 'Gatehouse-Api-Version';
/** Its value: the version of the surfaces another Gatehouse may rely on. */
export const GATEHOUSE_API_VERSION = '1';

export interface UpstreamKindStatus {
  kind: UpstreamKind;
  /** `configured`: UPSTREAM_KIND; `detected`: from the upstream's answer; `assumed`: not yet known. */
  source: 'configured' | 'detected' | 'assumed';
}

/**
 * The upstream's kind: UPSTREAM_KIND when set (it always wins), else detected from the answer to
 * the anonymous `GET /v2/` the auth discovery sends at start and on every readiness check (a
 * `Gatehouse-Api-Version` header means another Gatehouse). Until an answer is seen the kind is
 * assumed to be Forgejo. A detection that differs from the last one is logged once.
 */
export class UpstreamKindState {
  private detected: UpstreamKind | null = null;

  constructor(
    private readonly configured: UpstreamKind | null,
    private readonly log: AppLogger,
  ) {}

  get current(): UpstreamKind {
    return this.configured ?? this.detected ?? 'forgejo';
  }

  /** Whether the kind is configured or was detected (else a caller may ask the upstream first). */
  get known(): boolean {
    return this.configured !== null || this.detected !== null;
  }

  status(): UpstreamKindStatus {
    const source = this.configured ? 'configured' : this.detected ? 'detected' : 'assumed';
    return { kind: this.current, source };
  }

  /** Learns the kind from the headers of the upstream's answer to `GET /v2/` (a registry's 200 or 401). */
  observe(headers: Record<string, string | string[] | undefined>): void {
    if (this.configured) return;
    const kind = kindOfAnswer(headers);
    if (kind === this.detected) return;
    const before = this.detected;
    this.detected = kind;
    this.log.info(
      { upstreamKind: kind, ...(before ? { previousUpstreamKind: before } : {}) },
      kind === 'gatehouse'
        ? 'The upstream is another Gatehouse (it answers Gatehouse-Api-Version): downloads use its /downloads/ routes ' +
            'with FORGEJO_API_USERNAME and its access key. Set UPSTREAM_KIND to fix the kind.'
        : 'The upstream is Forgejo (no Gatehouse-Api-Version answer): downloads use its release and package APIs. ' +
            'Set UPSTREAM_KIND to fix the kind.',
    );
  }
}

/** `gatehouse` when the answer carries the Gatehouse API version header, else `forgejo`. */
export function kindOfAnswer(headers: Record<string, string | string[] | undefined>): UpstreamKind {
  const value = headers[GATEHOUSE_API_VERSION_HEADER.toLowerCase()];
  const text = Array.isArray(value) ? value[0] : value;
  return typeof text === 'string' && /^\d+$/.test(text.trim()) ? 'gatehouse' : 'forgejo';
}
