import type { MigrationInterface, QueryRunner } from 'typeorm';
import { underTableLockTimeout } from './table-lock-timeout.js';

/**
 * An index on `backoffice_passkey_challenge (user_id, purpose)`, only over the rows with a user: the per-user cap of
 * live challenges (`BACKOFFICE_PASSKEY_CHALLENGES_PER_USER`) finds a user's challenges of one ceremony on every
 * creation, which scanned the whole table, anonymous sign-in challenges included (the ones a flood fills). It serves
 * the cascade of a user's deletion too. Built without `CONCURRENTLY` (TypeORM runs migrations in a transaction): it
 * locks writes to the table, small and pruned at expiry, for the build, after waiting for the lock at most
 * `BACKOFFICE_MIGRATION_TABLE_LOCK_TIMEOUT_MS` ({@link underTableLockTimeout}).
 */
export class BackOfficeIdentityPasskeyChallengeUserIndex1732630000000 implements MigrationInterface {
  name = 'BackOfficeIdentityPasskeyChallengeUserIndex1732630000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await underTableLockTimeout(queryRunner, this.name, 'backoffice_passkey_challenge', () =>
      queryRunner.query(`CREATE INDEX ix_backoffice_passkey_challenge_user ON backoffice_passkey_challenge (user_id, purpose) WHERE user_id IS NOT NULL`),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX IF EXISTS ix_backoffice_passkey_challenge_user`);
  }
}
