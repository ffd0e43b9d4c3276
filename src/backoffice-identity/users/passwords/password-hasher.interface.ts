/** Outcome of a hash check, as ASP.NET Identity's `PasswordVerificationResult`. */
export type PasswordVerificationResult = 'failed' | 'success' | 'successRehashNeeded';

/** Hashes and verifies passwords. Swap it through `BACKOFFICE_PASSWORD_HASHER`. */
export interface BackOfficePasswordHasher {
  hashPassword(password: string): Promise<string>;
  verifyHashedPassword(hashedPassword: string, providedPassword: string): Promise<PasswordVerificationResult>;
}
