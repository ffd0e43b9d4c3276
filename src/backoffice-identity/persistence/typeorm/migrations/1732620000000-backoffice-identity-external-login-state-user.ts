import type { MigrationInterface, QueryRunner } from 'typeorm';
import { underTableLockTimeout } from './table-lock-timeout.js';

/**
 * `backoffice_external_login_state.user_id`: the signed-in user an OpenID Connect state belongs to (`POST
 * /auth/external/:name/link` and `/reauthenticate`; null for a sign-in, whose user is not known yet), so the store
 * keeps at most `BACKOFFICE_EXTERNAL_LOGIN_STATES_PER_USER` live states per user and provider (OWASP ASVS 4.0 11.1.4
 * / 5.0 2.4.1). Deleting the user deletes their states, as for passkey challenges. A nullable column without a
 * default: adding it does not rewrite the table, and the states stored before keep null (they expire within minutes).
 * The partial index (only the rows with a user) serves the cap's count and delete, and the cascade of a user's deletion.
 *
 * Locks: ACCESS EXCLUSIVE on `backoffice_external_login_state` and, for the foreign key, SHARE ROW EXCLUSIVE on
 * `backoffice_user`, each waited for at most `BACKOFFICE_MIGRATION_TABLE_LOCK_TIMEOUT_MS` ({@link underTableLockTimeout});
 * once granted, held for metadata changes and an index build over the (small, pruned) state table.
 */
export class BackOfficeIdentityExternalLoginStateUser1732620000000 implements MigrationInterface {
  name = 'BackOfficeIdentityExternalLoginStateUser1732620000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await underTableLockTimeout(queryRunner, this.name, 'backoffice_external_login_state, backoffice_user', async () => {
      await queryRunner.query(`ALTER TABLE backoffice_external_login_state ADD COLUMN user_id uuid NULL REFERENCES backoffice_user(id) ON DELETE CASCADE`);
      await queryRunner.query(`CREATE INDEX ix_backoffice_external_login_state_user ON backoffice_external_login_state (user_id, provider) WHERE user_id IS NOT NULL`);
    });
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX IF EXISTS ix_backoffice_external_login_state_user`);
    await queryRunner.query(`ALTER TABLE backoffice_external_login_state DROP COLUMN IF EXISTS user_id`);
  }
}
