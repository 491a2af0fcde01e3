import { createHash } from 'node:crypto';
import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { GatewayConfig } from '@gatehouse/config';
import { DATABASE_READY } from '@gatehouse/database';
import { AccessKeyHasher, SecretFileError } from '@gatehouse/members';
import { AppLogger } from '@gatehouse/observability';
import { TokenSigningKey } from './token-signing-key';

/** The SHA-256 of the signing key's public key (SPKI DER), hex. */
export function signingKeyFingerprint(key: TokenSigningKey): string {
  return createHash('sha256')
    .update(key.publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

/**
 * Replicas on one database must hold the same secrets: a token signed by one is verified by the
 * others, an access key hashed by one is looked up by the others. At start the gateway records
 * the fingerprints of its TOKEN_SIGNING_KEY_FILE and ACCESS_KEY_SECRET_FILE in
 * `secret_fingerprints` when none is recorded yet, and refuses to start, with one line naming the
 * variable and the fix, when one differs from the recorded one. The fingerprints reveal nothing
 * of the secrets (a public-key hash; an HMAC of a fixed text).
 *
 * Rotating a secret on purpose is: stop every replica, `DELETE FROM secret_fingerprints WHERE
 * secret = '<variable>'`, start them with the new file (see operations.md).
 */
@Injectable()
export class SecretFingerprintCheck implements OnModuleInit {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(DATABASE_READY) private readonly ready: Promise<boolean> | boolean,
    private readonly signingKey: TokenSigningKey,
    private readonly hasher: AccessKeyHasher,
    private readonly config: GatewayConfig,
    private readonly logger: AppLogger,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.ready;
    const accessKey = this.hasher.fingerprint();
    await this.compare(
      'TOKEN_SIGNING_KEY_FILE',
      this.config.auth.signingKeyFile,
      signingKeyFingerprint(this.signingKey),
    );
    if (accessKey !== null)
      await this.compare('ACCESS_KEY_SECRET_FILE', this.config.auth.accessKeySecretFile, accessKey);
  }

  private async compare(variable: string, file: string, fingerprint: string): Promise<void> {
    // The first replica records; the others (and later starts) compare. ON CONFLICT: two
    // replicas starting at once agree on whichever row landed first.
    const inserted = (await this.dataSource.query(
      `INSERT INTO secret_fingerprints (secret, fingerprint) VALUES ($1, $2) ON CONFLICT (secret) DO NOTHING RETURNING secret`,
      [variable, fingerprint],
    )) as unknown[];
    if (inserted.length > 0) {
      this.logger.info(
        { secret: variable },
        `recorded the fingerprint of ${variable} for the replicas to compare`,
      );
      return;
    }
    const rows = (await this.dataSource.query(
      `SELECT fingerprint FROM secret_fingerprints WHERE secret = $1`,
      [variable],
    )) as Array<{ fingerprint: string }>;
    if (rows[0]?.fingerprint === fingerprint) return;
    throw new SecretFileError(
      `${variable} ${file} differs from the secret the other replicas on this database use (fingerprint recorded in secret_fingerprints). Fix: give every replica the same ${variable} file; to rotate it on purpose, stop every replica and DELETE FROM secret_fingerprints WHERE secret = '${variable}'`,
    );
  }
}
