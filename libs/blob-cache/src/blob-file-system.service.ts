import { Injectable } from '@nestjs/common';
import { constants as fsConstants } from 'node:fs';
import { FileHandle, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';

/** An open blob file. Reads and writes are positional so readers and the writer never share a cursor. */
export interface BlobFileHandle {
  /** Reads up to `length` bytes at `position`; returns how many were read (0 at end of file). */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** Writes the whole buffer at `position` or throws. */
  write(buffer: Buffer, position: number): Promise<void>;
  /** Writes the buffers one after the other from `position` (one system call when it can) or throws. */
  writev?(buffers: Buffer[], position: number): Promise<void>;
  /**
   * The descriptor, when it is a real file: a hash worker thread reads the bytes back through it
   * (BlobHashWorkerPool). Absent, the fill hashes on the event loop.
   */
  readonly fd?: number;
  close(): Promise<void>;
}

export interface BlobDirEntry {
  name: string;
  isFile: boolean;
  isDirectory: boolean;
}

export interface BlobFileStat {
  size: number;
  mtime: Date;
  isFile: boolean;
}

/**
 * Modes of what the cache creates, set explicitly so a permissive umask (000) cannot make cached
 * images readable by other users of the host: the gateway is their only reader.
 */
export const CACHE_DIR_MODE = 0o700;
export const CACHE_FILE_MODE = 0o600;

/**
 * The few file-system calls the blob cache makes. The cache never touches node:fs directly, so
 * tests can make the disk fail (ENOSPC, EACCES) even when they run as root.
 */
@Injectable()
export class BlobFileSystem {
  async mkdirp(path: string): Promise<void> {
    await mkdir(path, { recursive: true, mode: CACHE_DIR_MODE });
  }

  async readdir(path: string): Promise<BlobDirEntry[]> {
    const entries = await readdir(path, { withFileTypes: true });
    return entries.map((e) => ({ name: e.name, isFile: e.isFile(), isDirectory: e.isDirectory() }));
  }

  async stat(path: string): Promise<BlobFileStat> {
    const s = await stat(path);
    return { size: s.size, mtime: s.mtime, isFile: s.isFile() };
  }

  /** Creates a new file for reading and writing; fails if it exists. */
  async createExclusive(path: string): Promise<BlobFileHandle> {
    const flags = fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_EXCL;
    return new NodeBlobFileHandle(await open(path, flags, CACHE_FILE_MODE));
  }

  async openForRead(path: string): Promise<BlobFileHandle> {
    return new NodeBlobFileHandle(await open(path, 'r'));
  }

  async rename(from: string, to: string): Promise<void> {
    await rename(from, to);
  }

  async unlink(path: string): Promise<void> {
    await unlink(path);
  }

  /** Removes a file or a whole directory tree; a missing path is not an error. */
  async remove(path: string): Promise<void> {
    await rm(path, { recursive: true, force: true });
  }
}

class NodeBlobFileHandle implements BlobFileHandle {
  constructor(private readonly handle: FileHandle) {}

  get fd(): number {
    return this.handle.fd;
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    const { bytesRead } = await this.handle.read(buffer, offset, length, position);
    return bytesRead;
  }

  async write(buffer: Buffer, position: number): Promise<void> {
    let done = 0;
    while (done < buffer.length) {
      const { bytesWritten } = await this.handle.write(buffer, done, buffer.length - done, position + done);
      done += bytesWritten;
    }
  }

  async writev(buffers: Buffer[], position: number): Promise<void> {
    let rest = buffers;
    let at = position;
    while (rest.length > 0) {
      const { bytesWritten } = await this.handle.writev(rest, at);
      at += bytesWritten;
      // A short write (rare: a signal, a full quota): continue after what landed.
      let skip = bytesWritten;
      while (rest.length > 0 && skip >= rest[0].length) {
        skip -= rest[0].length;
        rest = rest.slice(1);
      }
      if (skip > 0) rest = [rest[0].subarray(skip), ...rest.slice(1)];
    }
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
