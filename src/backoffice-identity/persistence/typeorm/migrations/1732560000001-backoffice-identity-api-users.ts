import type { MigrationInterface, QueryRunner } from 'typeorm';
import { underTableLockTimeout } from './table-lock-timeout.js';

/**
 * API users (machines): a `kind` on users (`person` for every existing row), client credentials (secrets as
 * SHA-256 of 256-bit random values, the previous one kept during a rotation's overlap) with a failed-secret
 * counter, and short-lived opaque bearer tokens stored as SHA-256.
 */
export class BackOfficeIdentityApiUsers1732560000001 implements MigrationInterface {
  name = 'BackOfficeIdentityApiUsers1732560000001';

  async up(queryRunner: QueryRunner): Promise<void> {
    await underTableLockTimeout(queryRunner, this.name, 'backoffice_user', () => this.statements(queryRunner));
  }

  /** The statements as shipped, run by {@link up} under the table lock timeout. */
  private async statements(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_user ADD COLUMN kind varchar(16) NOT NULL DEFAULT 'person'`);
    await queryRunner.query(`ALTER TABLE backoffice_user ADD CONSTRAINT ck_backoffice_user_kind CHECK (kind IN ('person', 'api'))`);
    await queryRunner.query(`
      CREATE TABLE backoffice_api_client (
        user_id uuid PRIMARY KEY REFERENCES backoffice_user(id) ON DELETE CASCADE,
        client_id varchar(64) NOT NULL,
        secret_hash char(64) NOT NULL,
        previous_secret_hash char(64) NULL,
        previous_secret_expires_at timestamptz NULL,
        access_failed_count integer NOT NULL DEFAULT 0,
        lockout_end timestamptz NULL,
        created_at timestamptz NOT NULL,
        rotated_at timestamptz NULL,
        CONSTRAINT uq_backoffice_api_client_client_id UNIQUE (client_id),
        CONSTRAINT ck_backoffice_api_client_failed CHECK (access_failed_count >= 0)
      )`);
    await queryRunner.query(`
      CREATE TABLE backoffice_access_token (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES backoffice_user(id) ON DELETE CASCADE,
        token_hash char(64) NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz NULL,
        CONSTRAINT uq_backoffice_access_token_hash UNIQUE (token_hash)
      )`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_access_token_user ON backoffice_access_token (user_id)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE IF EXISTS backoffice_access_token`);
    await queryRunner.query(`DROP TABLE IF EXISTS backoffice_api_client`);
    await queryRunner.query(`ALTER TABLE backoffice_user DROP CONSTRAINT IF EXISTS ck_backoffice_user_kind`);
    await queryRunner.query(`ALTER TABLE backoffice_user DROP COLUMN IF EXISTS kind`);
  }
}
