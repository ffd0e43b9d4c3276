import { randomInt } from 'node:crypto';

/** Provider name of recovery codes at `POST /auth/2fa`. */
export const RECOVERY_PROVIDER = 'recovery';

/** Crockford-style alphabet without look-alikes (no I, L, O, U). */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A recovery code like `7KQ2M-XW9TD` (50 random bits). */
export function newRecoveryCode(): string {
  let code = '';
  for (let i = 0; i < 10; i++) code += ALPHABET[randomInt(ALPHABET.length)];
  return `${code.slice(0, 5)}-${code.slice(5)}`;
}

/** The form that is hashed: upper case, no spaces or dashes, look-alikes mapped (O->0, I/L->1). */
export function normalizeRecoveryCode(code: string): string {
  return code.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
}
