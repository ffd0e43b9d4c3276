import type { MigrationInterface, QueryRunner } from 'typeorm';
import { underTableLockTimeout } from './table-lock-timeout.js';

/**
 * `backoffice_session.next_security_stamp`: the stamp an account change made in a session (password change,
 * two-factor on or off, unlinking a login) is about to give the user. The session is announced under it before the
 * user's row changes and adopts it after, so the session's own requests in flight are never signed out in between.
 * A nullable column without a default: adding it does not rewrite the table.
 */
export class BackOfficeIdentitySessionNextStamp1732580000000 implements MigrationInterface {
  name = 'BackOfficeIdentitySessionNextStamp1732580000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await underTableLockTimeout(queryRunner, this.name, 'backoffice_session', () => this.statements(queryRunner));
  }

  /** The statements as shipped, run by {@link up} under the table lock timeout. */
  private async statements(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_session ADD COLUMN next_security_stamp varchar(64)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_session DROP COLUMN IF EXISTS next_security_stamp`);
  }
}
