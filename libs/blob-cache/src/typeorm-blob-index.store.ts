import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { BlobIndexRow, BlobIndexStore } from './blob-index-store.interface';

interface CachedBlobRecord {
  digest: string;
  size_bytes: string | number;
  created_at: Date;
  last_accessed_at: Date;
  hit_count: string | number;
}

/**
 * BlobIndexStore over table `cached_blobs` (digest text PK, size_bytes bigint, created_at
 * timestamptz, last_accessed_at timestamptz, hit_count bigint), written with raw parameterised SQL
 * so the cache lib needs no entity class. Batches go through `unnest` so one statement carries any
 * number of rows with five parameters.
 */
@Injectable()
export class TypeormBlobIndexStore implements BlobIndexStore {
  constructor(private readonly dataSource: DataSource) {}

  async loadAll(): Promise<BlobIndexRow[]> {
    const records: CachedBlobRecord[] = await this.dataSource.query(
      'SELECT digest, size_bytes, created_at, last_accessed_at, hit_count FROM cached_blobs',
    );
    return records.map((r) => ({
      digest: r.digest,
      sizeBytes: Number(r.size_bytes),
      createdAt: new Date(r.created_at),
      lastAccessedAt: new Date(r.last_accessed_at),
      hitCount: Number(r.hit_count),
    }));
  }

  saveTouched(rows: BlobIndexRow[]): Promise<void> {
    return this.upsert(rows);
  }

  saveAdded(rows: BlobIndexRow[]): Promise<void> {
    return this.upsert(rows);
  }

  async delete(digests: string[]): Promise<void> {
    if (digests.length === 0) return;
    await this.dataSource.query('DELETE FROM cached_blobs WHERE digest = ANY($1::text[])', [digests]);
  }

  // created_at keeps its first value; access time never moves backwards if two writers race.
  private async upsert(rows: BlobIndexRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.dataSource.query(
      `INSERT INTO cached_blobs (digest, size_bytes, created_at, last_accessed_at, hit_count)
       SELECT * FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::timestamptz[], $5::bigint[])
       ON CONFLICT (digest) DO UPDATE SET
         size_bytes = EXCLUDED.size_bytes,
         last_accessed_at = GREATEST(cached_blobs.last_accessed_at, EXCLUDED.last_accessed_at),
         hit_count = GREATEST(cached_blobs.hit_count, EXCLUDED.hit_count)`,
      [
        rows.map((r) => r.digest),
        rows.map((r) => String(r.sizeBytes)),
        rows.map((r) => r.createdAt.toISOString()),
        rows.map((r) => r.lastAccessedAt.toISOString()),
        rows.map((r) => String(r.hitCount)),
      ],
    );
  }
}
