import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { BackOfficeClock } from '../common/clock.js';
import { sha256Hex } from '../common/crypto.js';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_PENDING_SIGN_IN_STORE, BACKOFFICE_USER_STORE } from '../constants.js';
import type { BackOfficePendingSignInStore } from '../sign-in/pending-sign-in-store.interface.js';
import { NotificationPublisher } from '../notifications/notification-publisher.service.js';
import { UserPasskeyCounterRegressedNotification, UserPasskeyUsedNotification } from '../notifications/notifications.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import {
  type BackOfficeUserStore,
  isUserPasskeyStore,
  type NewStoredPasskey,
  type PasskeyChallengePurpose,
  type StoredPasskey,
  type UserPasskeyStore,
} from '../users/stores/user-store.interface.js';

/** Outcome of checking an assertion against a known passkey. */
export type PasskeyAssertionResult =
  | { verified: true; passkey: StoredPasskey; userVerified: boolean }
  | { verified: false; passkey: StoredPasskey; reason: 'invalid_passkey' | 'passkey_counter_regressed' };

/** The WebAuthn user handle of a user: the UTF-8 bytes of its id. */
export const passkeyUserHandle = (userId: string): Uint8Array<ArrayBuffer> => Uint8Array.from(Buffer.from(userId, 'utf8'));

const BASE64URL = /^[A-Za-z0-9_-]{1,1400}$/;

/** Longest credential id WebAuthn allows (L3 7.1 step "credentialId ≤ 1023 bytes"): 1364 base64url characters. */
const MAX_CREDENTIAL_ID_BYTES = 1023;

/**
 * The WebAuthn ceremonies, on `@simplewebauthn/server` (which parses CBOR, COSE keys and attestations): options
 * with server-side challenges (stored as SHA-256, single use, expiring, bound to purpose and user), and
 * verification with origin, rp id and signature-counter checks. Counters are checked here, not by the library,
 * so a counter that goes backwards is written atomically and reported as a possible clone.
 */
@Injectable()
export class BackOfficePasskeyCeremonies {
  private readonly logger = new Logger('BackOfficePasskeys');

  constructor(
    @Inject(BACKOFFICE_USER_STORE) private readonly userStore: BackOfficeUserStore,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(NotificationPublisher) private readonly notifications: NotificationPublisher,
    @Inject(BACKOFFICE_PENDING_SIGN_IN_STORE) private readonly pending: BackOfficePendingSignInStore,
  ) {}

  /** True when passkeys are configured and the store keeps them. */
  get enabled(): boolean {
    return this.options.passkeys !== null && isUserPasskeyStore(this.userStore);
  }

  private get store(): UserPasskeyStore {
    if (!isUserPasskeyStore(this.userStore)) throw new Error('The user store does not support passkeys (UserPasskeyStore).');
    return this.userStore;
  }

  private get config(): NonNullable<ResolvedBackOfficeIdentityOptions['passkeys']> {
    if (!this.options.passkeys) throw new Error('Passkeys are not configured (option "passkeys").');
    return this.options.passkeys;
  }

  private async remember(challenge: string, purpose: PasskeyChallengePurpose, userId: string | null, slot?: string): Promise<void> {
    const now = this.clock.now();
    const expiresAt = new Date(now.getTime() + this.config.challengeMinutes * 60_000);
    await this.pending.create(
      { kind: 'passkey', keyHash: sha256Hex(challenge), purpose, userId, browserHash: null, securityStamp: null, payload: null, expiresAt, ...(slot === undefined ? {} : { slot }) },
      now,
    );
  }

  /**
   * A verifier for the library that uses the challenge up: it passes once, for the purpose and user it was issued to
   * (and with `slot`, only a challenge issued with that slot: `BackOfficePendingSignInMatch.slot`).
   */
  private consumer(purpose: PasskeyChallengePurpose, userId: string | null, slot?: string) {
    const match = { purpose, userId, ...(slot === undefined ? {} : { slot }) };
    return (challenge: string) =>
      typeof challenge === 'string' && BASE64URL.test(challenge)
        ? this.pending.consume('passkey', sha256Hex(challenge), this.clock.now(), match).then((used) => used !== null)
        : Promise.resolve(false);
  }

  /** Options for `navigator.credentials.create()`: a discoverable credential, user verification preferred. */
  async registrationOptions(user: BackOfficeUser, existing: StoredPasskey[]): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const { rpId, rpName, challengeMinutes } = this.config;
    const options = await generateRegistrationOptions({
      rpName,
      rpID: rpId,
      userName: user.username,
      userDisplayName: user.name,
      userID: passkeyUserHandle(user.id),
      timeout: challengeMinutes * 60_000,
      attestationType: 'none',
      excludeCredentials: existing.map((p) => ({ id: p.credentialId, transports: p.transports })),
      authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
    });
    await this.remember(options.challenge, 'registration', user.id);
    return options;
  }

  /** Checks an attestation for `user`; the new passkey's fields, or null when it is not acceptable. */
  async verifyRegistration(user: BackOfficeUser, response: RegistrationResponseJSON, name: string): Promise<NewStoredPasskey | null> {
    const { rpId, origins } = this.config;
    try {
      const result = await verifyRegistrationResponse({
        response,
        expectedChallenge: this.consumer('registration', user.id),
        expectedOrigin: origins,
        expectedRPID: rpId,
        requireUserVerification: false,
      });
      if (!result.verified) throw new Error('not verified');
      const { credential, credentialDeviceType, credentialBackedUp } = result.registrationInfo;
      // WebAuthn L3 7.1: the attested credential id is at most 1023 bytes (the library does not check it; a longer
      // one was a 500 from the database), and it is the id the browser reported (the one the DTO bounded).
      if (Buffer.from(credential.id, 'base64url').length > MAX_CREDENTIAL_ID_BYTES) throw new Error('credential id longer than 1023 bytes');
      if (credential.id !== response.id) throw new Error('the attested credential id is not the reported one');
      return {
        credentialId: credential.id,
        publicKey: credential.publicKey,
        counter: credential.counter,
        transports: (response.response.transports ?? []).filter((t) => typeof t === 'string' && t.length <= 32).slice(0, 8),
        name,
        deviceType: credentialDeviceType,
        backedUp: credentialBackedUp,
      };
    } catch (error) {
      this.logger.debug(`Registration refused: ${(error as Error).message}`);
      await this.discardChallenge(response, 'registration', user.id);
      return null;
    }
  }

  /**
   * Options for `navigator.credentials.get()`. Without `allow` (username-less sign-in) the browser offers the
   * discoverable credentials it has for the rp id; with it, only those. With `slot` the challenge replaces the
   * previous one of that slot (a second factor's: its pending sign-in; `BackOfficePendingSignIn.slot`).
   */
  async authenticationOptions(
    purpose: Exclude<PasskeyChallengePurpose, 'registration'>,
    userId: string | null,
    allow: StoredPasskey[] = [],
    slot?: string,
  ): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const { rpId, challengeMinutes } = this.config;
    const options = await generateAuthenticationOptions({
      rpID: rpId,
      timeout: challengeMinutes * 60_000,
      userVerification: 'preferred',
      allowCredentials: allow.map((p) => ({ id: p.credentialId, transports: p.transports })),
    });
    await this.remember(options.challenge, purpose, userId, slot);
    return options;
  }

  /** The registered passkey an assertion names, or null (unknown id, or id and rawId disagree). */
  async findPasskey(response: AuthenticationResponseJSON): Promise<StoredPasskey | null> {
    if (typeof response?.id !== 'string' || response.id !== response.rawId || !BASE64URL.test(response.id)) return null;
    return this.store.findPasskeyByCredentialId(response.id);
  }

  /**
   * Uses up the challenge of an assertion that will not be verified (unknown credential, another user's passkey), so
   * such an attempt leaves the same trace as a wrong signature: the challenge is gone either way (with `slot`, only a
   * challenge of that slot: another slot's stays).
   */
  async discardChallenge(response: AuthenticationResponseJSON | RegistrationResponseJSON, purpose: PasskeyChallengePurpose, userId: string | null, slot?: string): Promise<void> {
    const challenge = BackOfficePasskeyCeremonies.challengeOf(response);
    if (challenge) await this.consumer(purpose, userId, slot)(challenge);
  }

  /** The challenge in clientDataJSON (plain JSON, base64url), or null. */
  private static challengeOf(response: AuthenticationResponseJSON | RegistrationResponseJSON): string | null {
    try {
      const json = JSON.parse(Buffer.from(String(response?.response?.clientDataJSON ?? ''), 'base64url').toString('utf8'));
      return typeof json?.challenge === 'string' ? json.challenge : null;
    } catch {
      return null;
    }
  }

  /**
   * Verifies an assertion of `passkey`: the challenge (issued for `purpose` and `userId`, used up here), origin,
   * rp id, signature, user handle (the owner's; required when `userId` is null, i.e. username-less), and a counter that moves forward (else refused and
   * `UserPasskeyCounterRegressedNotification`). With `slot` the challenge must have been issued with that slot (a
   * second factor's: its pending sign-in's).
   */
  async verifyAssertion(
    response: AuthenticationResponseJSON,
    passkey: StoredPasskey,
    purpose: Exclude<PasskeyChallengePurpose, 'registration'>,
    userId: string | null,
    slot?: string,
  ): Promise<PasskeyAssertionResult> {
    const { rpId, origins } = this.config;
    let newCounter: number;
    let userVerified: boolean;
    try {
      const result = await verifyAuthenticationResponse({
        response,
        expectedChallenge: this.consumer(purpose, userId, slot),
        expectedOrigin: origins,
        expectedRPID: rpId,
        // The counter is checked below, atomically, against the stored one.
        credential: { id: passkey.credentialId, publicKey: new Uint8Array(passkey.publicKey), counter: 0, transports: passkey.transports },
        requireUserVerification: false,
      });
      if (!result.verified) throw new Error('not verified');
      ({ newCounter, userVerified } = result.authenticationInfo);
    } catch (error) {
      this.logger.debug(`Assertion refused: ${(error as Error).message}`);
      // The library may refuse before it reaches the challenge (e.g. a wrong type): use it up anyway.
      await this.discardChallenge(response, purpose, userId, slot);
      return { verified: false, passkey, reason: 'invalid_passkey' };
    }
    // WebAuthn L3 7.2 step 6: the userHandle, when sent, must be the handle of the credential's owner; and when the
    // user was not identified before the ceremony (username-less sign-in, `userId` null) it must be sent. A
    // ceremony for a known user (second factor, step-up) may go without one. Refused as a wrong signature is.
    const handle = response.response.userHandle;
    const missing = handle === undefined || handle === null || handle === '';
    if (missing ? userId === null : handle !== Buffer.from(passkeyUserHandle(passkey.userId)).toString('base64url')) {
      this.logger.debug(`Assertion refused: ${missing ? 'no userHandle in a username-less sign-in' : 'the userHandle is not the passkey owner\'s'}`);
      return { verified: false, passkey, reason: 'invalid_passkey' };
    }
    if (!(await this.store.recordPasskeyUse(passkey.id, newCounter, this.clock.now()))) {
      await this.publish(UserPasskeyCounterRegressedNotification, passkey, { storedCounter: passkey.counter, receivedCounter: newCounter });
      return { verified: false, passkey, reason: 'passkey_counter_regressed' };
    }
    return { verified: true, passkey: { ...passkey, counter: newCounter, lastUsedAt: this.clock.now() }, userVerified };
  }

  /** Publishes `UserPasskeyUsedNotification` for a passkey that signed in or answered the second step. */
  notifyUsed(passkey: StoredPasskey, usage: 'signIn' | 'secondFactor' | 'reauthentication', userVerified: boolean): Promise<unknown> {
    return this.publish(UserPasskeyUsedNotification, passkey, { usage, userVerified });
  }

  private publish<E extends object>(
    type: new (init: any) => UserPasskeyUsedNotification | UserPasskeyCounterRegressedNotification,
    passkey: StoredPasskey,
    extra: E,
  ): Promise<unknown> {
    const context = BackOfficeRequestContextStore.current();
    return this.notifications.publish(
      new type({
        ipAddress: context.ipAddress ?? null,
        performingUserId: context.performingUserId ?? passkey.userId,
        affectedUserId: passkey.userId,
        dateTimeUtc: this.clock.now(),
        passkeyId: passkey.id,
        passkeyName: passkey.name,
        ...extra,
      }),
    );
  }
}
