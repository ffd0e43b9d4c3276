import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';

/** What a derived key is for; each purpose gets its own key, so one never verifies another's hashes. */
export type KeyedHashPurpose = 'login-attempt' | 'recovery-code' | 'rate-limit';

const processKeys = new WeakMap<object, Buffer>();
const logger = new Logger('BackOfficeIdentity');

/**
 * The server key of `options`: `twoFactor.encryptionKey` when set. Without it, a random key for this process
 * (logged once): hashes then stay private but do not survive a restart or span app instances.
 */
function rootKey(options: ResolvedBackOfficeIdentityOptions): Buffer {
  const secret = options.twoFactor.encryptionKey;
  if (secret) return Buffer.from(secret, 'utf8');
  let key = processKeys.get(options);
  if (!key) {
    key = randomBytes(32);
    processKeys.set(options, key);
    logger.warn(
      'twoFactor.encryptionKey is not set: attempted usernames are hashed with a per-process key, so failed-login ' +
        'counters of unknown usernames reset on restart and are not shared between instances.',
    );
  }
  return key;
}

const derived = new WeakMap<object, Map<KeyedHashPurpose, Buffer>>();

/** HKDF-SHA256 of the server key, one sub-key per purpose. */
function keyFor(options: ResolvedBackOfficeIdentityOptions, purpose: KeyedHashPurpose): Buffer {
  let keys = derived.get(options);
  if (!keys) derived.set(options, (keys = new Map()));
  let key = keys.get(purpose);
  if (!key) {
    key = Buffer.from(hkdfSync('sha256', rootKey(options), 'backoffice-identity', `backoffice-identity:${purpose}`, 32));
    keys.set(purpose, key);
  }
  return key;
}

/**
 * Hex HMAC-SHA256 of `value` under the server key derived for `purpose`: what is stored instead of a value that
 * must be matched but never read back (attempted usernames, recovery codes, rate-limit keys).
 */
export function keyedHash(options: ResolvedBackOfficeIdentityOptions, purpose: KeyedHashPurpose, value: string): string {
  return createHmac('sha256', keyFor(options, purpose)).update(value, 'utf8').digest('hex');
}
