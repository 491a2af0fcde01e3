import { createHash } from 'node:crypto';
import { buildTar, tarHeader, TAR_BLOCK } from './tar-writer';
import { gzipDeterministic, pseudoRandomStream } from './image-builder';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('tar writer', () => {
  const entries = [
    { type: 'dir' as const, name: 'app' },
    { type: 'file' as const, name: 'app/VERSION', content: '1.0.0\n' },
  ];

  it('gives the same bytes for the same entries', () => {
    expect(sha(buildTar(entries))).toBe(sha(buildTar(entries)));
    expect(sha(gzipDeterministic(buildTar(entries)))).toBe(sha(gzipDeterministic(buildTar(entries))));
  });

  it('lays out headers, padded content and the two-block trailer', () => {
    const tar = buildTar(entries);
    // dir header + file header + one content block + trailer
    expect(tar.length).toBe(TAR_BLOCK * 5);
    expect(tar.subarray(0, 4).toString()).toBe('app/');
    expect(tar.subarray(257, 263).toString('binary')).toBe('ustar\u0000');
    expect(tar.subarray(TAR_BLOCK * 2, TAR_BLOCK * 2 + 6).toString()).toBe('1.0.0\n');
    expect(tar.subarray(TAR_BLOCK * 3).every((b) => b === 0)).toBe(true);
  });

  it('writes a checksum that tar readers accept', () => {
    const header = tarHeader({ type: 'file', name: 'hello.txt', size: 3 });
    const stored = Number.parseInt(header.subarray(148, 154).toString('ascii'), 8);
    const copy = Buffer.from(header);
    copy.fill(0x20, 148, 156);
    expect(stored).toBe(copy.reduce((a, b) => a + b, 0));
    expect(header.subarray(124, 135).toString('ascii')).toBe('00000000003');
  });

  it('derives pseudo-random bytes from the seed only', () => {
    const a = pseudoRandomStream('seed-a');
    const b = pseudoRandomStream('seed-a');
    const c = pseudoRandomStream('seed-b');
    const first = a(1000);
    expect(first.equals(b(1000))).toBe(true);
    expect(first.equals(c(1000))).toBe(false);
    // incompressible: gzip cannot shrink it meaningfully
    expect(gzipDeterministic(a(100000)).length).toBeGreaterThan(99000);
  });
});
