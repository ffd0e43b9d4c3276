import { randomBytes } from 'node:crypto';
import type { BackOfficeUserManager } from '../backoffice-identity/index.js';
import type { DemoConfig } from './demo.config.js';

/** The first admin could not be created; the message lists the reasons. */
export class FirstAdminError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FirstAdminError';
  }
}

export type FirstAdminOutcome =
  | { created: false }
  | { created: true; email: string; generatedPassword?: string };

/** 18 random bytes = 144 bits, as 24 base64url characters. */
export function generateAdminPassword(): string {
  return randomBytes(18).toString('base64url');
}

/**
 * Contract section 2: when no user exists, creates one in group `admin` from `BACKOFFICE_ADMIN_EMAIL` and
 * `BACKOFFICE_ADMIN_PASSWORD`, or with a generated password when none is given.
 * @throws FirstAdminError with the IdentityResult error descriptions.
 */
export async function ensureFirstAdmin(
  userManager: BackOfficeUserManager,
  config: Pick<DemoConfig, 'adminEmail' | 'adminPassword'>,
): Promise<FirstAdminOutcome> {
  if ((await userManager.store.count()) > 0) return { created: false };
  const generatedPassword = config.adminPassword === undefined ? generateAdminPassword() : undefined;
  const result = await userManager.createUser({
    email: config.adminEmail,
    name: 'Administrator',
    password: config.adminPassword ?? generatedPassword,
    groups: ['admin'],
  });
  if (result.succeeded) return { created: true, email: config.adminEmail, generatedPassword };
  // Another instance starting on the same empty database may have created it a moment ago.
  if (result.errors.every((e) => e.code === 'duplicate_email' || e.code === 'duplicate_username')) return { created: false };
  const source = generatedPassword ? 'BACKOFFICE_ADMIN_EMAIL and a generated password' : 'BACKOFFICE_ADMIN_EMAIL and BACKOFFICE_ADMIN_PASSWORD';
  throw new FirstAdminError(
    `cannot create the first admin ${JSON.stringify(config.adminEmail)} from ${source}:\n` +
      result.errors.map((e) => `  - ${e.description}`).join('\n'),
  );
}
