import type { MigrationInterface, QueryRunner } from 'typeorm';
import { underTableLockTimeout } from './table-lock-timeout.js';

/**
 * `backoffice_user.password_reset_forced_at`: when an admin's forced reset removed the user's password, until a new
 * one is set (null: no forced reset pending). A passkey does not sign such a user in meanwhile; a local hash that a
 * password checker retired (`retiresLocalPasswords`, LDAP) is no forced reset and leaves it null. A nullable column
 * without a default: adding it does not rewrite the table. Users who look reset-pending by the rule used before (no
 * password, a password change on record, not directory-managed) are marked, so a reset pending now stays pending.
 *
 * Locks (OWASP ASVS 5.0 15.x, availability): the ALTER takes ACCESS EXCLUSIVE on `backoffice_user` until the
 * transaction ends; it waits at most `BACKOFFICE_MIGRATION_TABLE_LOCK_TIMEOUT_MS` ({@link underTableLockTimeout}) and
 * then fails with nothing changed, instead of queueing every sign-in and session check behind a long transaction.
 * Once granted, the lock is held for one pass over the table that writes only the matching rows (the reset-pending
 * users, few): the column add itself is metadata-only. The backfill stays in the column's transaction on purpose:
 * committed apart (or in batches, each committed), the column would read NULL ("no forced reset") for pending users
 * until their batch ran, so a partial backfill would fail open (a passkey signing in a user whose reset an admin
 * forced), and TypeORM refuses a per-migration `transaction = false` under its default `migrationsTransactionMode`
 * (`all`). Batches inside one transaction would hold the lock just as long.
 */
export class BackOfficeIdentityPasswordResetForced1732610000000 implements MigrationInterface {
  name = 'BackOfficeIdentityPasswordResetForced1732610000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await underTableLockTimeout(queryRunner, this.name, 'backoffice_user', async () => {
      await queryRunner.query(`ALTER TABLE backoffice_user ADD COLUMN password_reset_forced_at timestamptz`);
      await queryRunner.query(
        `UPDATE backoffice_user SET password_reset_forced_at = last_password_change_at
         WHERE password_hash IS NULL AND last_password_change_at IS NOT NULL AND directory_managed_at IS NULL`,
      );
    });
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_user DROP COLUMN IF EXISTS password_reset_forced_at`);
  }
}
