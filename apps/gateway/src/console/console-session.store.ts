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

export type StaffRole = 'admin' | 'support';

/** Who is signed in: a staff identity is (issuer, subject); `admin-token` is the bootstrap issuer. */
export interface StaffSession {
  issuer: string;
  subject: string;
  name: string;
  role: StaffRole;
  csrfToken: string;
}

export interface PendingLogin {
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** The issuer recorded for ADMIN_TOKEN sign-ins (not a URL, so it never collides with an IdP). */
export const ADMIN_TOKEN_ISSUER = 'gatehouse:admin-token';

/** How long a pending OpenID Connect sign-in waits for the provider (MFA prompts included). */
export const LOGIN_STATE_SECONDS = 15 * 60;

/**
 * Staff sessions and pending sign-ins in PostgreSQL, so every replica knows them and a restart
 * signs nobody out. Rows hold the SHA-256 of the cookie's secret, never the secret. A session
 * ends at its idle expiry (moved on by each request), its absolute expiry, or logout.
 */
@Injectable()
export class ConsoleSessionStore {
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

  /** A new session; returns the cookie value. */
  async create(who: Omit<StaffSession, 'csrfToken'>): Promise<string> {
    const id = newSessionSecret();
    const now = this.clock.now();
    await this.db.query(
      `INSERT INTO console_sessions
         (id_hash, issuer, subject, display_name, role, csrf_token, created_at, last_seen_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)`,
      [
        sessionSecretHash(id),
        who.issuer,
        who.subject,
        who.name,
        who.role,
        newSessionSecret(),
        new Date(now),
        new Date(now + this.maxMs),
      ],
    );
    return id;
  }

  /** The live session for a cookie value, its idle expiry moved on; null when unknown or expired. */
  async touch(id: string | undefined): Promise<StaffSession | null> {
    if (!id || id.length > MAX_SESSION_COOKIE_LENGTH) return null;
    const now = new Date(this.clock.now());
    const idleBound = new Date(now.getTime() - this.idleMs);
    const result: unknown = await this.db.query(
      `UPDATE console_sessions SET last_seen_at = $2
        WHERE id_hash = $1 AND expires_at > $2 AND last_seen_at > $3
        RETURNING issuer, subject, display_name, role, csrf_token`,
      [sessionSecretHash(id), now, idleBound],
    );
    const row = firstReturnedRow(result);
    if (!row) return null;
    return {
      issuer: row.issuer,
      subject: row.subject,
      name: row.display_name,
      role: row.role as StaffRole,
      csrfToken: row.csrf_token,
    };
  }

  async destroy(id: string | undefined): Promise<void> {
    if (id) await this.db.query(`DELETE FROM console_sessions WHERE id_hash = $1`, [sessionSecretHash(id)]);
  }

  /** Remembers a sign-in in flight; returns the cookie value that finds it again. */
  async beginLogin(login: PendingLogin): Promise<string> {
    const id = newSessionSecret();
    const now = this.clock.now();
    await this.db.query(`DELETE FROM console_logins WHERE expires_at < $1`, [new Date(now)]);
    await this.db.query(`DELETE FROM console_sessions WHERE expires_at < $1`, [new Date(now)]);
    await this.db.query(
      `INSERT INTO console_logins (id_hash, state, nonce, code_verifier, expires_at) VALUES ($1, $2, $3, $4, $5)`,
      [
        sessionSecretHash(id),
        login.state,
        login.nonce,
        login.codeVerifier,
        new Date(now + LOGIN_STATE_SECONDS * 1000),
      ],
    );
    return id;
  }

  /** The sign-in in flight for this cookie, consumed (one use); null when unknown or too old. */
  async takeLogin(id: string | undefined): Promise<PendingLogin | null> {
    if (!id || id.length > MAX_SESSION_COOKIE_LENGTH) return null;
    const result: unknown = await this.db.query(
      `DELETE FROM console_logins WHERE id_hash = $1 AND expires_at > $2 RETURNING state, nonce, code_verifier`,
      [sessionSecretHash(id), new Date(this.clock.now())],
    );
    const row = firstReturnedRow(result);
    return row ? { state: row.state, nonce: row.nonce, codeVerifier: row.code_verifier } : null;
  }
}
