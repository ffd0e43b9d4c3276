import type { MigrationInterface, QueryRunner } from 'typeorm';
import { underTableLockTimeout } from './table-lock-timeout.js';

/** User lifecycle: why and until when a user is disabled, and the new address of a pending email change. */
export class BackOfficeIdentityUserLifecycle1732560000003 implements MigrationInterface {
  name = 'BackOfficeIdentityUserLifecycle1732560000003';

  async up(queryRunner: QueryRunner): Promise<void> {
    await underTableLockTimeout(queryRunner, this.name, 'backoffice_user, backoffice_user_token', () => this.statements(queryRunner));
  }

  /** The statements as shipped, run by {@link up} under the table lock timeout. */
  private async statements(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_user ADD COLUMN disabled_reason varchar(500) NULL, ADD COLUMN disabled_until timestamptz NULL`);
    await queryRunner.query(`ALTER TABLE backoffice_user_token ADD COLUMN new_email varchar(256) NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_user_token DROP COLUMN new_email`);
    await queryRunner.query(`ALTER TABLE backoffice_user DROP COLUMN disabled_until, DROP COLUMN disabled_reason`);
  }
}
