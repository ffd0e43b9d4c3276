import type { MigrationInterface, QueryRunner } from 'typeorm';
import { underTableLockTimeout } from './table-lock-timeout.js';

/**
 * `backoffice_session.next_security_stamps` replaces `next_security_stamp`: a session announces one stamp per
 * account change in flight (two or three changes sent at once from one session each announce their own), not one
 * that the next announcement overwrote, which answered the session's requests 401 from the write of the overwritten
 * stamp until its adoption (OWASP ASVS 4.0 3.3.3). A nullable column without a default: adding it does not rewrite
 * the table; an announcement of a live session is carried over.
 */
export class BackOfficeIdentitySessionNextStamps1732600000000 implements MigrationInterface {
  name = 'BackOfficeIdentitySessionNextStamps1732600000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await underTableLockTimeout(queryRunner, this.name, 'backoffice_session', () => this.statements(queryRunner));
  }

  /** The statements as shipped, run by {@link up} under the table lock timeout. */
  private async statements(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_session ADD COLUMN next_security_stamps varchar(64)[]`);
    await queryRunner.query(
      `UPDATE backoffice_session SET next_security_stamps = ARRAY[next_security_stamp] WHERE next_security_stamp IS NOT NULL AND revoked_at IS NULL`,
    );
    await queryRunner.query(`ALTER TABLE backoffice_session DROP COLUMN next_security_stamp`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_session ADD COLUMN next_security_stamp varchar(64)`);
    await queryRunner.query(
      `UPDATE backoffice_session SET next_security_stamp = next_security_stamps[cardinality(next_security_stamps)] WHERE cardinality(next_security_stamps) > 0`,
    );
    await queryRunner.query(`ALTER TABLE backoffice_session DROP COLUMN IF EXISTS next_security_stamps`);
  }
}
