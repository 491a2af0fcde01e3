import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Entitlements get a kind: `image` (every existing row), `releases` (a Forgejo repository's
 * release assets) or `packages` (a generic package's files). A member may hold an image and a
 * releases entitlement with the same owner/name, so the kind joins the unique key.
 */
export class EntitlementKinds1767571200000 implements MigrationInterface {
  name = 'EntitlementKinds1767571200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE entitlements ADD COLUMN kind text NOT NULL DEFAULT 'image' CHECK (kind IN ('image', 'releases', 'packages'))`,
    );
    await q.query(`ALTER TABLE entitlements DROP CONSTRAINT entitlements_member_id_repository_key`);
    await q.query(
      `ALTER TABLE entitlements ADD CONSTRAINT entitlements_member_id_kind_repository_key UNIQUE (member_id, kind, repository)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM entitlements WHERE kind <> 'image'`);
    await q.query(`ALTER TABLE entitlements DROP CONSTRAINT entitlements_member_id_kind_repository_key`);
    await q.query(
      `ALTER TABLE entitlements ADD CONSTRAINT entitlements_member_id_repository_key UNIQUE (member_id, repository)`,
    );
    await q.query(`ALTER TABLE entitlements DROP COLUMN kind`);
  }
}
