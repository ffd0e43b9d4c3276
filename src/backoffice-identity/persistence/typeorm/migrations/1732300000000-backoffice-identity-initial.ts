import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Initial schema: users, groups (seeded), tokens, login attempts, sessions, audit. */
export class BackOfficeIdentityInitial1732300000000 implements MigrationInterface {
  name = 'BackOfficeIdentityInitial1732300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE backoffice_user (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        username varchar(256) NOT NULL,
        normalized_username varchar(256) NOT NULL,
        email varchar(256) NOT NULL,
        normalized_email varchar(256) NOT NULL,
        name varchar(256) NOT NULL,
        password_hash text NULL,
        security_stamp varchar(64) NOT NULL,
        access_failed_count integer NOT NULL DEFAULT 0,
        lockout_enabled boolean NOT NULL DEFAULT true,
        lockout_end timestamptz NULL,
        is_approved boolean NOT NULL DEFAULT true,
        two_factor_enabled boolean NOT NULL DEFAULT false,
        phone_number varchar(64) NULL,
        phone_number_confirmed boolean NOT NULL DEFAULT false,
        invited_at timestamptz NULL,
        last_login_at timestamptz NULL,
        last_password_change_at timestamptz NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT uq_backoffice_user_normalized_username UNIQUE (normalized_username),
        CONSTRAINT uq_backoffice_user_normalized_email UNIQUE (normalized_email),
        CONSTRAINT ck_backoffice_user_access_failed_count CHECK (access_failed_count >= 0)
      )`);
    await queryRunner.query(`
      CREATE TABLE backoffice_group (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        alias varchar(64) NOT NULL,
        name varchar(256) NOT NULL,
        CONSTRAINT uq_backoffice_group_alias UNIQUE (alias)
      )`);
    await queryRunner.query(`
      CREATE TABLE backoffice_user_group (
        user_id uuid NOT NULL REFERENCES backoffice_user(id) ON DELETE CASCADE,
        group_id uuid NOT NULL REFERENCES backoffice_group(id) ON DELETE CASCADE,
        PRIMARY KEY (user_id, group_id)
      )`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_user_group_group ON backoffice_user_group (group_id)`);
    await queryRunner.query(`
      INSERT INTO backoffice_group (alias, name) VALUES
        ('admin', 'Administrators'), ('editor', 'Editors'), ('writer', 'Writers'),
        ('translator', 'Translators'), ('sensitiveData', 'Sensitive data')`);
    await queryRunner.query(`
      CREATE TABLE backoffice_user_token (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES backoffice_user(id) ON DELETE CASCADE,
        purpose varchar(32) NOT NULL,
        token_hash char(64) NOT NULL,
        expires_at timestamptz NOT NULL,
        used_at timestamptz NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT uq_backoffice_user_token_hash UNIQUE (token_hash)
      )`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_user_token_user_purpose ON backoffice_user_token (user_id, purpose)`);
    await queryRunner.query(`
      CREATE TABLE backoffice_login_attempt (
        normalized_username varchar(256) PRIMARY KEY,
        access_failed_count integer NOT NULL DEFAULT 0,
        lockout_end timestamptz NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(`
      CREATE TABLE backoffice_session (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES backoffice_user(id) ON DELETE CASCADE,
        token_hash char(64) NOT NULL,
        security_stamp varchar(64) NOT NULL,
        created_at timestamptz NOT NULL,
        last_seen_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz NULL,
        ip varchar(64) NULL,
        user_agent varchar(512) NULL,
        CONSTRAINT uq_backoffice_session_token_hash UNIQUE (token_hash)
      )`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_session_user ON backoffice_session (user_id)`);
    await queryRunner.query(`
      CREATE TABLE backoffice_audit_entry (
        id bigserial PRIMARY KEY,
        event varchar(128) NOT NULL,
        performing_user_id uuid NULL,
        affected_user_id uuid NULL,
        ip_address varchar(64) NULL,
        created_at timestamptz NOT NULL,
        details jsonb NOT NULL DEFAULT '{}'
      )`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_audit_entry_created ON backoffice_audit_entry (created_at)`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_audit_entry_affected ON backoffice_audit_entry (affected_user_id, created_at)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of ['backoffice_audit_entry', 'backoffice_session', 'backoffice_login_attempt', 'backoffice_user_token', 'backoffice_user_group', 'backoffice_group', 'backoffice_user']) {
      await queryRunner.query(`DROP TABLE IF EXISTS ${table}`);
    }
  }
}
