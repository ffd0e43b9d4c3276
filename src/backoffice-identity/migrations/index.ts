import { BackOfficeIdentityInitial1732300000000 } from './1732300000000-backoffice-identity-initial.js';

/** Every migration of the module, oldest first: spread them into your DataSource's `migrations`. */
export const backOfficeIdentityMigrations = [BackOfficeIdentityInitial1732300000000];
