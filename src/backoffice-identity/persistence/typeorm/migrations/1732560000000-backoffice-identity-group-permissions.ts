import type { MigrationInterface, QueryRunner } from 'typeorm';
import { underTableLockTimeout } from './table-lock-timeout.js';

/**
 * Permissions on groups. Keeps today's behaviour: `admin` gets every built-in permission (it holds every
 * permission in code anyway), the other seeded groups get none, exactly as before when only `admin` passed the
 * module's admin routes.
 */
export class BackOfficeIdentityGroupPermissions1732560000000 implements MigrationInterface {
  name = 'BackOfficeIdentityGroupPermissions1732560000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await underTableLockTimeout(queryRunner, this.name, 'backoffice_group', () => this.statements(queryRunner));
  }

  /** The statements as shipped, run by {@link up} under the table lock timeout. */
  private async statements(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE backoffice_group
        ADD COLUMN permissions text[] NOT NULL DEFAULT '{}',
        ADD COLUMN created_at timestamptz NOT NULL DEFAULT now(),
        ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now()`);
    await queryRunner.query(`
      UPDATE backoffice_group
         SET permissions = ARRAY['users.read', 'users.manage', 'users.invite', 'groups.manage', 'audit.read', 'sessions.manage']
       WHERE alias = 'admin'`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_group DROP COLUMN updated_at, DROP COLUMN created_at, DROP COLUMN permissions`);
  }
}
