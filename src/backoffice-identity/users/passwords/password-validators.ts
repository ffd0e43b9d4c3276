import { dictionary } from '@zxcvbn-ts/language-common';
import type { BackOfficeErrorDescriber } from '../../common/error-describer.js';
import type { IdentityError } from '../../common/identity-result.js';
import { CONTROL_CHARACTERS } from '../../common/lookup-normalizer.js';
import type { BackOfficePasswordOptions } from '../../options/backoffice-identity-options.interface.js';
import type { PasswordValidator } from '../validators.interface.js';

/** Length in Unicode code points of the NFKC form, the form that is hashed. */
export const passwordLength = (password: string) => [...password.normalize('NFKC')].length;

/** Length and composition rules from `password.*` options. Control characters are refused. */
export class PolicyPasswordValidator implements PasswordValidator {
  constructor(
    private readonly policy: Required<BackOfficePasswordOptions>,
    private readonly describer: BackOfficeErrorDescriber,
  ) {}

  validate(password: string): IdentityError[] {
    const d = this.describer;
    if (typeof password !== 'string' || CONTROL_CHARACTERS.test(password)) return [d.passwordInvalidCharacters()];
    const errors: IdentityError[] = [];
    const length = passwordLength(password);
    if (length < this.policy.requiredLength) errors.push(d.passwordTooShort(this.policy.requiredLength));
    if (length > this.policy.maxLength) errors.push(d.passwordTooLong(this.policy.maxLength));
    if (this.policy.requireDigit && !/\p{Nd}/u.test(password)) errors.push(d.passwordRequiresDigit());
    if (this.policy.requireLowercase && !/\p{Ll}/u.test(password)) errors.push(d.passwordRequiresLower());
    if (this.policy.requireUppercase && !/\p{Lu}/u.test(password)) errors.push(d.passwordRequiresUpper());
    if (this.policy.requireNonLetterOrDigit && !/[^\p{L}\p{Nd}]/u.test(password)) errors.push(d.passwordRequiresNonAlphanumeric());
    return errors;
  }
}

let commonPasswords: Set<string> | undefined;

/** The ~49k common passwords of `@zxcvbn-ts/language-common`, shipped offline (ASVS 5.0 6.2.4). */
export function commonPasswordList(): Set<string> {
  commonPasswords ??= new Set(dictionary['passwords-common'].map((p) => p.toLowerCase()));
  return commonPasswords;
}

/**
 * Refuses a password that is in the common-password list, compared case-insensitively, also when the
 * list entry is merely repeated or followed by digits and symbols ("password123!", "qwertyqwerty").
 */
export class CommonPasswordValidator implements PasswordValidator {
  constructor(private readonly describer: BackOfficeErrorDescriber) {}

  validate(password: string): IdentityError[] {
    if (typeof password !== 'string') return [];
    const list = commonPasswordList();
    const lower = password.normalize('NFKC').toLowerCase();
    const stripped = lower.replace(/[\d\W_]+$/u, '');
    const candidates = [lower, stripped, CommonPasswordValidator.unrepeated(lower), CommonPasswordValidator.unrepeated(stripped)];
    return candidates.some((c) => c.length > 0 && list.has(c)) ? [this.describer.passwordTooCommon()] : [];
  }

  /** "abcabcabc" -> "abc"; anything else unchanged. */
  private static unrepeated(value: string): string {
    const match = /^(.+?)\1+$/u.exec(value);
    return match ? match[1] : value;
  }
}
