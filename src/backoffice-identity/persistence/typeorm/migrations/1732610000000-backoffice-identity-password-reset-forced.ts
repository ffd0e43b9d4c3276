import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `backoffice_user.password_reset_forced_at`: when an admin's forced reset removed the user's password, until a new
 * one is set (null: no forced reset pending). A passkey does not sign such a user in meanwhile; a local hash that a
 * password checker retired (`retiresLocalPasswords`, LDAP) is no forced reset and leaves it null. A nullable column
 * without a default: adding it does not rewrite the table. Users who look reset-pending by the rule used before (no
 * password, a password change on record, not directory-managed) are marked, so a reset pending now stays pending.
 */
export class BackOfficeIdentityPasswordResetForced1732610000000 implements MigrationInterface {
  name = 'BackOfficeIdentityPasswordResetForced1732610000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_user ADD COLUMN password_reset_forced_at timestamptz`);
    await queryRunner.query(
      `UPDATE backoffice_user SET password_reset_forced_at = last_password_change_at
       WHERE password_hash IS NULL AND last_password_change_at IS NOT NULL AND directory_managed_at IS NULL`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_user DROP COLUMN IF EXISTS password_reset_forced_at`);
  }
}
