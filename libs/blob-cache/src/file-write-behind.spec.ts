import type { BlobFileHandle } from './blob-file-system.service';
import { FileWriteBehind } from './file-write-behind';

/** A file handle whose writes complete when the test says so, recording what they were given. */
function gatedHandle(options: { writev?: boolean } = {}) {
  const calls: Array<{ kind: 'write' | 'writev'; position: number; bytes: string }> = [];
  const gates: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  const file: Buffer[] = [];
  const record = (kind: 'write' | 'writev', buffers: Buffer[], position: number) => {
    calls.push({ kind, position, bytes: Buffer.concat(buffers).toString() });
    return new Promise<void>((resolve, reject) =>
      gates.push({
        resolve: () => {
          file.push(...buffers);
          resolve();
        },
        reject,
      }),
    );
  };
  const handle: BlobFileHandle = {
    read: async () => 0,
    write: (buffer, position) => record('write', [buffer], position),
    ...(options.writev === false
      ? {}
      : { writev: (buffers: Buffer[], position: number) => record('writev', buffers, position) }),
    close: async () => undefined,
  };
  return { handle, calls, gates, contents: () => Buffer.concat(file).toString() };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('FileWriteBehind', () => {
  it('writes in order, and what arrives during a write goes into the next one as one writev', async () => {
    const h = gatedHandle();
    const written: number[] = [];
    const writer = new FileWriteBehind(h.handle, { written: (n) => written.push(n), failed: fail });
    writer.push(Buffer.from('ab'));
    writer.push(Buffer.from('cd'));
    writer.push(Buffer.from('ef'));
    await tick();
    // The first chunk started a write alone; the two behind it wait, queued.
    expect(h.calls).toEqual([{ kind: 'write', position: 0, bytes: 'ab' }]);
    expect(writer.queuedBytes).toBe(4);
    h.gates[0].resolve();
    await tick();
    expect(h.calls[1]).toEqual({ kind: 'writev', position: 2, bytes: 'cdef' });
    h.gates[1].resolve();
    await writer.idle();
    expect(written).toEqual([2, 6]);
    expect(writer.written).toBe(6);
    expect(h.contents()).toBe('abcdef');
    // Idle, a new chunk starts a new write at the end.
    writer.push(Buffer.from('g'));
    await tick();
    h.gates[2].resolve();
    await writer.idle();
    expect(h.calls[2]).toEqual({ kind: 'write', position: 6, bytes: 'g' });
  });

  it('joins the batch into one buffer for a handle without writev', async () => {
    const h = gatedHandle({ writev: false });
    const writer = new FileWriteBehind(h.handle, { written: () => undefined, failed: fail });
    writer.push(Buffer.from('1'));
    writer.push(Buffer.from('2'));
    writer.push(Buffer.from('3'));
    await tick();
    h.gates[0].resolve();
    await tick();
    h.gates[1].resolve();
    await writer.idle();
    expect(h.calls.map((c) => [c.kind, c.bytes])).toEqual([
      ['write', '1'],
      ['write', '23'],
    ]);
  });

  it('reports a failed write once, drops what was queued and writes nothing more', async () => {
    const h = gatedHandle();
    const failures: unknown[] = [];
    const written: number[] = [];
    const writer = new FileWriteBehind(h.handle, {
      written: (n) => written.push(n),
      failed: (e) => failures.push(e),
    });
    writer.push(Buffer.from('ab'));
    writer.push(Buffer.from('cd'));
    await tick();
    h.gates[0].reject(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }));
    await writer.idle();
    writer.push(Buffer.from('ef'));
    await writer.idle();
    expect(failures).toEqual([expect.objectContaining({ code: 'ENOSPC' })]);
    expect(h.calls).toHaveLength(1);
    expect(written).toEqual([]);
    expect(writer.queuedBytes).toBe(0);
  });

  it('after stop, a running write ends unreported and nothing queued is written', async () => {
    const h = gatedHandle();
    const failures: unknown[] = [];
    const writer = new FileWriteBehind(h.handle, {
      written: () => undefined,
      failed: (e) => failures.push(e),
    });
    writer.push(Buffer.from('ab'));
    writer.push(Buffer.from('cd'));
    await tick();
    writer.stop();
    h.gates[0].reject(new Error('EIO'));
    await writer.idle();
    expect(failures).toEqual([]);
    expect(h.calls).toHaveLength(1);
  });
});

function fail(error: unknown): never {
  throw error;
}
