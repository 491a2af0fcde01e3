/**
 * What the portal shows, as pure functions of what the services answered: the tags a member may
 * pull (decided by the one matcher, passed in), their order, and the commands to copy.
 */

const COLLATOR = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/**
 * The tags `admits` keeps, newest first: "newest" is version order (numeric runs compared as
 * numbers), because push times would cost one manifest and config read per tag.
 */
export function pullableTags(upstreamTags: readonly string[], admits: (tag: string) => boolean): string[] {
  return upstreamTags.filter(admits).sort((a, b) => COLLATOR.compare(b, a) || (a < b ? 1 : a > b ? -1 : 0));
}

/** Shell-safe single-quoted text (usernames and tags are validated, but the page never trusts that). */
export function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

export interface PullCommands {
  login: string;
  docker: string;
  podman: string;
  skopeo: string;
}

/** The commands for one image tag; the key is read from standard input, never printed. */
export function pullCommands(
  service: string,
  username: string,
  repository: string,
  tag: string,
): PullCommands {
  const ref = `${service}/${repository}:${tag}`;
  return {
    login: `docker login ${shellQuote(service)} -u ${shellQuote(username)} --password-stdin`,
    docker: `docker pull ${shellQuote(ref)}`,
    podman: `podman pull ${shellQuote(ref)}`,
    skopeo: `skopeo inspect --creds ${shellQuote(`${username}:`)}"$GATEHOUSE_KEY" ${shellQuote(`docker://${ref}`)}`,
  };
}

/**
 * A Kubernetes Secret of type dockerconfigjson for this member, with a placeholder where the key
 * goes (the portal never shows a key again): `stringData` lets the cluster encode it.
 */
export function imagePullSecretYaml(
  service: string,
  username: string,
  secretName = 'gatehouse-pull',
): string {
  const config = JSON.stringify({
    auths: { [service]: { username, password: '<YOUR-ACCESS-KEY>' } },
  });
  return [
    'apiVersion: v1',
    'kind: Secret',
    'metadata:',
    `  name: ${secretName}`,
    'type: kubernetes.io/dockerconfigjson',
    'stringData:',
    `  .dockerconfigjson: '${config.replace(/'/g, "''")}'`,
    '',
  ].join('\n');
}

/** Days from `now` until `at`, rounded up; null when there is no expiry. */
export function daysUntil(at: Date | null, now: Date): number | null {
  if (!at) return null;
  return Math.ceil((at.getTime() - now.getTime()) / 86_400_000);
}

/** The items whose expiry falls within `days` of `now` (0 days: none), soonest first. */
export function expiringSoon<T extends { at: Date | null }>(
  items: readonly T[],
  now: Date,
  days: number,
): T[] {
  return items
    .filter((i) => {
      const left = daysUntil(i.at, now);
      return left !== null && days > 0 && left > 0 && i.at!.getTime() - now.getTime() <= days * 86_400_000;
    })
    .sort((a, b) => a.at!.getTime() - b.at!.getTime());
}

/** `1.2 MB`-style sizes (decimal units, as download pages show them). */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let n = bytes;
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

/** A resumable download that prompts for the key (`-u user:`), on the /downloads/ route. */
export function curlLine(username: string, url: string): string {
  return `curl -fL -u ${shellQuote(`${username}:`)} -O -C - ${shellQuote(url)}`;
}

/** The same download with wget: it asks for the key (`--ask-password`) and resumes (`-c`). */
export function wgetLine(username: string, url: string): string {
  return `wget --user ${shellQuote(username)} --ask-password -c ${shellQuote(url)}`;
}

/**
 * The cosign line for each kind of referrer a digest has (after `docker login`, cosign reads the
 * same credentials): `verify` for a signature, `verify-attestation` for an attestation (with its
 * predicate type when the layer names one, an SBOM attestation too), `download sbom` for an SBOM
 * attached as such. `cosign.pub` is the vendor's public key.
 */
export function cosignLines(
  service: string,
  repository: string,
  digest: string,
  artifacts: ReadonlyArray<{ kind: string; predicateType: string | null }>,
): string[] {
  const ref = shellQuote(`${service}/${repository}@${digest}`);
  const lines = new Set<string>();
  for (const a of artifacts) {
    if (a.kind === 'signature') lines.add(`cosign verify --key cosign.pub ${ref}`);
    else if (a.kind === 'attestation' || (a.kind === 'sbom' && a.predicateType)) {
      const type = a.predicateType ? ` --type ${shellQuote(a.predicateType)}` : '';
      lines.add(`cosign verify-attestation --key cosign.pub${type} ${ref}`);
    } else if (a.kind === 'sbom') lines.add(`cosign download sbom ${ref}`);
  }
  return [...lines];
}
