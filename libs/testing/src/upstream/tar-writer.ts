/**
 * Minimal ustar writer. Every field that varies between machines (mtime, uid, gid, user and
 * group names) is fixed, so the same entries always give the same bytes and the same digest.
 */
export const TAR_BLOCK = 512;
export const TAR_MTIME = 1704067200; // 2024-01-01T00:00:00Z

export type TarEntry =
  | { type: 'dir'; name: string; mode?: number }
  | { type: 'file'; name: string; content: Buffer | string; mode?: number };

export interface TarHeaderFields {
  type: 'file' | 'dir';
  name: string;
  size: number;
  mode?: number;
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  // length-1 octal digits followed by NUL, as GNU tar and Go's archive/tar write them
  const text = value.toString(8).padStart(length - 1, '0');
  if (text.length > length - 1) throw new Error(`tar field overflow: ${value}`);
  block.write(text, offset, length - 1, 'ascii');
  block[offset + length - 1] = 0;
}

function writeString(block: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) throw new Error(`tar field too long: ${value}`);
  bytes.copy(block, offset);
}

export function tarHeader(fields: TarHeaderFields): Buffer {
  const block = Buffer.alloc(TAR_BLOCK);
  let name = fields.name.replace(/^\/+/, '');
  if (fields.type === 'dir' && !name.endsWith('/')) name += '/';
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', name.length - 2);
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
  }
  writeString(block, 0, 100, name);
  writeOctal(block, 100, 8, fields.mode ?? (fields.type === 'dir' ? 0o755 : 0o644));
  writeOctal(block, 108, 8, 0); // uid
  writeOctal(block, 116, 8, 0); // gid
  writeOctal(block, 124, 12, fields.type === 'dir' ? 0 : fields.size);
  writeOctal(block, 136, 12, TAR_MTIME);
  block.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  block.write(fields.type === 'dir' ? '5' : '0', 156, 1, 'ascii');
  block.write('ustar\u000000', 257, 8, 'binary');
  writeString(block, 265, 32, 'root');
  writeString(block, 297, 32, 'root');
  writeOctal(block, 329, 8, 0);
  writeOctal(block, 337, 8, 0);
  writeString(block, 345, 155, prefix);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 8, 'binary');
  return block;
}

export function tarPadding(size: number): Buffer {
  const rest = size % TAR_BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : TAR_BLOCK - rest);
}

/** Two zero blocks close an archive. */
export const TAR_TRAILER = Buffer.alloc(TAR_BLOCK * 2);

export function buildTar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    if (entry.type === 'dir') {
      parts.push(tarHeader({ type: 'dir', name: entry.name, size: 0, mode: entry.mode }));
      continue;
    }
    const content = typeof entry.content === 'string' ? Buffer.from(entry.content, 'utf8') : entry.content;
    parts.push(tarHeader({ type: 'file', name: entry.name, size: content.length, mode: entry.mode }));
    parts.push(content, tarPadding(content.length));
  }
  parts.push(TAR_TRAILER);
  return Buffer.concat(parts);
}
