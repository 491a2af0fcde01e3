import bytes from 'bytes';

/** Parses `12345`, `500MB`, `20GB`, `1TiB` (binary and decimal units are both read as powers of 1024). */
export function parseByteSize(value: string): number | null {
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  if (!/^\d+(\.\d+)?\s*(b|kb|kib|mb|mib|gb|gib|tb|tib|pb|pib)$/i.test(v)) return null;
  const parsed = bytes.parse(v.replace(/ib$/i, 'b'));
  return typeof parsed === 'number' && Number.isFinite(parsed) && parsed >= 0 ? parsed : null;
}
