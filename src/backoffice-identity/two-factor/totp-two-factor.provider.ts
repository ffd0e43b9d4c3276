import { Secret, TOTP } from 'otpauth';
import * as QRCode from 'qrcode';
import type { BackOfficeClock } from '../common/clock.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import { isUserAuthenticatorKeyStore, type BackOfficeUserStore, type UserAuthenticatorKeyStore } from '../users/stores/user-store.interface.js';
import { SecretCipher } from './secret-cipher.js';
import { TwoFactorAlreadySetUpError, type TwoFactorProvider, type TwoFactorSetup, type TwoFactorVerifyOutcome } from './two-factor-provider.interface.js';

/** TOTP parameters (RFC 6238). Authenticator apps expect the defaults. */
export interface TotpParameters {
  /** 6 to 10. */
  digits: number;
  /** Seconds per step: 1 to 30 (ASVS 5.0 6.5.5: a TOTP lives at most 30 s). */
  period: number;
  algorithm: 'SHA1' | 'SHA256' | 'SHA512';
  /** Accepted steps before and after the current one, for clock drift: 0 or 1 (RFC 6238 5.2: at most one step). */
  window: number;
}

export const DEFAULT_TOTP: TotpParameters = { digits: 6, period: 30, algorithm: 'SHA1', window: 1 };

/** Throws, naming the parameter, unless `parameters` are within the bounds {@link TotpParameters} documents. */
function assertTotpParameters(parameters: TotpParameters): void {
  const integerIn = (value: number, min: number, max: number) => Number.isInteger(value) && value >= min && value <= max;
  const refuse = (name: string, rule: string, value: unknown) => {
    throw new Error(`TotpTwoFactorProvider: parameter "${name}" must be ${rule} (got ${String(value)})`);
  };
  if (!integerIn(parameters.window, 0, 1)) refuse('window', '0 or 1 (steps of clock drift accepted each side)', parameters.window);
  if (!integerIn(parameters.period, 1, 30)) refuse('period', 'a whole number of seconds from 1 to 30', parameters.period);
  if (!integerIn(parameters.digits, 6, 10)) refuse('digits', 'a whole number from 6 to 10', parameters.digits);
  if (!['SHA1', 'SHA256', 'SHA512'].includes(parameters.algorithm)) refuse('algorithm', "'SHA1', 'SHA256' or 'SHA512'", parameters.algorithm);
}

/**
 * The built-in TOTP provider (RFC 6238; SHA-1, 6 digits, 30 s, ±1 step by default; wider windows, longer periods
 * and fewer than 6 digits are refused at construction). Secrets are 160 random bits,
 * encrypted at rest. Each time step is accepted once (ASVS 2.8.4/2.8.5): the store keeps the last used step.
 */
export class TotpTwoFactorProvider implements TwoFactorProvider {
  readonly name = 'totp';
  private readonly cipher: SecretCipher;

  constructor(
    private readonly store: UserAuthenticatorKeyStore,
    encryptionKey: string,
    private readonly clock: BackOfficeClock,
    private readonly issuer: string,
    private readonly parameters: TotpParameters = DEFAULT_TOTP,
  ) {
    // The drift window and code lifetime are bounded (ASVS 5.0 6.5.5): a window of 10 made a code good for 10.5 minutes.
    assertTotpParameters(parameters);
    this.cipher = new SecretCipher(encryptionKey);
  }

  private totp(secret: Secret, label = ''): TOTP {
    const { digits, period, algorithm } = this.parameters;
    return new TOTP({ issuer: this.issuer, label, secret, digits, period, algorithm });
  }

  /** The code of a base32 secret at a time (for tests and tools). */
  codeAt(base32Secret: string, at: Date): string {
    return this.totp(Secret.fromBase32(base32Secret)).generate({ timestamp: at.getTime() });
  }

  async isSetUp(user: BackOfficeUser): Promise<boolean> {
    return (await this.store.getAuthenticatorKey(user.id, this.name))?.confirmed === true;
  }

  async generateSetup(user: BackOfficeUser): Promise<TwoFactorSetup> {
    const secret = new Secret({ size: 20 });
    // Refused by the store when 2FA is on with a confirmed key (an enable committed since the caller's check).
    if ((await this.store.setAuthenticatorKey(user.id, this.name, this.cipher.encrypt(secret.base32), this.clock.now())) === false) {
      throw new TwoFactorAlreadySetUpError(this.name);
    }
    const otpauthUri = this.totp(secret, user.email).toString();
    const qrCodeDataUrl = await QRCode.toDataURL(otpauthUri, { errorCorrectionLevel: 'M', margin: 2, width: 256 });
    return { secret: secret.base32, otpauthUri, qrCodeDataUrl };
  }

  async verify(user: BackOfficeUser, code: string, options: { enrolling?: boolean; outcome?: TwoFactorVerifyOutcome } = {}): Promise<boolean> {
    if (typeof code !== 'string') return false;
    const token = code.replace(/[\s-]/g, '');
    if (!new RegExp(`^\\d{${this.parameters.digits}}$`).test(token)) return false;
    const stored = await this.store.getAuthenticatorKey(user.id, this.name);
    if (!stored || stored.confirmed === Boolean(options.enrolling)) return false;
    let secret: Secret;
    try {
      secret = Secret.fromBase32(this.cipher.decrypt(stored.encryptedSecret));
    } catch {
      return false;
    }
    const now = this.clock.now().getTime();
    const delta = this.totp(secret).validate({ token, timestamp: now, window: this.parameters.window });
    if (delta === null) return false;
    const step = Math.floor(now / 1000 / this.parameters.period) + delta;
    // Bound to the secret the code was checked against: a setup that replaced it meanwhile is not confirmed (or used).
    const used = await this.store.useAuthenticatorStep(user.id, this.name, step, Boolean(options.enrolling), this.clock.now(), stored.encryptedSecret);
    // A right code of a confirmed key whose step was not newer than the last used one: a replay (ASVS 4.0 2.8.5).
    // Read again, not decided on the first read: a replay raced by the code's owner shows only now, and a key
    // removed or replaced meanwhile (a reset, a new setup) refused the code for another reason: no false alarm.
    if (!used && !options.enrolling && options.outcome && (await this.wasUsed(user, stored.encryptedSecret, step))) options.outcome.reused = true;
    return used;
  }

  /** The key still holds `encryptedSecret`, confirmed, and `step` (or a later one) was used with it. */
  private async wasUsed(user: BackOfficeUser, encryptedSecret: string, step: number): Promise<boolean> {
    const key = await this.store.getAuthenticatorKey(user.id, this.name);
    return key !== null && key.confirmed && key.encryptedSecret === encryptedSecret && key.lastUsedStep !== null && key.lastUsedStep >= step;
  }

  async reset(user: BackOfficeUser): Promise<void> {
    await this.store.removeAuthenticatorKey(user.id, this.name);
  }

  /**
   * This provider on `userStore` when it is the store the keys live in, bound to a transaction (the built-in stores
   * hand a transaction's work the store itself, or an object whose prototype it is).
   */
  inTransactionOf(userStore: BackOfficeUserStore): TotpTwoFactorProvider | null {
    if (!isUserAuthenticatorKeyStore(userStore)) return null;
    if (userStore === this.store) return this;
    return Object.prototype.isPrototypeOf.call(this.store, userStore) ? (Object.create(this, { store: { value: userStore } }) as this) : null;
  }
}
