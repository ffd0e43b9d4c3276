import type { MigrationInterface, QueryRunner } from 'typeorm';
import { underTableLockTimeout } from './table-lock-timeout.js';

/**
 * `backoffice_user.directory_managed_at`: when a password checker that owns the passwords of the users it vouches
 * for (LDAP) first accepted the user's password. Such a user gets no password-reset link (forgot-password, an
 * admin's forced reset) and a link issued before is refused, so a user removed from the directory cannot set a
 * local password by email. A nullable column without a default: adding it does not rewrite the table. Users the
 * directory authenticated before this migration are marked at their next directory sign-in.
 */
export class BackOfficeIdentityDirectoryManaged1732590000000 implements MigrationInterface {
  name = 'BackOfficeIdentityDirectoryManaged1732590000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await underTableLockTimeout(queryRunner, this.name, 'backoffice_user', () => this.statements(queryRunner));
  }

  /** The statements as shipped, run by {@link up} under the table lock timeout. */
  private async statements(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_user ADD COLUMN directory_managed_at timestamptz`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_user DROP COLUMN IF EXISTS directory_managed_at`);
  }
}
