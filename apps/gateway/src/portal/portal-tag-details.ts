import { ImageArtifact, ImageSummary, platformName } from '@gatehouse/pull-through';
import { esc } from '../console/console-html';
import { cosignLines, humanSize } from './portal-view';

/** What the overview shows of one admitted tag (parts the upstream did not answer are null or empty). */
export interface TagDetails {
  digest: string | null;
  summary: ImageSummary | null;
  artifacts: ImageArtifact[];
}

export const block = (id: string, text: string) => `<pre id="${esc(id)}"><code>${esc(text)}</code></pre>`;

const KIND_LABEL: Record<ImageArtifact['kind'], string> = {
  signature: 'signature',
  attestation: 'attestation',
  sbom: 'SBOM',
  other: 'artifact',
};

/**
 * A tag's digest, its platforms with their sizes (config and layers), and its signatures,
 * attestations and SBOMs with the cosign lines to check them, as the HTML after the tag name.
 */
export function tagDetailsHtml(
  id: string,
  service: string,
  repository: string,
  d: TagDetails | undefined,
): string {
  if (!d?.digest) return '';
  let html = ` <code class="digest">${esc(d.digest)}</code>`;
  if (d.summary?.platforms.length)
    html += ` <span class="platforms">${d.summary.platforms
      .map(
        (p) => `<span class="platform"><code>${esc(platformName(p))}</code> ${esc(humanSize(p.size))}</span>`,
      )
      .join(', ')}</span>`;
  if (!d.artifacts.length) return html;
  html += `<ul class="artifacts">${d.artifacts
    .map(
      (a) =>
        `<li><span class="kind">${KIND_LABEL[a.kind]}</span> <code>${esc(a.digest)}</code>${
          a.predicateType ? ` (<code>${esc(a.predicateType)}</code>)` : ''
        }</li>`,
    )
    .join('')}</ul>`;
  html += cosignLines(service, repository, d.digest, d.artifacts)
    .map((line, j) => block(`${id}-cosign-${j}`, line))
    .join('');
  return html;
}
