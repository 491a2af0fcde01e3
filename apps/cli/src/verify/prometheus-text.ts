/**
 * The value of one sample in the Prometheus text format, e.g.
 * `gatehouse_blob_cache_requests_total{result="hit"}`. Labels match as a subset, in any order.
 * Returns null when no sample matches (prom-client prints a labelled series only once it moved).
 */
export function readPrometheusSample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | null {
  let total: number | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const sampleLabels = parseLabels(m[3] ?? '');
    if (!Object.entries(labels).every(([k, v]) => sampleLabels[k] === v)) continue;
    const value = Number(m[4]);
    if (Number.isFinite(value)) total = (total ?? 0) + value;
  }
  return total;
}

/** Whether the metric family is exposed at all (HELP/TYPE lines or samples). */
export function hasPrometheusFamily(text: string, name: string): boolean {
  return new RegExp(`^(# (HELP|TYPE) )?${name}[\\s{]`, 'm').test(text);
}

function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) out[m[1]] = m[2].replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
  return out;
}
