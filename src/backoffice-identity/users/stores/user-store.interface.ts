import type { BackOfficeUser, BackOfficeUserState } from '../backoffice-user.js';

/** Purposes of single-use user tokens. */
export type BackOfficeTokenPurpose = 'invite' | 'password_reset' | 'change_email';

/** Fields of a new user; the store assigns id and timestamps. */
export type NewBackOfficeUser = Pick<
  BackOfficeUser,
  'username' | 'normalizedUsername' | 'email' | 'normalizedEmail' | 'name' | 'passwordHash' | 'securityStamp' | 'isApproved' | 'invitedAt' | 'groups'
> & {
  /**
   * A single-use token (e.g. the invite) to store with the user. A store that implements `UserTokenStore`
   * must write it in the same transaction as the user, so neither exists without the other.
   */
  initialToken?: { purpose: BackOfficeTokenPurpose; tokenHash: string; expiresAt: Date } & Pick<BackOfficeUser, 'kind'>;
} & Pick<BackOfficeUser, 'kind'>;

/** Profile fields a store can update in place. */
export type BackOfficeUserProfileChanges = Partial<
  Pick<BackOfficeUser, 'username' | 'normalizedUsername' | 'email' | 'normalizedEmail' | 'name' | 'isApproved' | 'invitedAt' | 'lastLoginAt' | 'disabledReason' | 'disabledUntil'>
>;

/** Thrown by {@link BackOfficeUserStore.create} / `updateProfile` when email or username is taken. */
export class BackOfficeDuplicateUserError extends Error {
  constructor(readonly field: 'email' | 'username') {
    super(`duplicate ${field}`);
    this.name = 'BackOfficeDuplicateUserError';
  }
}

/**
 * Thrown by `BackOfficeUserManager.changeEmail` and `confirmEmailChange` (nothing written) when the move would give a
 * directory-managed user ({@link BackOfficeUser.directoryManagedAt}) another username (beyond ASCII letter case; with
 * `usernameIsEmail` the username follows the email): the key a password checker keyed by username (LDAP
 * `uid={username}`, or a mail filter) signs them in with, so the new one's directory password would sign in to them.
 */
export class BackOfficeDirectoryManagedRenameError extends Error {
  constructor() {
    super('directory-managed user: the username would change');
    this.name = 'BackOfficeDirectoryManagedRenameError';
  }
}

/** Core user store port (like ASP.NET Identity's `IUserStore`). Optional capabilities are separate interfaces. */
export interface BackOfficeUserStore {
  create(user: NewBackOfficeUser, now: Date): Promise<BackOfficeUser>;
  findById(id: string): Promise<BackOfficeUser | null>;
  findByNormalizedUsername(normalizedUsername: string): Promise<BackOfficeUser | null>;
  findByNormalizedEmail(normalizedEmail: string): Promise<BackOfficeUser | null>;
  updateProfile(userId: string, changes: BackOfficeUserProfileChanges, now: Date): Promise<void>;
  /**
   * Deletes the user. False when there was no such user (nothing deleted: a concurrent request deleted it first), so
   * the manager answers `not_found` and its caller audits no deletion; a store that answers nothing (`void`) is taken
   * to have deleted it. The built-in stores answer. A store that answers must answer `true` only when this call
   * removed the row and `false` for an id with no user (gone already, never there, or not an id the store could
   * hold), and of deletes of one user sent at once exactly one answers `true` (the row count of the `DELETE`, not a
   * read before it); `runBackOfficeStoreContract` checks it. Only `delete` answers so: the other writes answer nothing.
   */
  delete(userId: string): Promise<boolean | void>;
  count(): Promise<number>;
}

export interface UserPasswordStore {
  /**
   * Sets the hash (or removes it with `null`) and the security stamp in one write. `rehashOf` marks a silent
   * upgrade of the same password (stronger cost), which is not a password change: it is written only while the
   * stored hash is still `rehashOf`, so it never undoes a password change made meanwhile. `unlessDirectoryManaged`
   * (an admin's forced reset): written only while the user is not marked directory-managed
   * ({@link UserDirectoryManagedStore}), checked under the lock of the write (the user's row), so a mark committed
   * after the caller read the user is seen: false, nothing written. `forcedReset` (with a `null` hash: the removal of
   * `BackOfficeUserManager.removePassword`) sets `passwordResetForcedAt` to `now`; every other write but a
   * `rehashOf` one (a new password, a removal that is no forced reset) sets it to null. A store that does not keep
   * `passwordResetForcedAt` may ignore it only by leaving the field absent on the users it reads (the manager then
   * falls back to `lastPasswordChangeAt`): one that reads it back null after a forced reset lets a passkey sign in
   * while the reset is pending (`runBackOfficeStoreContract` checks this). A store that
   * answers nothing (`void`) is taken to have written it.
   */
  setPasswordHash(
    userId: string,
    passwordHash: string | null,
    securityStamp: string,
    now: Date,
    options?: { rehashOf?: string; unlessDirectoryManaged?: boolean; forcedReset?: boolean },
  ): Promise<boolean | void>;
}

/**
 * The `passwordResetForcedAt` that a {@link UserPasswordStore.setPasswordHash} write other than a `rehashOf` one
 * leaves: `now` for a forced reset's removal (`forcedReset` with a `null` hash), null for any other write of the
 * password (a new one ends a pending reset). For the built-in stores and a host's own.
 */
export function passwordResetForcedAtAfterWrite(passwordHash: string | null, now: Date, options: { forcedReset?: boolean }): Date | null {
  return options.forcedReset === true && passwordHash === null ? now : null;
}

/**
 * The directory-managed mark ({@link BackOfficeUser.directoryManagedAt}). Without it no user is marked, and
 * password-reset links work for users the directory authenticated (the offboarding gap this mark closes).
 */
export interface UserDirectoryManagedStore {
  /** Sets `directoryManagedAt` to `now` unless it is set already (the first time stays); true when this call set it. */
  markDirectoryManaged(userId: string, now: Date): Promise<boolean>;
  /** Clears `directoryManagedAt`; true when it was set. */
  clearDirectoryManaged(userId: string, now: Date): Promise<boolean>;
}

export interface UserSecurityStampStore {
  setSecurityStamp(userId: string, securityStamp: string, now: Date): Promise<void>;
}

/** Lockout policy passed to the atomic counter. */
export interface LockoutPolicy {
  maxFailedAccessAttempts: number;
  /** When a lock that starts now ends. */
  lockoutEnd: Date;
}

/** Result of one atomic failed-access record. */
export interface FailedAccessResult {
  /** The attempt was not counted because the account was already locked (or lockout is off for it). */
  alreadyLocked: boolean;
  /** This very attempt locked the account. */
  lockedNow: boolean;
  accessFailedCount: number;
  lockoutEnd: Date | null;
}

export interface UserLockoutStore {
  /** Atomically counts one failure and locks when the count reaches the maximum (race-safe). */
  recordFailedAccess(userId: string, policy: LockoutPolicy, now: Date): Promise<FailedAccessResult>;
  resetAccessFailedCount(userId: string, now: Date): Promise<void>;
  setLockoutEnd(userId: string, lockoutEnd: Date | null, now: Date): Promise<void>;
}

/** Counts failed logins for usernames that match no user, so lockout is no account oracle. */
export interface UnknownUserLockoutStore {
  /** `usernameKey` is a keyed hash of the attempted username (the text is never stored). */
  getUnknownUserLockoutEnd(usernameKey: string, now: Date): Promise<Date | null>;
  recordFailedAccessForUnknownUser(usernameKey: string, policy: LockoutPolicy, now: Date): Promise<FailedAccessResult>;
}

export interface UserTwoFactorStore {
  setTwoFactorEnabled(userId: string, enabled: boolean, securityStamp: string, now: Date): Promise<void>;
}

/**
 * Keeps the end of a user's grace period for enrolling in 2FA when a group requires it
 * (`twoFactor.enforcementGraceHours`). Without it there is no grace period: the requirement applies at once.
 */
export interface UserTwoFactorSetupDeadlineStore {
  /** Sets (or with null clears) `twoFactorSetupDeadline`, which the store's user reads then return. */
  setTwoFactorSetupDeadline(userId: string, deadline: Date | null): Promise<void>;
}

export interface UserPhoneNumberStore {
  setPhoneNumber(userId: string, phoneNumber: string | null, confirmed: boolean, now: Date): Promise<void>;
}

/**
 * The optional last argument of the methods that store a new link ({@link UserTokenStore.replaceToken},
 * {@link UserTokenHandoverStore.addToken}, {@link UserEmailChangeStore.replaceEmailChangeToken},
 * {@link UserEmailChangeHandoverStore.addEmailChangeToken}).
 */
export interface UserTokenIssueOptions {
  /**
   * The normalized email address the link is mailed to (the `normalizedEmail` the caller read the user with). Given,
   * the store writes nothing (false) unless the user, read under the same lock as the write, still has it: an email
   * change (which voids the user's links in its transaction) that committed after the caller's read then refuses the
   * link instead of leaving it live for the old mailbox (OWASP ASVS 4.0 2.5.6, 1.11.3). A store written before this
   * option, which ignores it, still works: the manager also re-reads the user from the store once the link is
   * written, and drops the link when the address moved.
   */
  addressedTo?: string;
}

/** Single-use tokens, stored as SHA-256 only. */
export interface UserTokenStore {
  /**
   * Stores a new token and voids the user's other live tokens of that purpose, only while the user may still get a
   * link (as {@link UserTokenHandoverStore.addToken}: it exists and is not disabled, a timed disable whose end has
   * passed not counting; for `password_reset` and `invite`, not marked directory-managed), checked under the lock
   * of the write (the user's row): false, nothing written, when not. With `options.addressedTo`, likewise only while
   * the user still has that normalized email ({@link UserTokenIssueOptions}).
   * A store that answers nothing (`void`) is taken to have stored it.
   */
  replaceToken(userId: string, purpose: BackOfficeTokenPurpose, tokenHash: string, expiresAt: Date, now: Date, options?: UserTokenIssueOptions): Promise<boolean | void>;
  /** Uses the token up; true for exactly one caller while it is live. */
  consumeToken(userId: string, purpose: BackOfficeTokenPurpose, tokenHash: string, now: Date): Promise<boolean>;
  isTokenLive(userId: string, purpose: BackOfficeTokenPurpose, tokenHash: string, now: Date): Promise<boolean>;
  /**
   * Voids the user's live tokens of that purpose; `change_email` voids the email-change links of
   * {@link UserEmailChangeStore} too (every password change voids them: see the store contract).
   */
  voidTokens(userId: string, purpose: BackOfficeTokenPurpose, now: Date): Promise<void>;
}

/**
 * How long a token stored by `addToken` counts as still being mailed ({@link UserTokenHandoverStore}): 25 minutes, the
 * longest a request may take from storing it to its hand-over (`email.listenerTimeoutMs` at most 10 minutes, then
 * `email.sendTimeoutMs` at most 10 minutes) plus 5 minutes of margin (rendering, the database, clock steps between
 * instances). An older one never handed over belongs to a request that died (OWASP ASVS 4.0 2.5.x / 5.0 6.4.x): a
 * hand-over voids it like any other live link.
 */
export const BACKOFFICE_TOKEN_HAND_OVER_PENDING_MAX_AGE_MS = 25 * 60_000;

/**
 * Optional beside {@link UserTokenStore}: a new link that takes over from the live one only once it was delivered.
 * `addToken` stores a token and leaves the user's other live tokens of that purpose alone; `keepOnlyToken` then
 * voids those others, but only while the new one is still live (true), atomically: of concurrent hand-overs the
 * last one to finish wins. A hand-over leaves live the tokens `addToken` stored whose own hand-over has not run yet
 * (their email is still being sent; each request hands over once its email was accepted, and its hand-over voids
 * the earlier one), so when requests for one user's link meet, the link of the email accepted last is the live one
 * and no request mails twice (a store that voids them too leaves the link of the first hand-over, which may be in
 * an older email). A token counts as still being sent only while younger than
 * {@link BACKOFFICE_TOKEN_HAND_OVER_PENDING_MAX_AGE_MS} (its `now` at `addToken`): a request that died between the accepted email and
 * its hand-over (a crash, a database error) or whose drop after a failed send failed leaves it waiting for a hand-over
 * that never comes, and the next hand-over voids it once older. A token whose email failed is dropped with
 * `consumeToken`. Without this capability the manager voids the old link before the email goes out.
 */
export interface UserTokenHandoverStore {
  /**
   * Stores the token only while the user may still get a link: it exists and is not disabled (a timed disable whose
   * end has passed does not count), checked under the same lock as the write, the user's row (a disable writes that
   * row and voids the links in one transaction), so a link issued while the user is being disabled is either voided
   * by the disable or refused: false, nothing stored. A `password_reset` or `invite` token likewise only while the
   * user is not marked directory-managed ({@link UserDirectoryManagedStore}: marking voids those links in one
   * transaction), so a link issued while the directory takes the user over is voided or refused. With
   * `options.addressedTo`, likewise only while the user still has that normalized email ({@link UserTokenIssueOptions}).
   * A store that answers nothing (`void`) is taken to have stored it.
   */
  addToken(userId: string, purpose: BackOfficeTokenPurpose, tokenHash: string, expiresAt: Date, now: Date, options?: UserTokenIssueOptions): Promise<boolean | void>;
  keepOnlyToken(userId: string, purpose: BackOfficeTokenPurpose, tokenHash: string, now: Date): Promise<boolean>;
}

/** An authenticator secret as stored: encrypted, with the last time step used (replay protection). */
export interface StoredAuthenticatorKey {
  encryptedSecret: string;
  confirmed: boolean;
  lastUsedStep: number | null;
}

/** Per-provider authenticator secrets (like ASP.NET Identity's `IUserAuthenticatorKeyStore`). */
export interface UserAuthenticatorKeyStore {
  getAuthenticatorKey(userId: string, provider: string): Promise<StoredAuthenticatorKey | null>;
  /**
   * Stores an unconfirmed key, replacing any earlier one of that provider, but not a confirmed key while the user has
   * 2FA on, read under the lock of the write (the user's row): then nothing is written and the answer is false, as for
   * no such user. A setup checked "2FA is off" on a copy of the user read before an enable committed; replacing the key
   * that enable confirmed left 2FA on with a key no code of the person's app is accepted for (OWASP ASVS 4.0 1.11.3).
   * A store that answers nothing (`void`) is taken to have stored it.
   */
  setAuthenticatorKey(userId: string, provider: string, encryptedSecret: string, now: Date): Promise<boolean | void>;
  /**
   * Records `step` as used; false when `step` is not newer than the last used one. With `confirm` it confirms an
   * unconfirmed key (false when the key is confirmed already: an enrolment is confirmed once, also by concurrent
   * callers); without it only a confirmed key is used. With `encryptedSecret` (the stored value the code was
   * checked against) it is false too when the key holds another secret by now (a setup replaced it meanwhile), so
   * a code only ever confirms or uses the secret it proved.
   */
  useAuthenticatorStep(userId: string, provider: string, step: number, confirm: boolean, now: Date, encryptedSecret?: string): Promise<boolean>;
  removeAuthenticatorKey(userId: string, provider: string): Promise<void>;
}

/** Single-use recovery codes, stored as keyed hashes (like `IUserTwoFactorRecoveryCodeStore`). */
export interface UserRecoveryCodeStore {
  /**
   * Replaces the user's whole set of codes. With `options.whileTwoFactorEnabled` (a new set asked for by a user with
   * 2FA on) it writes nothing and answers false unless the user, read under the lock of the write (the user's row),
   * still has 2FA on: a disable turns the flag off and deletes the codes under that lock in one transaction, so a new
   * set is either written before it (and deleted by it) or refused after it, never left behind with 2FA off (OWASP
   * ASVS 4.0 1.11.3). A store that answers nothing (`void`) is taken to have stored it; one written before the option,
   * which ignores it, still works, without that guarantee.
   */
  replaceRecoveryCodes(userId: string, codeHashes: string[], now: Date, options?: { whileTwoFactorEnabled?: boolean }): Promise<boolean | void>;
  /** Uses up the unused code whose stored hash is any of `codeHashes`; true for exactly one caller. */
  redeemRecoveryCode(userId: string, codeHashes: string | readonly string[], now: Date): Promise<boolean>;
  countRecoveryCodes(userId: string): Promise<number>;
}

/** A registered WebAuthn credential (passkey) as stored. The public key is COSE-encoded, as the authenticator sent it. */
export interface StoredPasskey {
  /** Row id (uuid); what clients use to rename or remove it. */
  id: string;
  userId: string;
  /** Base64url credential id, unique across all users. */
  credentialId: string;
  publicKey: Uint8Array;
  /** Last signature counter seen (0 for authenticators without counters). */
  counter: number;
  /** Transports the authenticator reported (`internal`, `hybrid`, `usb`, ...). */
  transports: string[];
  name: string;
  /** `singleDevice` or `multiDevice` (synced passkey). */
  deviceType: string;
  backedUp: boolean;
  createdAt: Date;
  lastUsedAt: Date | null;
}

/** Fields of a new passkey; the store assigns id and timestamps. */
export type NewStoredPasskey = Pick<StoredPasskey, 'credentialId' | 'publicKey' | 'counter' | 'transports' | 'name' | 'deviceType' | 'backedUp'>;

/** What a WebAuthn challenge was issued for. */
export type PasskeyChallengePurpose = 'registration' | 'authentication' | 'second_factor' | 'reauthentication';

/** What {@link UserPasskeyStore.addPasskey} decides under its write's lock. */
export interface AddPasskeyOptions {
  maxPerUser?: number;
  refuseIf?: (user: BackOfficeUser) => boolean;
}

/** Thrown by {@link UserPasskeyStore.addPasskey} when the credential id is registered already. */
export class BackOfficeDuplicatePasskeyError extends Error {
  constructor() {
    super('duplicate passkey credential id');
    this.name = 'BackOfficeDuplicatePasskeyError';
  }
}

/**
 * Thrown by {@link UserPasskeyStore.addPasskey} when `options.refuseIf` is true of the user read under the write's
 * lock (an admin's forced password reset pending).
 */
export class BackOfficePasskeyRefusedError extends Error {
  constructor() {
    super('passkey refused for this user');
    this.name = 'BackOfficePasskeyRefusedError';
  }
}

/** Thrown by {@link UserPasskeyStore.addPasskey} when the user already holds `maxPerUser` passkeys. */
export class BackOfficeTooManyPasskeysError extends Error {
  constructor() {
    super('too many passkeys');
    this.name = 'BackOfficeTooManyPasskeysError';
  }
}

/**
 * Passkeys (WebAuthn credentials). Their ceremony challenges are pending sign-in steps (`BackOfficePendingSignInStore`,
 * kind `passkey`). A store without this capability turns passkeys off.
 */
export interface UserPasskeyStore {
  listPasskeys(userId: string): Promise<StoredPasskey[]>;
  /**
   * Optional: whether the user has any passkey, without reading them (the built-in passkey provider's `isSetUp`,
   * asked by `GET /auth/me` for users with 2FA). Without it, {@link listPasskeys} is asked.
   */
  hasPasskeys?(userId: string): Promise<boolean>;
  findPasskeyByCredentialId(credentialId: string): Promise<StoredPasskey | null>;
  /**
   * @throws BackOfficeDuplicatePasskeyError when the credential id is taken.
   * @throws BackOfficeTooManyPasskeysError when `options.maxPerUser` is given and the user holds that many already:
   * checked atomically with the insert (registrations finished at once must not pass the limit together). A store
   * that ignores the option leaves only the manager's earlier count, which concurrent registrations can pass.
   * @throws BackOfficePasskeyRefusedError when `options.refuseIf` is given and true of the user as read under the
   * same lock as the insert (the user's row, which a forced reset's password write also takes): the manager refuses
   * a passkey while an admin's forced reset is pending, so a registration in flight is either written before the
   * reset (which then removes it) or refused. A store that ignores the option leaves a registration in flight
   * added after the reset listed the passkeys (OWASP ASVS 5.0 6.4.x).
   */
  addPasskey(userId: string, passkey: NewStoredPasskey, now: Date, options?: AddPasskeyOptions): Promise<StoredPasskey>;
  /** False when the user has no passkey with that id. */
  renamePasskey(userId: string, passkeyId: string, name: string, now: Date): Promise<boolean>;
  /**
   * False when the user has no passkey with that id, or (with `keepAtLeast`) when the user holds no more than
   * `keepAtLeast` passkeys: counted atomically with the delete, so removals sent at once cannot both pass it. Host
   * stores should honour it (the store contract checks it): one that ignores the argument leaves only the manager's
   * count from before the delete, which removals sent at once can pass.
   */
  removePasskey(userId: string, passkeyId: string, keepAtLeast?: number): Promise<boolean>;
  /**
   * Removes every passkey of the user in one write (one statement or transaction: all or none; when it throws, none
   * went) and answers the passkeys removed. An admin's forced password reset uses it. Optional: without it the manager
   * removes them one at a time with {@link removePasskey} (a failure midway then leaves the rest).
   */
  removeAllPasskeys?(userId: string): Promise<StoredPasskey[]>;
  /**
   * Records a use with the authenticator's new signature counter, atomically: written only while the stored
   * counter is lower (or both are 0, for authenticators without counters). False means the counter did not
   * move forward: a cloned authenticator, or a concurrent use.
   */
  recordPasskeyUse(passkeyId: string, newCounter: number, now: Date): Promise<boolean>;
}

export interface BackOfficeGroup {
  alias: string;
  name: string;
}

export interface UserGroupStore {
  listGroups(): Promise<BackOfficeGroup[]>;
  /** Replaces the user's groups. */
  setGroups(userId: string, aliases: string[]): Promise<void>;
  /**
   * Users of a group who are approved. With `now`: only those who can sign in at that time (approved, not
   * waiting for an invite to be accepted, not locked out); `exceptUserId` leaves one user out of the count.
   */
  countApprovedInGroup(alias: string, options?: { now?: Date; exceptUserId?: string }): Promise<number>;
  /** Runs `work` in a transaction holding an exclusive lock on the group (serialises "last admin" checks). */
  withGroupLock<T>(alias: string, work: (store: BackOfficeUserStore & UserGroupStore) => Promise<T>): Promise<T>;
  /**
   * Optional, for stores with row locks: in the caller's transaction, locks (shared, to its end) the groups the users
   * are in and the groups named `aliases`, so that a re-check reading the users next waits for a concurrent group edit
   * and sees the permissions it gave (OWASP ASVS 4.0 4.1.3, 5.0 8.2.1). Called before every re-check of a user as
   * stored (`findAsStored`). Stores without it are read as they are.
   */
  lockGroupsOf?(userIds: readonly string[], aliases?: readonly string[]): Promise<void>;
}

/** One external login of a user (ASP.NET Identity's `UserLoginInfo`). */
export interface BackOfficeUserLogin {
  /** The provider's `name` in `externalLogins`, e.g. `oidc`. */
  provider: string;
  /** The user's stable key at the provider (the OpenID Connect `sub`). */
  providerKey: string;
  /** The provider's display name when the login was added. */
  displayName: string;
  createdAt: Date;
}

/** Thrown by {@link UserLoginStore.addLogin} when the provider key (or the user's login of that provider) exists. */
export class BackOfficeDuplicateLoginError extends Error {
  constructor() {
    super('duplicate login');
    this.name = 'BackOfficeDuplicateLoginError';
  }
}

/** External logins (like ASP.NET Identity's `IUserLoginStore`): provider + key, unique; one login per provider and user. */
export interface UserLoginStore {
  /** @throws BackOfficeDuplicateLoginError when provider + key is linked already, or the user has a login of that provider. */
  addLogin(userId: string, login: Omit<BackOfficeUserLogin, 'createdAt'>, now: Date): Promise<void>;
  /**
   * Removes the user's login of `provider`, only while the user keeps more than `keepAtLeast` logins before the
   * removal (checked atomically); true when one was removed.
   */
  removeLogin(userId: string, provider: string, keepAtLeast?: number): Promise<boolean>;
  /** The user's logins, oldest first. */
  getLogins(userId: string): Promise<BackOfficeUserLogin[]>;
  /** The user id that owns provider + key, or null. */
  findUserIdByLogin(provider: string, providerKey: string): Promise<string | null>;
}

export interface BackOfficeUserQuery {
  skip: number;
  take: number;
  state?: BackOfficeUserState;
  /** Case-insensitive text in username, email or name. */
  filter?: string;
  now: Date;
}

export interface UserQueryStore {
  /** `totalExact: false` when `total` is an estimate (stores may estimate beyond 10,000 matches). */
  list(query: BackOfficeUserQuery): Promise<{ items: BackOfficeUser[]; total: number; totalExact?: boolean }>;
}

/**
 * The email-change link: a single-use token that carries the new address, kept as a `change_email` token so that
 * `UserTokenStore.voidTokens(userId, 'change_email')` voids it (a password change does). The `tokenHash` the manager
 * hands these methods (and `isTokenLive(userId, 'change_email', ...)`) is not the token's bare SHA-256 but that bound
 * to the security stamp the link was issued under (`BackOfficeUserManager.emailChangeTokenHash`, protected static), so a stamp change
 * voids the link; the store keeps and compares it as an opaque hash. Check a link with
 * `userManager.verifyUserToken(user, 'change_email', token)`, not with `isTokenLive` and the token's SHA-256.
 */
export interface UserEmailChangeStore {
  /**
   * Stores the token with the address it confirms, voiding the user's earlier email-change tokens, in one transaction;
   * only while the user may still get a link (as {@link UserTokenStore.replaceToken}, `options.addressedTo` included):
   * false, nothing written, when not.
   */
  replaceEmailChangeToken(userId: string, tokenHash: string, newEmail: string, expiresAt: Date, now: Date, options?: UserTokenIssueOptions): Promise<boolean | void>;
  /** Uses the live token up and returns its new address; exactly one caller gets it, the others null. */
  consumeEmailChangeToken(userId: string, tokenHash: string, now: Date): Promise<string | null>;
}

/**
 * Optional beside {@link UserEmailChangeStore}: the {@link UserTokenHandoverStore} hand-over for email-change links, so a
 * new request takes over from the pending link only once its confirmation email was accepted. `addEmailChangeToken`
 * stores the token with the address it confirms and leaves the user's other email-change links alone;
 * `keepOnlyToken(userId, 'change_email', ...)` then hands over; a token whose email failed is dropped with
 * `consumeEmailChangeToken`. Without this capability a new request voids the pending link before its email goes out.
 */
export interface UserEmailChangeHandoverStore extends UserEmailChangeStore, UserTokenHandoverStore {
  /** Only while the user may still get a link, as {@link UserTokenHandoverStore.addToken} (`options.addressedTo` included). */
  addEmailChangeToken(userId: string, tokenHash: string, newEmail: string, expiresAt: Date, now: Date, options?: UserTokenIssueOptions): Promise<boolean | void>;
}

/** Rows of the user store that can expire (maintenance calls this). */
export interface PrunableUserStore {
  /**
   * Deletes unknown-username counters a day after their last failure (unless locked), resets known users' failed-attempt
   * counts by the same rule (both counted in `loginAttempts`: a known account's count must not outlive an unknown
   * username's, or the next guess's 423 tells them apart), and deletes tokens 30 days after they expired.
   */
  prune(now: Date): Promise<{ loginAttempts: number; tokens: number }>;
}

export interface TransactionalUserStore<S = BackOfficeUserStore> {
  /** Runs `work` with a store bound to one database transaction. */
  transaction<T>(work: (store: S) => Promise<T>): Promise<T>;
}

const has = (store: object, ...methods: string[]) =>
  methods.every((m) => typeof (store as Record<string, unknown>)[m] === 'function');

export const isUserPasswordStore = (s: object): s is UserPasswordStore => has(s, 'setPasswordHash');
export const isUserDirectoryManagedStore = (s: object): s is UserDirectoryManagedStore => has(s, 'markDirectoryManaged', 'clearDirectoryManaged');
export const isUserSecurityStampStore = (s: object): s is UserSecurityStampStore => has(s, 'setSecurityStamp');
export const isUserLockoutStore = (s: object): s is UserLockoutStore =>
  has(s, 'recordFailedAccess', 'resetAccessFailedCount', 'setLockoutEnd');
export const isUnknownUserLockoutStore = (s: object): s is UnknownUserLockoutStore =>
  has(s, 'getUnknownUserLockoutEnd', 'recordFailedAccessForUnknownUser');
export const isUserTwoFactorStore = (s: object): s is UserTwoFactorStore => has(s, 'setTwoFactorEnabled');
export const isUserTwoFactorSetupDeadlineStore = (s: object): s is UserTwoFactorSetupDeadlineStore => has(s, 'setTwoFactorSetupDeadline');
export const isUserPhoneNumberStore = (s: object): s is UserPhoneNumberStore => has(s, 'setPhoneNumber');
export const isUserTokenStore = (s: object): s is UserTokenStore =>
  has(s, 'replaceToken', 'consumeToken', 'isTokenLive', 'voidTokens');
export const isUserTokenHandoverStore = (s: object): s is UserTokenHandoverStore => has(s, 'addToken', 'keepOnlyToken');
export const isUserAuthenticatorKeyStore = (s: object): s is UserAuthenticatorKeyStore =>
  has(s, 'getAuthenticatorKey', 'setAuthenticatorKey', 'useAuthenticatorStep', 'removeAuthenticatorKey');
export const isUserRecoveryCodeStore = (s: object): s is UserRecoveryCodeStore =>
  has(s, 'replaceRecoveryCodes', 'redeemRecoveryCode', 'countRecoveryCodes');
export const isUserPasskeyStore = (s: object): s is UserPasskeyStore =>
  has(s, 'listPasskeys', 'findPasskeyByCredentialId', 'addPasskey', 'renamePasskey', 'removePasskey', 'recordPasskeyUse');
export const isUserGroupStore = (s: object): s is UserGroupStore => has(s, 'listGroups', 'setGroups', 'countApprovedInGroup', 'withGroupLock');
export const isUserLoginStore = (s: object): s is UserLoginStore => has(s, 'addLogin', 'removeLogin', 'getLogins', 'findUserIdByLogin');
export const isUserQueryStore = (s: object): s is UserQueryStore => has(s, 'list');
export const isUserEmailChangeStore = (s: object): s is UserEmailChangeStore => has(s, 'replaceEmailChangeToken', 'consumeEmailChangeToken');
export const isUserEmailChangeHandoverStore = (s: object): s is UserEmailChangeHandoverStore =>
  isUserEmailChangeStore(s) && has(s, 'addEmailChangeToken', 'keepOnlyToken');
export const isPrunableUserStore = (s: object): s is PrunableUserStore => has(s, 'prune');
export const isTransactionalUserStore = (s: object): s is TransactionalUserStore => has(s, 'transaction');
