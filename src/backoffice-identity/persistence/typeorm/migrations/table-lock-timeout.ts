import type { QueryRunner } from 'typeorm';
import { BACKOFFICE_MIGRATION_TABLE_LOCK_TIMEOUT_MS } from '../../../constants.js';

/** PostgreSQL's `lock_not_available`: `lock_timeout` ran out. */
const LOCK_NOT_AVAILABLE = '55P03';

/**
 * Runs a migration's statements with `lock_timeout` at {@link BACKOFFICE_MIGRATION_TABLE_LOCK_TIMEOUT_MS}, in one
 * transaction: the one the migrations run in (TypeORM's `migrationsTransactionMode` `all` or `each`), or one of its
 * own (`none`), so a failure leaves nothing half done. Behind a transaction holding one of the tables, a statement
 * that needs a stronger lock (`ALTER TABLE`: ACCESS EXCLUSIVE) waits in the lock queue, and every sign-in and session
 * check asking for the table queues behind it; it now gives up after the timeout, with an error naming the tables,
 * and the migration can run again (the deploy's retry) once that transaction ended. The setting is local to the
 * transaction and put back as it was after the statements, so the host's migrations run after these in one
 * transaction (`all`) keep their own.
 */
export async function underTableLockTimeout(queryRunner: QueryRunner, migration: string, tables: string, statements: () => Promise<void>): Promise<void> {
  const ownTransaction = !queryRunner.isTransactionActive;
  if (ownTransaction) await queryRunner.startTransaction();
  try {
    const [{ previous }]: Array<{ previous: string }> = await queryRunner.query(`SELECT current_setting('lock_timeout') AS previous`);
    await queryRunner.query(`SELECT set_config('lock_timeout', $1, true)`, [`${BACKOFFICE_MIGRATION_TABLE_LOCK_TIMEOUT_MS}ms`]);
    await statements();
    await queryRunner.query(`SELECT set_config('lock_timeout', $1, true)`, [previous]);
    if (ownTransaction) await queryRunner.commitTransaction();
  } catch (error) {
    if (ownTransaction) await queryRunner.rollbackTransaction().catch(() => undefined);
    if ((error as { code?: unknown }).code !== LOCK_NOT_AVAILABLE) throw error;
    throw new Error(
      `Migration ${migration} gave up waiting for a lock on ${tables} after ${BACKOFFICE_MIGRATION_TABLE_LOCK_TIMEOUT_MS} ms ` +
        `(lock_timeout, BACKOFFICE_MIGRATION_TABLE_LOCK_TIMEOUT_MS) rather than queue the back office's traffic behind it: ` +
        `another transaction holds the table (see pg_stat_activity). Nothing was changed; run the migrations again once it ended.`,
      { cause: error },
    );
  }
}
