import type { MigrationInterface, QueryRunner } from 'typeorm';
import { underTableLockTimeout } from './table-lock-timeout.js';

/**
 * Indexes for the stores at scale (issue #17): the audit trail's keyset order `(created_at, id)` and its
 * per-user (both columns) and per-event filters, and the user list's order. The user list's text filter
 * reads a stored, lower-cased `search_text` (username, email, name); where the `pg_trgm` extension is
 * installed or can be created, a trigram index serves it, else it is a plain (cheap) `LIKE` scan.
 * Building the indexes locks writes to the table for the time of the build (seconds per million rows).
 */
export class BackOfficeIdentityAuditAndListIndexes1732570000000 implements MigrationInterface {
  name = 'BackOfficeIdentityAuditAndListIndexes1732570000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await underTableLockTimeout(queryRunner, this.name, 'backoffice_audit_entry, backoffice_user', () => this.statements(queryRunner));
  }

  /** The statements as shipped, run by {@link up} under the table lock timeout. */
  private async statements(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX IF EXISTS ix_backoffice_audit_entry_created`);
    await queryRunner.query(`DROP INDEX IF EXISTS ix_backoffice_audit_entry_affected`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_audit_entry_created ON backoffice_audit_entry (created_at, id)`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_audit_entry_affected ON backoffice_audit_entry (affected_user_id, created_at, id)`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_audit_entry_performing ON backoffice_audit_entry (performing_user_id, created_at, id)`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_audit_entry_event ON backoffice_audit_entry (event, created_at, id)`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_user_created ON backoffice_user (created_at DESC, id)`);
    await queryRunner.query(`
      ALTER TABLE backoffice_user ADD COLUMN search_text text
        GENERATED ALWAYS AS (lower(username || E'\\n' || email || E'\\n' || name)) STORED`);
    // Optional: a host without pg_trgm (or without the right to create it; PGlite) keeps the LIKE scan.
    await queryRunner.query(`
      DO $$ BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
      EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'pg_trgm is not available: the user filter scans search_text';
      END $$`);
    // The operator class is named with the extension's schema: pg_trgm may live in a schema (often public) that
    // is not on the host's search_path.
    await queryRunner.query(`
      DO $$ DECLARE trgm_schema name;
      BEGIN
        SELECT n.nspname INTO trgm_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
        IF trgm_schema IS NOT NULL THEN
          EXECUTE format('CREATE INDEX ix_backoffice_user_search ON backoffice_user USING gin (search_text %I.gin_trgm_ops)', trgm_schema);
        END IF;
      END $$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX IF EXISTS ix_backoffice_user_search`);
    await queryRunner.query(`ALTER TABLE backoffice_user DROP COLUMN IF EXISTS search_text`);
    await queryRunner.query(`DROP INDEX IF EXISTS ix_backoffice_user_created`);
    await queryRunner.query(`DROP INDEX IF EXISTS ix_backoffice_audit_entry_event`);
    await queryRunner.query(`DROP INDEX IF EXISTS ix_backoffice_audit_entry_performing`);
    await queryRunner.query(`DROP INDEX IF EXISTS ix_backoffice_audit_entry_affected`);
    await queryRunner.query(`DROP INDEX IF EXISTS ix_backoffice_audit_entry_created`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_audit_entry_created ON backoffice_audit_entry (created_at)`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_audit_entry_affected ON backoffice_audit_entry (affected_user_id, created_at)`);
  }
}
