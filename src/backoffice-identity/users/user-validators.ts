import type { BackOfficeErrorDescriber } from '../common/error-describer.js';
import type { IdentityError } from '../common/identity-result.js';
import { CONTROL_CHARACTERS } from '../common/lookup-normalizer.js';
import type { BackOfficeUserCandidate, UserValidator } from './validators.interface.js';

/**
 * A pragmatic email check: one @, a dot in the domain, <= 256 chars, and none of the characters that make
 * an address list or a display name to a mail library (`,` `;` `<` `>` `"` `(` `)` `[` `]` `\` `:`),
 * spaces or control characters: `a@x.com,b@y.com` must never fan out to two recipients.
 */
export const EMAIL_ADDRESS = /^[^\s@,;<>"()[\]\\:]{1,64}@[^\s@.,;<>"()[\]\\:]+(\.[^\s@.,;<>"()[\]\\:]+)+$/u;
const USERNAME = /^[\p{L}\p{N}\p{M}@._+\-' ]+$/u;

/** Built-in checks of email, username and name (uniqueness is enforced by the store). */
export class DefaultUserValidator implements UserValidator {
  constructor(
    private readonly describer: BackOfficeErrorDescriber,
    private readonly usernameIsEmail: boolean,
  ) {}

  validate(user: BackOfficeUserCandidate): IdentityError[] {
    const d = this.describer;
    const errors: IdentityError[] = [];
    const validText = (v: unknown): v is string =>
      typeof v === 'string' && v.trim().length > 0 && v.length <= 256 && !CONTROL_CHARACTERS.test(v);
    if (!validText(user.email) || !EMAIL_ADDRESS.test(user.email)) errors.push(d.invalidEmail());
    if (!this.usernameIsEmail && (!validText(user.username) || !USERNAME.test(user.username))) errors.push(d.invalidUserName());
    if (!validText(user.name)) errors.push(d.invalidName());
    return errors;
  }
}
