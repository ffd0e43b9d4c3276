/**
 * A write needs a column or table that one of the module's migrations adds, and the database lacks it (the host runs
 * the migrations after the deploy, or ran a migration's `down`). Code `migration_required`; over HTTP a 503 without
 * detail: the migration is named in the server log, not in the answer.
 */
export class BackOfficeMigrationRequiredError extends Error {
  readonly code = 'migration_required' as const;

  constructor(
    /** The migration's name, e.g. `BackOfficeIdentityExternalLoginStateUser1732620000000`. */
    readonly migration: string,
    /** What is missing, e.g. `backoffice_external_login_state.user_id`. */
    readonly missing: string,
    options?: { cause?: unknown },
  ) {
    super(`${missing} does not exist: migration ${migration} of the module is not applied yet.`, options);
    this.name = 'BackOfficeMigrationRequiredError';
  }
}
