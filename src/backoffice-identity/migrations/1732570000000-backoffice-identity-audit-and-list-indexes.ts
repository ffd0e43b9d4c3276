import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Indexes for the stores at scale (issue #17): the audit trail's keyset order `(created_at, id)` and its
 * per-user (both columns) and per-event filters, and the user list's order. Building them locks writes to
 * the table for the time of the build (seconds per million rows); run it in a quiet moment on large trails.
 */
export class BackOfficeIdentityAuditAndListIndexes1732570000000 implements MigrationInterface {
  name = 'BackOfficeIdentityAuditAndListIndexes1732570000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX IF EXISTS ix_backoffice_audit_entry_created`);
    await queryRunner.query(`DROP INDEX IF EXISTS ix_backoffice_audit_entry_affected`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_audit_entry_created ON backoffice_audit_entry (created_at, id)`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_audit_entry_affected ON backoffice_audit_entry (affected_user_id, created_at, id)`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_audit_entry_performing ON backoffice_audit_entry (performing_user_id, created_at, id)`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_audit_entry_event ON backoffice_audit_entry (event, created_at, id)`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_user_created ON backoffice_user (created_at DESC, id)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX IF EXISTS ix_backoffice_user_created`);
    await queryRunner.query(`DROP INDEX IF EXISTS ix_backoffice_audit_entry_event`);
    await queryRunner.query(`DROP INDEX IF EXISTS ix_backoffice_audit_entry_performing`);
    await queryRunner.query(`DROP INDEX IF EXISTS ix_backoffice_audit_entry_affected`);
    await queryRunner.query(`DROP INDEX IF EXISTS ix_backoffice_audit_entry_created`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_audit_entry_created ON backoffice_audit_entry (created_at)`);
    await queryRunner.query(`CREATE INDEX ix_backoffice_audit_entry_affected ON backoffice_audit_entry (affected_user_id, created_at)`);
  }
}
