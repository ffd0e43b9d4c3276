import type { IdentityError } from '../common/identity-result.js';
import type { BackOfficeUser } from './backoffice-user.js';

/** The fields a user validator sees (a new user has no id yet). */
export type BackOfficeUserCandidate = Pick<BackOfficeUser, 'username' | 'email' | 'name'> & { id?: string };

/** Validates a password; returns the errors (none when valid). */
export interface PasswordValidator {
  validate(password: string, user: BackOfficeUser | null): Promise<IdentityError[]> | IdentityError[];
}

/** Validates a user's fields; returns the errors (none when valid). */
export interface UserValidator {
  validate(user: BackOfficeUserCandidate): Promise<IdentityError[]> | IdentityError[];
}
