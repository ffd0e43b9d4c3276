import { createHmac, randomInt } from 'node:crypto';
import { sha256Hex } from '../common/crypto.js';
import { keyedHash } from '../common/keyed-hash.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';

/** Provider name of recovery codes at `POST /auth/2fa`. */
export const RECOVERY_PROVIDER = 'recovery';

/** Crockford-style alphabet without look-alikes (no I, L, O, U): 5 bits per character. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** 16 characters of 5 bits: 80 random bits (NIST 800-63B look-up secrets: at least 64 bits). */
const CODE_LENGTH = 16;

/** A recovery code like `7KQ2-MXW9-TD4R-B81Z` (80 random bits). */
export function newRecoveryCode(): string {
  let code = '';
  for (let i = 0; i < CODE_LENGTH; i++) code += ALPHABET[randomInt(ALPHABET.length)];
  return code.match(/.{4}/g)!.join('-');
}

/** The form that is hashed: upper case, no spaces or dashes, look-alikes mapped (O->0, I/L->1). */
export function normalizeRecoveryCode(code: string): string {
  return code.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
}

/**
 * How a recovery code is stored: `v2:` + HMAC-SHA256 over `userId:code`, keyed with a key derived from
 * `twoFactor.encryptionKey` (without one, keyed with the user id alone: still salted per user).
 */
export function hashRecoveryCode(options: ResolvedBackOfficeIdentityOptions, userId: string, code: string): string {
  const message = `${userId}:${normalizeRecoveryCode(code)}`;
  const mac = options.twoFactor.encryptionKey
    ? keyedHash(options, 'recovery-code', message)
    : createHmac('sha256', `backoffice-recovery-code:${userId}`).update(message, 'utf8').digest('hex');
  return `v2:${mac}`;
}

/**
 * The stored form of a code issued before 0.2 (50 bits, unsalted SHA-256): migration 1732500000000 wrapped
 * each such hash as `legacy:` + SHA-256 of `userId:oldHash`, so no unsalted hash stays at rest and codes that
 * users printed keep working once each.
 */
export function legacyRecoveryCodeHash(userId: string, code: string): string {
  return `legacy:${sha256Hex(`${userId}:${sha256Hex(normalizeRecoveryCode(code))}`)}`;
}
