import type { MigrationInterface, QueryRunner } from 'typeorm';
import { underTableLockTimeout } from './table-lock-timeout.js';

/**
 * External logins (OpenID Connect): the users' provider logins (unique provider + key, one per provider and
 * user), the pending sign-ins between challenge and callback (single use, short-lived), and which provider a
 * session came through (with the encrypted ID token for RP-initiated logout).
 */
export class BackOfficeIdentityExternalLogins1732510000000 implements MigrationInterface {
  name = 'BackOfficeIdentityExternalLogins1732510000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await underTableLockTimeout(queryRunner, this.name, 'backoffice_user, backoffice_session, backoffice_two_factor_challenge', () => this.statements(queryRunner));
  }

  /** The statements as shipped, run by {@link up} under the table lock timeout. */
  private async statements(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE backoffice_user_login (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES backoffice_user(id) ON DELETE CASCADE,
        provider varchar(64) NOT NULL,
        provider_key varchar(512) NOT NULL,
        display_name varchar(256) NOT NULL,
        created_at timestamptz NOT NULL,
        CONSTRAINT uq_backoffice_user_login_provider_key UNIQUE (provider, provider_key),
        CONSTRAINT uq_backoffice_user_login_user_provider UNIQUE (user_id, provider)
      )`);
    await queryRunner.query(`
      CREATE TABLE backoffice_external_login_state (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        state_hash char(64) NOT NULL,
        browser_hash char(64) NOT NULL,
        provider varchar(64) NOT NULL,
        payload text NOT NULL,
        expires_at timestamptz NOT NULL,
        used_at timestamptz NULL,
        created_at timestamptz NOT NULL,
        CONSTRAINT uq_backoffice_external_login_state UNIQUE (state_hash)
      )`);
    await queryRunner.query(`
      CREATE TABLE backoffice_session_external_login (
        session_id uuid PRIMARY KEY REFERENCES backoffice_session(id) ON DELETE CASCADE,
        provider varchar(64) NOT NULL,
        encrypted_id_token text NULL
      )`);
    await queryRunner.query(`ALTER TABLE backoffice_two_factor_challenge ADD COLUMN external_login text NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE backoffice_two_factor_challenge DROP COLUMN IF EXISTS external_login`);
    await queryRunner.query(`DROP TABLE IF EXISTS backoffice_session_external_login`);
    await queryRunner.query(`DROP TABLE IF EXISTS backoffice_external_login_state`);
    await queryRunner.query(`DROP TABLE IF EXISTS backoffice_user_login`);
  }
}
