import type { MigrationInterface, QueryRunner } from 'typeorm';
import { underTableLockTimeout } from './table-lock-timeout.js';

/** Two-factor authentication: authenticator secrets (encrypted), recovery codes (hashed), pending sign-ins. */
export class BackOfficeIdentityTwoFactor1732400000000 implements MigrationInterface {
  name = 'BackOfficeIdentityTwoFactor1732400000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await underTableLockTimeout(queryRunner, this.name, 'backoffice_user', () => this.statements(queryRunner));
  }

  /** The statements as shipped, run by {@link up} under the table lock timeout. */
  private async statements(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE backoffice_user_authenticator (
        user_id uuid NOT NULL REFERENCES backoffice_user(id) ON DELETE CASCADE,
        provider varchar(32) NOT NULL,
        encrypted_secret text NOT NULL,
        confirmed_at timestamptz NULL,
        last_used_step bigint NULL,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (user_id, provider)
      )`);
    await queryRunner.query(`
      CREATE TABLE backoffice_user_recovery_code (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES backoffice_user(id) ON DELETE CASCADE,
        code_hash char(64) NOT NULL,
        used_at timestamptz NULL,
        created_at timestamptz NOT NULL,
        CONSTRAINT uq_backoffice_user_recovery_code UNIQUE (user_id, code_hash)
      )`);
    await queryRunner.query(`
      CREATE TABLE backoffice_two_factor_challenge (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES backoffice_user(id) ON DELETE CASCADE,
        token_hash char(64) NOT NULL,
        security_stamp varchar(64) NOT NULL,
        expires_at timestamptz NOT NULL,
        used_at timestamptz NULL,
        created_at timestamptz NOT NULL,
        CONSTRAINT uq_backoffice_two_factor_challenge_token UNIQUE (token_hash)
      )`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_two_factor_challenge_user ON backoffice_two_factor_challenge (user_id)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE IF EXISTS backoffice_two_factor_challenge`);
    await queryRunner.query(`DROP TABLE IF EXISTS backoffice_user_recovery_code`);
    await queryRunner.query(`DROP TABLE IF EXISTS backoffice_user_authenticator`);
  }
}
