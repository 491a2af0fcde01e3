import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { GatewayConfig } from '@gatehouse/config';
import { Clock } from '@gatehouse/observability';
import {
  firstReturnedRow,
  MAX_SESSION_COOKIE_LENGTH,
  newSessionSecret,
  sessionSecretHash,
} from '../http/session-secrets';

/** Who is signed in to the portal: one member, through one access key. */
export interface PortalSession {
  memberId: string;
  accessKeyId: string;
  csrfToken: string;
}

/**
 * Member sessions of the portal in PostgreSQL (every replica knows them; a restart signs nobody
 * out), with the console's lifetimes: an idle expiry moved on by each request and an absolute one.
 * Rows hold the SHA-256 of the cookie's secret, never the secret.
 */
@Injectable()
export class PortalSessionStore {
  private readonly idleMs: number;
  private readonly maxMs: number;

  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    config: GatewayConfig,
  ) {
    this.idleMs = config.console.sessionIdleSeconds * 1000;
    this.maxMs = config.console.sessionMaxSeconds * 1000;
  }

  /** A new session; returns the cookie value. Expired sessions are swept on the way. */
  async create(memberId: string, accessKeyId: string): Promise<string> {
    const id = newSessionSecret();
    const now = this.clock.now();
    await this.db.query(`DELETE FROM portal_sessions WHERE expires_at < $1`, [new Date(now)]);
    await this.db.query(
      `INSERT INTO portal_sessions (id_hash, member_id, access_key_id, csrf_token, created_at, last_seen_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $5, $6)`,
      [
        sessionSecretHash(id),
        memberId,
        accessKeyId,
        newSessionSecret(),
        new Date(now),
        new Date(now + this.maxMs),
      ],
    );
    return id;
  }

  /** The live session for a cookie value, its idle expiry moved on; null when unknown or expired. */
  async touch(id: string | undefined): Promise<PortalSession | null> {
    if (!id || id.length > MAX_SESSION_COOKIE_LENGTH) return null;
    const now = new Date(this.clock.now());
    const result: unknown = await this.db.query(
      `UPDATE portal_sessions SET last_seen_at = $2
        WHERE id_hash = $1 AND expires_at > $2 AND last_seen_at > $3
        RETURNING member_id, access_key_id, csrf_token`,
      [sessionSecretHash(id), now, new Date(now.getTime() - this.idleMs)],
    );
    const row = firstReturnedRow(result);
    return row
      ? { memberId: row.member_id, accessKeyId: row.access_key_id, csrfToken: row.csrf_token }
      : null;
  }

  async destroy(id: string | undefined): Promise<void> {
    if (id && id.length <= MAX_SESSION_COOKIE_LENGTH)
      await this.db.query(`DELETE FROM portal_sessions WHERE id_hash = $1`, [sessionSecretHash(id)]);
  }
}
