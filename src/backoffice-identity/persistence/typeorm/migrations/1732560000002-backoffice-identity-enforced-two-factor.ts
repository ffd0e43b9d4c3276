import type { MigrationInterface, QueryRunner } from 'typeorm';
import { underTableLockTimeout } from './table-lock-timeout.js';

/**
 * Two-factor enforced per group: `require_two_factor` on groups (off for every existing group, so nothing
 * changes until an admin turns it on), the deadline of a member's grace period, and setup-only sessions.
 */
export class BackOfficeIdentityEnforcedTwoFactor1732560000002 implements MigrationInterface {
  name = 'BackOfficeIdentityEnforcedTwoFactor1732560000002';

  async up(queryRunner: QueryRunner): Promise<void> {
    await underTableLockTimeout(queryRunner, this.name, 'backoffice_group, backoffice_user, backoffice_session', () => this.statements(queryRunner));
  }

  /** The statements as shipped, run by {@link up} under the table lock timeout. */
  private async statements(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_group ADD COLUMN require_two_factor boolean NOT NULL DEFAULT false`);
    await queryRunner.query(`ALTER TABLE backoffice_user ADD COLUMN two_factor_setup_deadline timestamptz NULL`);
    await queryRunner.query(`ALTER TABLE backoffice_session ADD COLUMN two_factor_setup_only boolean NOT NULL DEFAULT false`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_session DROP COLUMN two_factor_setup_only`);
    await queryRunner.query(`ALTER TABLE backoffice_user DROP COLUMN two_factor_setup_deadline`);
    await queryRunner.query(`ALTER TABLE backoffice_group DROP COLUMN require_two_factor`);
  }
}
