import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobHashWorkerPool, createBlobHasher, InlineBlobHasher } from './blob-hasher';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('BlobHasher', () => {
  let dir: string;
  let pool: BlobHashWorkerPool;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gatehouse-hasher-'));
    pool = new BlobHashWorkerPool(1);
  });

  afterEach(async () => {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes `data` to a new file in `parts`, reporting each write to the job as a fill does. */
  async function writeFollowed(data: Buffer, parts: number, stopFileAt?: number) {
    const handle = await open(join(dir, 'blob'), 'w+');
    const job = pool.start(handle.fd);
    expect(job.followsFile).toBe(true);
    const step = Math.ceil(data.length / parts);
    for (let at = 0; at < data.length; at += step) {
      const chunk = data.subarray(at, Math.min(data.length, at + step));
      if (stopFileAt !== undefined && at >= stopFileAt) {
        job.push(chunk);
        continue;
      }
      await handle.write(chunk, 0, chunk.length, at);
      job.written(at + chunk.length);
    }
    const hex = await job.digest();
    await handle.close();
    return hex;
  }

  it('hashes the file as it is written, in a worker thread, to the same digest', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 12345);
    expect(await writeFollowed(data, 37)).toBe(sha256(data));
  });

  it('continues with pushed bytes once the file is given up (disk failure)', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 7);
    const step = Math.ceil(data.length / 10);
    expect(await writeFollowed(data, 10, 4 * step)).toBe(sha256(data));
  });

  it('hashes what is in the file, not what the caller meant to write', async () => {
    const data = randomBytes(1024 * 1024);
    const handle = await open(join(dir, 'blob'), 'w+');
    const job = pool.start(handle.fd);
    const altered = Buffer.from(data);
    altered[1000] ^= 0xff;
    await handle.write(altered, 0, altered.length, 0);
    job.written(altered.length);
    expect(await job.digest()).toBe(sha256(altered));
    await handle.close();
  });

  it('rejects when the file is shorter than reported', async () => {
    const handle = await open(join(dir, 'blob'), 'w+');
    const job = pool.start(handle.fd);
    await handle.write(Buffer.alloc(100), 0, 100, 0);
    job.written(200);
    await expect(job.digest()).rejects.toThrow(/ends at byte 100, before 200/);
    await handle.close();
  });

  it('fails the jobs of a worker that is gone; a closed pool hashes on the event loop', async () => {
    const handle = await open(join(dir, 'blob'), 'w+');
    const job = pool.start(handle.fd);
    await pool.close();
    await expect(job.digest()).rejects.toThrow(/hash worker thread/);
    // A closed pool hashes on the event loop.
    const after = pool.start(handle.fd);
    expect(after.followsFile).toBe(false);
    after.push(Buffer.from('abc'));
    expect(await after.digest()).toBe(sha256(Buffer.from('abc')));
    await handle.close();
  });

  it('hashes pushed bytes without a descriptor, and with 0 threads', async () => {
    const data = randomBytes(100_000);
    for (const job of [pool.start(undefined), createBlobHasher(0).start(7), new InlineBlobHasher().start()]) {
      expect(job.followsFile).toBe(false);
      job.push(data.subarray(0, 50_000));
      job.push(data.subarray(50_000));
      expect(await job.digest()).toBe(sha256(data));
    }
  });

  it('drop() ends a job so its descriptor may be closed', async () => {
    const handle = await open(join(dir, 'blob'), 'w+');
    const job = pool.start(handle.fd);
    await handle.write(Buffer.alloc(10), 0, 10, 0);
    job.written(10);
    await expect(job.drop()).resolves.toBeUndefined();
    await handle.close();
  });
});
