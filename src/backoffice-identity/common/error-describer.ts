import { Injectable } from '@nestjs/common';
import type { IdentityError } from './identity-result.js';

/**
 * Produces every {@link IdentityError}. Override a method to change a description (e.g. to translate it);
 * codes are stable and part of the API.
 */
@Injectable()
export class BackOfficeErrorDescriber {
  passwordTooShort(length: number): IdentityError {
    return { code: 'password_too_short', description: `Passwords must be at least ${length} characters.` };
  }
  passwordTooLong(length: number): IdentityError {
    return { code: 'password_too_long', description: `Passwords must be at most ${length} characters.` };
  }
  passwordRequiresDigit(): IdentityError {
    return { code: 'password_requires_digit', description: "Passwords must have at least one digit ('0'-'9')." };
  }
  passwordRequiresLower(): IdentityError {
    return { code: 'password_requires_lower', description: "Passwords must have at least one lowercase letter ('a'-'z')." };
  }
  passwordRequiresUpper(): IdentityError {
    return { code: 'password_requires_upper', description: "Passwords must have at least one uppercase letter ('A'-'Z')." };
  }
  passwordRequiresNonAlphanumeric(): IdentityError {
    return { code: 'password_requires_non_alphanumeric', description: 'Passwords must have at least one character that is not a letter or digit.' };
  }
  passwordTooCommon(): IdentityError {
    return { code: 'password_too_common', description: 'This password is in a list of commonly used or breached passwords; choose another.' };
  }
  passwordInvalidCharacters(): IdentityError {
    return { code: 'password_invalid', description: 'Passwords must be a string without control characters.' };
  }
  passwordMismatch(): IdentityError {
    return { code: 'password_mismatch', description: 'Incorrect password.' };
  }
  userAlreadyHasPassword(): IdentityError {
    return { code: 'user_already_has_password', description: 'User already has a password set.' };
  }
  lockedOut(): IdentityError {
    return { code: 'locked_out', description: 'The account is locked after too many failed attempts.' };
  }
  invalidToken(): IdentityError {
    return { code: 'invalid_token', description: 'The token is invalid, expired or already used.' };
  }
  invalidEmail(): IdentityError {
    return { code: 'invalid_email', description: 'The email address is not valid.' };
  }
  duplicateEmail(): IdentityError {
    return { code: 'duplicate_email', description: 'This email address is already taken.' };
  }
  invalidUserName(): IdentityError {
    return { code: 'invalid_username', description: 'The username is empty, too long, or has invalid characters.' };
  }
  duplicateUserName(): IdentityError {
    return { code: 'duplicate_username', description: 'This username is already taken.' };
  }
  invalidName(): IdentityError {
    return { code: 'invalid_name', description: 'The name must be 1 to 256 characters without control characters.' };
  }
  unknownGroup(alias: string): IdentityError {
    return { code: 'unknown_group', description: `There is no user group "${alias.slice(0, 64)}".` };
  }
  userLockoutNotEnabled(): IdentityError {
    return { code: 'user_lockout_not_enabled', description: 'Lockout is not enabled for this user.' };
  }
  notFound(what: string): IdentityError {
    return { code: 'not_found', description: `No such ${what}.` };
  }
  duplicatePasskey(): IdentityError {
    return { code: 'passkey_already_registered', description: 'This passkey is registered already.' };
  }
  tooManyPasskeys(max: number): IdentityError {
    return { code: 'too_many_passkeys', description: `An account can have at most ${max} passkeys; remove one first.` };
  }
  passwordResetRequired(): IdentityError {
    return { code: 'password_reset_required', description: 'An admin forced a password reset: set a new password with the emailed link first.' };
  }
  invalidPasskeyName(): IdentityError {
    return { code: 'invalid_passkey_name', description: 'Name the passkey with 1 to 64 characters.' };
  }
  notSupported(capability: string): IdentityError {
    return { code: 'not_supported', description: `The user store does not support ${capability}.` };
  }
  lastAdmin(): IdentityError {
    return { code: 'last_admin', description: 'The last enabled administrator cannot be disabled or removed from the admin group.' };
  }
  importRecordInvalid(): IdentityError {
    return { code: 'invalid_record', description: 'Each imported user must be a JSON object.' };
  }
  importUnknownField(field: string): IdentityError {
    return { code: 'unknown_field', description: `Imported users have no field "${field.slice(0, 64)}".` };
  }
  importInvalidGroups(max: number): IdentityError {
    return { code: 'invalid_groups', description: `groups must be a list of at most ${max} group aliases.` };
  }
  importInvalidApproval(): IdentityError {
    return { code: 'invalid_is_approved', description: 'isApproved must be true or false.' };
  }
  importInvalidCreatedAt(): IdentityError {
    return { code: 'invalid_created_at', description: 'createdAt must be an ISO 8601 date, not in the future.' };
  }
  importInvalidLastLoginAt(): IdentityError {
    return { code: 'invalid_last_login_at', description: 'lastLoginAt must be an ISO 8601 date, not in the future.' };
  }
  /**
   * A password write (an admin's forced reset, `removePassword` with `unlessDirectoryManaged`) for a user whose
   * password the directory (LDAP) manages (the forced reset answers it as 409 `directory_managed`).
   */
  passwordManagedByDirectory(): IdentityError {
    return { code: 'password_managed_by_directory', description: "The organisation's directory manages this user's password: reset it there." };
  }
  /** An imported password hash, or another username, for an existing user whose password the directory (LDAP) manages. */
  importDirectoryManaged(): IdentityError {
    return {
      code: 'directory_managed',
      description:
        "The organisation's directory manages this user's password: an import cannot set a local one or give the user another username (another directory account). Leave passwordHash out and keep the username, or clear the mark first (userManager.clearDirectoryManaged).",
    };
  }
  duplicateInImport(field: 'email' | 'username'): IdentityError {
    return { code: 'duplicate_in_import', description: `Another record of this import has the same ${field === 'username' ? 'username' : 'email'}.` };
  }
  loginAlreadyLinked(): IdentityError {
    return { code: 'login_already_linked', description: 'This external login is already linked to a user.' };
  }
  loginNotFound(): IdentityError {
    return { code: 'login_not_found', description: 'The user has no login of this provider.' };
  }
  /** An enable whose confirmed enrolment a new setup replaced before 2FA was turned on (answered as a wrong code). */
  twoFactorSetupReplaced(): IdentityError {
    return { code: 'invalid_code', description: 'A new two-factor setup was started meanwhile: scan its QR code and enter a code from it.' };
  }
  lastSecondFactor(): IdentityError {
    return { code: 'last_second_factor', description: 'Two-factor authentication rests on this passkey: set up an authenticator app, add another passkey or turn two-factor off first.' };
  }
  lastLoginMethod(): IdentityError {
    return { code: 'last_login_method', description: 'This is your last way to sign in: link another login provider before removing it.' };
  }
  groupsManagedByProvider(): IdentityError {
    return { code: 'groups_managed_by_provider', description: "This user's groups are managed by their external login provider." };
  }
  concurrencyFailure(): IdentityError {
    return { code: 'concurrency_failure', description: 'The user was changed by someone else; try again.' };
  }
}
