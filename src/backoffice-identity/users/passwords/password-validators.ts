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

/** Longest password the common-list check examines (longer ones are refused by length anyway). */
const MAX_COMMON_CHECK_LENGTH = 1024;

/**
 * Refuses a password that is in the common-password list, compared case-insensitively, also when the
 * list entry is followed by digits or symbols ("password123!", "1234567890!!") or merely repeated
 * ("qwertyqwerty", "123123123123"). Runs in linear time per candidate.
 */
export class CommonPasswordValidator implements PasswordValidator {
  constructor(private readonly describer: BackOfficeErrorDescriber) {}

  validate(password: string): IdentityError[] {
    if (typeof password !== 'string' || password.length > MAX_COMMON_CHECK_LENGTH) return [];
    const list = commonPasswordList();
    const lower = password.normalize('NFKC').toLowerCase();
    const bases = new Set([lower, lower.replace(/[^\p{L}\p{M}]+$/u, ''), lower.replace(/[^\p{L}\p{M}\p{N}]+$/u, '')]);
    for (const base of bases) {
      if (base.length === 0) continue;
      if (list.has(base)) return [this.describer.passwordTooCommon()];
      for (const unit of CommonPasswordValidator.repeatedUnits(base)) {
        if (list.has(unit)) return [this.describer.passwordTooCommon()];
      }
    }
    return [];
  }

  /** Every unit `u` such that `value` is `u` repeated two or more times ("abab" -> "ab"). */
  private static repeatedUnits(value: string): string[] {
    const chars = [...value];
    const units: string[] = [];
    for (let size = 1; size <= chars.length / 2; size++) {
      if (chars.length % size !== 0) continue;
      const unit = chars.slice(0, size).join('');
      if (unit.repeat(chars.length / size) === value) units.push(unit);
    }
    return units;
  }
}
