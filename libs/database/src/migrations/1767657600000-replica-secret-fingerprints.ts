import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The fingerprints of the secrets every replica must share, recorded by the first gateway that
 * starts on the database: the SHA-256 of the token signing key's public key and an HMAC of a
 * fixed text under the access-key secret (neither reveals the secret). A replica whose secrets
 * differ refuses to start, so a token or an access key from one replica is never refused by
 * another. One row per secret, keyed by its environment variable.
 */
export class ReplicaSecretFingerprints1767657600000 implements MigrationInterface {
  name = 'ReplicaSecretFingerprints1767657600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE secret_fingerprints (
      secret text PRIMARY KEY,
      fingerprint text NOT NULL,
      recorded_at timestamptz NOT NULL DEFAULT now()
    )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE secret_fingerprints`);
  }
}
