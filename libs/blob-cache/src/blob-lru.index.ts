import { BlobIndexRow } from './blob-index-store.interface';

export interface BlobIndexDirtySet {
  added: BlobIndexRow[];
  touched: BlobIndexRow[];
  deleted: string[];
}

/**
 * The in-memory cache index: digest → size and access statistics, in least-recently-used order
 * (a Map keeps insertion order, and a touch re-inserts at the end), plus which entries changed since
 * the last flush to the BlobIndexStore.
 */
export class BlobLruIndex {
  private readonly entries = new Map<string, BlobIndexRow>();
  private bytes = 0;
  private readonly added = new Set<string>();
  private readonly touched = new Set<string>();
  private readonly deleted = new Set<string>();

  get totalBytes(): number {
    return this.bytes;
  }

  get count(): number {
    return this.entries.size;
  }

  get(digest: string): BlobIndexRow | undefined {
    return this.entries.get(digest);
  }

  /** Inserts as most recently used. `persist: false` for entries that came from the store. */
  add(row: BlobIndexRow, persist = true): void {
    this.removeQuietly(row.digest);
    this.entries.set(row.digest, { ...row });
    this.bytes += row.sizeBytes;
    if (persist) {
      this.added.add(row.digest);
      this.touched.delete(row.digest);
      this.deleted.delete(row.digest);
    }
  }

  touch(digest: string, now: Date): void {
    const entry = this.entries.get(digest);
    if (!entry) return;
    this.entries.delete(digest);
    entry.lastAccessedAt = now;
    entry.hitCount++;
    this.entries.set(digest, entry);
    if (!this.added.has(digest)) this.touched.add(digest);
  }

  remove(digest: string): BlobIndexRow | undefined {
    const entry = this.removeQuietly(digest);
    if (entry) {
      this.added.delete(digest);
      this.touched.delete(digest);
      this.deleted.add(digest);
    }
    return entry;
  }

  /** Least recently used first. */
  lruOrder(): IterableIterator<BlobIndexRow> {
    return this.entries.values();
  }

  takeDirty(): BlobIndexDirtySet {
    const rows = (digests: Set<string>) =>
      [...digests].flatMap((d) => {
        const e = this.entries.get(d);
        return e ? [{ ...e }] : [];
      });
    const dirty = { added: rows(this.added), touched: rows(this.touched), deleted: [...this.deleted] };
    this.added.clear();
    this.touched.clear();
    this.deleted.clear();
    return dirty;
  }

  /** Puts back what a failed flush took, unless a newer change superseded it. */
  restoreDirty(dirty: BlobIndexDirtySet): void {
    for (const row of dirty.added)
      if (this.entries.has(row.digest) && !this.deleted.has(row.digest)) this.added.add(row.digest);
    for (const row of dirty.touched) {
      if (this.entries.has(row.digest) && !this.added.has(row.digest)) this.touched.add(row.digest);
    }
    for (const digest of dirty.deleted) if (!this.entries.has(digest)) this.deleted.add(digest);
  }

  private removeQuietly(digest: string): BlobIndexRow | undefined {
    const entry = this.entries.get(digest);
    if (entry) {
      this.entries.delete(digest);
      this.bytes -= entry.sizeBytes;
    }
    return entry;
  }
}
