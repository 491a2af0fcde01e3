import { BlobIndexRow, BlobIndexStore } from './blob-index-store.interface';

/** A BlobIndexStore kept in a Map, for tests and for running without a database. */
export class InMemoryBlobIndexStore implements BlobIndexStore {
  readonly rows = new Map<string, BlobIndexRow>();
  /** How many calls each method received; lets tests prove writes are batched. */
  readonly calls = { loadAll: 0, saveTouched: 0, saveAdded: 0, delete: 0 };

  constructor(initial: BlobIndexRow[] = []) {
    for (const row of initial) this.rows.set(row.digest, { ...row });
  }

  async loadAll(): Promise<BlobIndexRow[]> {
    this.calls.loadAll++;
    return [...this.rows.values()].map((r) => ({ ...r }));
  }

  async saveTouched(rows: BlobIndexRow[]): Promise<void> {
    this.calls.saveTouched++;
    this.upsert(rows);
  }

  async saveAdded(rows: BlobIndexRow[]): Promise<void> {
    this.calls.saveAdded++;
    this.upsert(rows);
  }

  async delete(digests: string[]): Promise<void> {
    this.calls.delete++;
    for (const d of digests) this.rows.delete(d);
  }

  private upsert(rows: BlobIndexRow[]): void {
    for (const row of rows) {
      const existing = this.rows.get(row.digest);
      this.rows.set(row.digest, { ...row, createdAt: existing?.createdAt ?? row.createdAt });
    }
  }
}
