import type { MigrationInterface, QueryRunner } from 'typeorm';
import { underTableLockTimeout } from './table-lock-timeout.js';

/**
 * `backoffice_user_token.hand_over_pending`: a link stored beside the live one (`addToken`, `addEmailChangeToken`)
 * whose email is still on its way, not handed over yet (`keepOnlyToken`). A hand-over voids the other live links but
 * these, so when two requests for one user's link meet, the link of the email the relay accepted last is the live one
 * (OWASP ASVS 4.0 2.5.x). Existing rows are handed over (false). A column with a constant default: PostgreSQL adds it
 * without rewriting the table; the ALTER waits for its lock at most `BACKOFFICE_MIGRATION_TABLE_LOCK_TIMEOUT_MS`
 * ({@link underTableLockTimeout}). Without it the store works as before (a hand-over voids links still being mailed).
 */
export class BackOfficeIdentityTokenHandOverPending1732640000000 implements MigrationInterface {
  name = 'BackOfficeIdentityTokenHandOverPending1732640000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await underTableLockTimeout(queryRunner, this.name, 'backoffice_user_token', () =>
      queryRunner.query(`ALTER TABLE backoffice_user_token ADD COLUMN hand_over_pending boolean NOT NULL DEFAULT false`),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_user_token DROP COLUMN IF EXISTS hand_over_pending`);
  }
}
