import type { MigrationInterface, QueryRunner } from 'typeorm';
import { underTableLockTimeout } from './table-lock-timeout.js';

/**
 * Hardening (0.2):
 * - `backoffice_session.reauthenticated_at`: when the session's user last proved their password (sign-in or
 *   `POST /auth/reauthenticate`), for step-up re-authentication. Existing sessions get their creation time.
 * - `backoffice_login_attempt` keys on a keyed hash of the attempted username instead of its text. The old
 *   rows (short-lived failure counters, possibly holding passwords typed into the username field) are deleted.
 * - Recovery codes: the column holds the new `v2:` keyed hashes; every existing unsalted SHA-256 is wrapped
 *   in place as `legacy:` + SHA-256(user id + ':' + old hash), so no unsalted hash stays at rest while the
 *   codes users already printed keep working (once each).
 */
export class BackOfficeIdentityHardening1732500000000 implements MigrationInterface {
  name = 'BackOfficeIdentityHardening1732500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await underTableLockTimeout(queryRunner, this.name, 'backoffice_session, backoffice_login_attempt, backoffice_user_recovery_code', () => this.statements(queryRunner));
  }

  /** The statements as shipped, run by {@link up} under the table lock timeout. */
  private async statements(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_session ADD COLUMN reauthenticated_at timestamptz NULL`);
    await queryRunner.query(`UPDATE backoffice_session SET reauthenticated_at = created_at`);

    await queryRunner.query(`DELETE FROM backoffice_login_attempt`);
    await queryRunner.query(`ALTER TABLE backoffice_login_attempt RENAME COLUMN normalized_username TO username_hash`);
    await queryRunner.query(`ALTER TABLE backoffice_login_attempt ALTER COLUMN username_hash TYPE char(64)`);

    await queryRunner.query(`ALTER TABLE backoffice_user_recovery_code ALTER COLUMN code_hash TYPE varchar(80)`);
    await queryRunner.query(`
      UPDATE backoffice_user_recovery_code
      SET code_hash = 'legacy:' || encode(sha256(convert_to(user_id::text || ':' || code_hash, 'UTF8')), 'hex')
      WHERE code_hash NOT LIKE 'v2:%' AND code_hash NOT LIKE 'legacy:%'`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    // Keyed and wrapped hashes cannot be turned back: recovery codes and failure counters are dropped.
    await queryRunner.query(`DELETE FROM backoffice_user_recovery_code`);
    await queryRunner.query(`ALTER TABLE backoffice_user_recovery_code ALTER COLUMN code_hash TYPE char(64)`);
    await queryRunner.query(`DELETE FROM backoffice_login_attempt`);
    await queryRunner.query(`ALTER TABLE backoffice_login_attempt ALTER COLUMN username_hash TYPE varchar(256)`);
    await queryRunner.query(`ALTER TABLE backoffice_login_attempt RENAME COLUMN username_hash TO normalized_username`);
    await queryRunner.query(`ALTER TABLE backoffice_session DROP COLUMN reauthenticated_at`);
  }
}
