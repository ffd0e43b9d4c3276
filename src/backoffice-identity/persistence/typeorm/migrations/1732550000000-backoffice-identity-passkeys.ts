import type { MigrationInterface, QueryRunner } from 'typeorm';
import { underTableLockTimeout } from './table-lock-timeout.js';

/** Passkeys (WebAuthn credentials) and the server-side, single-use challenges of their ceremonies. */
export class BackOfficeIdentityPasskeys1732550000000 implements MigrationInterface {
  name = 'BackOfficeIdentityPasskeys1732550000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await underTableLockTimeout(queryRunner, this.name, 'backoffice_user, backoffice_two_factor_challenge', () => this.statements(queryRunner));
  }

  /** The statements as shipped, run by {@link up} under the table lock timeout. */
  private async statements(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE backoffice_user_passkey (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES backoffice_user(id) ON DELETE CASCADE,
        credential_id varchar(1400) NOT NULL,
        public_key bytea NOT NULL,
        counter bigint NOT NULL DEFAULT 0,
        transports varchar(32)[] NOT NULL DEFAULT '{}',
        name varchar(64) NOT NULL,
        device_type varchar(16) NOT NULL,
        backed_up boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL,
        last_used_at timestamptz NULL,
        CONSTRAINT uq_backoffice_user_passkey_credential UNIQUE (credential_id)
      )`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_user_passkey_user ON backoffice_user_passkey (user_id)`);
    await queryRunner.query(`
      CREATE TABLE backoffice_passkey_challenge (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        challenge_hash char(64) NOT NULL,
        purpose varchar(16) NOT NULL,
        user_id uuid NULL REFERENCES backoffice_user(id) ON DELETE CASCADE,
        expires_at timestamptz NOT NULL,
        used_at timestamptz NULL,
        created_at timestamptz NOT NULL,
        CONSTRAINT uq_backoffice_passkey_challenge_hash UNIQUE (challenge_hash),
        CONSTRAINT ck_backoffice_passkey_challenge_purpose CHECK (purpose IN ('registration', 'authentication', 'second_factor', 'reauthentication'))
      )`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_passkey_challenge_expires ON backoffice_passkey_challenge (expires_at)`);
    // How a pending two-factor sign-in passed its first step: a passkey cannot then also be its second factor.
    await queryRunner.query(`ALTER TABLE backoffice_two_factor_challenge ADD COLUMN first_factor varchar(16) NOT NULL DEFAULT 'password'`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_two_factor_challenge DROP COLUMN IF EXISTS first_factor`);
    await queryRunner.query(`DROP TABLE IF EXISTS backoffice_passkey_challenge`);
    await queryRunner.query(`DROP TABLE IF EXISTS backoffice_user_passkey`);
  }
}
