import { Inject, Injectable } from '@nestjs/common';
import * as bcrypt from 'bcrypt';
import { createHmac, randomBytes } from 'node:crypto';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../../options/backoffice-identity-options.interface.js';
import { isImportedHash, MAX_IMPORTED_BCRYPT_COST, verifyImportedHash } from './foreign-password-hashes.js';

export type { BackOfficePasswordHasher, PasswordVerificationResult } from './password-hasher.interface.js';
import type { BackOfficePasswordHasher, PasswordVerificationResult } from './password-hasher.interface.js';

/** Prefix of the current format: bcrypt over an HMAC-SHA256 pre-hash of the whole password. */
export const BCRYPT_SHA256_PREFIX = '$bo-bcrypt-sha256$v1$';
const PREHASH_KEY = 'backoffice-identity/bcrypt-sha256/v1';

/**
 * Default hasher: bcrypt (cost from `password.hashCost`, run on libuv's thread pool, never the event loop).
 *
 * bcrypt reads only the first 72 bytes of its input. To keep every character significant, the NFKC-normalised
 * password is first reduced with HMAC-SHA256 and base64-encoded (44 bytes, no NUL), then given to bcrypt.
 * Hashes carry a version prefix (`$bo-bcrypt-sha256$v1$`) so other algorithms can be added; plain `$2a$/$2b$`
 * hashes (e.g. imported from another system) still verify and are re-hashed on the next successful login.
 *
 * Hashes imported from ASP.NET Identity (V2, V3) and Umbraco 7/8 (`HMACSHA256`, `SHA1`) are stored as
 * `$bo-import$<format>$<hash>` and take the same path: verified here, re-hashed to bcrypt on the first success.
 * A failed check of such a hash also spends one bcrypt comparison, so a fast legacy hash answers a wrong password
 * in the time of a bcrypt one (no timing oracle for imported accounts).
 */
@Injectable()
export class BcryptPasswordHasher implements BackOfficePasswordHasher {
  private readonly cost: number;
  private timingHash?: Promise<string>;
  /** Hashes of a random password per bcrypt cost, compared against by {@link padToCost}. */
  private readonly paddingHashes = new Map<number, Promise<string>>();

  constructor(@Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions) {
    this.cost = options.password.hashCost;
  }

  async hashPassword(password: string): Promise<string> {
    return BCRYPT_SHA256_PREFIX + (await bcrypt.hash(BcryptPasswordHasher.prehash(password), this.cost));
  }

  async verifyHashedPassword(hashedPassword: string, providedPassword: string): Promise<PasswordVerificationResult> {
    if (typeof hashedPassword !== 'string' || typeof providedPassword !== 'string') return 'failed';
    let inner: string;
    let input: string;
    let legacy = false;
    if (isImportedHash(hashedPassword)) {
      if (await verifyImportedHash(hashedPassword, providedPassword)) return 'successRehashNeeded';
      return this.failAtCost(BcryptPasswordHasher.prehash(providedPassword));
    }
    if (hashedPassword.startsWith(BCRYPT_SHA256_PREFIX)) {
      inner = hashedPassword.slice(BCRYPT_SHA256_PREFIX.length);
      input = BcryptPasswordHasher.prehash(providedPassword);
    } else if (/^\$2[aby]\$\d\d\$/.test(hashedPassword)) {
      // Imported hash ($2y$ is PHP's name for $2b$): the system that made it may not have normalised.
      inner = hashedPassword.replace(/^\$2y\$/, '$2b$');
      input = providedPassword;
      legacy = true;
      // One stored before imports refused such costs never runs (it would hold a thread for up to hours), unless
      // the configured cost is as high (a host that chose hashCost 17 to 20 made such hashes itself).
      if (BcryptPasswordHasher.rounds(inner) > Math.max(MAX_IMPORTED_BCRYPT_COST, this.cost)) return this.failAtCost(input);
    } else {
      return 'failed';
    }
    let ok = await BcryptPasswordHasher.compare(input, inner);
    if (!ok && legacy && providedPassword.normalize('NFKC') !== providedPassword) {
      ok = await BcryptPasswordHasher.compare(providedPassword.normalize('NFKC'), inner);
    }
    const rounds = BcryptPasswordHasher.rounds(inner);
    if (!ok) {
      await this.padToCost(rounds, input);
      return 'failed';
    }
    return legacy || rounds < this.cost ? 'successRehashNeeded' : 'success';
  }

  /** Spends one comparison at the configured cost (a failed check's time) and answers `failed`. */
  private async failAtCost(input: string): Promise<PasswordVerificationResult> {
    this.timingHash ??= bcrypt.hash(randomBytes(24).toString('base64'), this.cost);
    await BcryptPasswordHasher.compare(input, await this.timingHash);
    return 'failed';
  }

  /**
   * After a failed check of a hash weaker than the configured cost (imported, or made before the cost was raised):
   * one more comparison at each cost from `rounds` to `cost - 1` (2^r + ... + 2^(c-1) = 2^c - 2^r), so the wrong
   * password takes as long as one check at the configured cost, the time an unknown username takes (no timing
   * oracle for accounts that have not signed in since).
   */
  private async padToCost(rounds: number, input: string): Promise<void> {
    for (let cost = rounds; cost < this.cost; cost++) {
      let hash = this.paddingHashes.get(cost);
      if (!hash) this.paddingHashes.set(cost, (hash = bcrypt.hash(randomBytes(24).toString('base64'), cost)));
      await BcryptPasswordHasher.compare(input, await hash);
    }
  }

  /** The cost of a bcrypt hash (at least 4, bcrypt's minimum); `Infinity` (nothing to pad or upgrade) when unreadable. */
  private static rounds(hash: string): number {
    try {
      return Math.max(4, bcrypt.getRounds(hash));
    } catch {
      return Infinity;
    }
  }

  private static async compare(input: string, hash: string): Promise<boolean> {
    try {
      return await bcrypt.compare(input, hash);
    } catch {
      return false;
    }
  }

  /** NFKC (NIST 800-63B 5.1.1.2), then HMAC-SHA256, base64: a fixed 44-byte bcrypt input. */
  private static prehash(password: string): string {
    return createHmac('sha256', PREHASH_KEY).update(password.normalize('NFKC'), 'utf8').digest('base64');
  }
}
