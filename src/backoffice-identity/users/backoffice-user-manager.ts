import { AsyncLocalStorage } from 'node:async_hooks';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { BackOfficeApiClientStore } from '../api-users/api-client-store.interface.js';
import { abortable } from '../common/abortable-transaction.js';
import type { BackOfficeClock } from '../common/clock.js';
import { randomToken, sha256Hex } from '../common/crypto.js';
import type { BackOfficeErrorDescriber } from '../common/error-describer.js';
import { IdentityResult, type IdentityError } from '../common/identity-result.js';
import { CONTROL_CHARACTERS, differsBeyondAsciiCase, normalizeLookupKey } from '../common/lookup-normalizer.js';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import type { NotificationPublisher } from '../notifications/notification-publisher.service.js';
import {
  type BackOfficeNotification,
  type BackOfficeNotificationInit,
  UserDirectoryManagedChangedNotification,
  UserDisabledNotification,
  UserEnabledNotification,
  UserGroupsChangedNotification,
  UserPasskeyAddedNotification,
  UserPasskeyRemovedNotification,
  UserPasskeyRenamedNotification,
  UserLockedNotification,
  UserLoginFailedNotification,
  UserLoginLinkedNotification,
  UserLoginUnlinkedNotification,
  UserPasswordChangedNotification,
  UserPasswordResetNotification,
  UserResetAccessFailedCountNotification,
  UserRecoveryCodesRegeneratedNotification,
  UserTwoFactorDisabledNotification,
  UserTwoFactorEnabledNotification,
  UserSessionsRevokedNotification,
  UserUnlockedNotification,
  UsersImportedNotification,
  type BackOfficeCredentialCheckVia,
} from '../notifications/notifications.js';
import type { TwoFactorProvider, TwoFactorVerifyOutcome } from '../two-factor/two-factor-provider.interface.js';
import { hashRecoveryCode, legacyRecoveryCodeHash, newRecoveryCode, RECOVERY_PROVIDER } from '../two-factor/recovery-codes.js';
import { PASSKEY_PROVIDER } from '../passkeys/passkey-two-factor.provider.js';
import { keyedHash } from '../common/keyed-hash.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { isPendingInvitee, redactSecretsWhenLogged, type BackOfficeAuthorizedWriteOptions, type BackOfficeUser, type BackOfficeUserKind, type BackOfficeWriteAuthorizer } from './backoffice-user.js';
import { BackOfficeUserManagerDependencies } from './backoffice-user-manager-dependencies.js';
import { FallbackPasswordChecker, type BackOfficePasswordChecker } from './passwords/password-checker.js';
import type { BackOfficePasswordHasher } from './passwords/password-hasher.js';
import { CommonPasswordValidator, PolicyPasswordValidator } from './passwords/password-validators.js';
import {
  BackOfficeDuplicateLoginError,
  BackOfficeDirectoryManagedRenameError,
  BackOfficeDuplicateUserError,
  type BackOfficeUserLogin,
  type BackOfficeUserProfileChanges,
  type BackOfficeUserStore,
  type FailedAccessResult,
  type NewBackOfficeUser,
  isTransactionalUserStore,
  isUnknownUserLockoutStore,
  isUserGroupStore,
  isUserLockoutStore,
  isUserLoginStore,
  isUserDirectoryManagedStore,
  isUserPasswordStore,
  isUserPhoneNumberStore,
  isUserRecoveryCodeStore,
  isUserSecurityStampStore,
  isUserTokenStore,
  isUserTokenHandoverStore,
  isUserEmailChangeStore,
  isUserEmailChangeHandoverStore,
  isUserTwoFactorStore,
  isUserTwoFactorSetupDeadlineStore,
  isUserPasskeyStore,
  type BackOfficeTokenPurpose,
  BackOfficeDuplicatePasskeyError,
  BackOfficePasskeyRefusedError,
  BackOfficeTooManyPasskeysError,
  type NewStoredPasskey,
  type StoredPasskey,
  type UserPasskeyStore,
  type UnknownUserLockoutStore,
  type UserGroupStore,
  type UserLockoutStore,
  type UserLoginStore,
  type UserPasswordStore,
  type UserPhoneNumberStore,
  type UserRecoveryCodeStore,
  type UserSecurityStampStore,
  type UserTokenStore,
  type UserTokenHandoverStore,
  type UserTokenIssueOptions,
  type UserEmailChangeHandoverStore,
  type UserTwoFactorStore,
} from './stores/user-store.interface.js';
import { findAsStored } from './stores/find-as-stored.js';
import { BackOfficeUserImporter, type ImportAuthorizer } from './import/backoffice-user-importer.js';
import { type ImportUserResult, type ImportUsersOptions, summarizeImport } from './import/user-import.js';
import { DefaultUserValidator } from './user-validators.js';
import { BackOfficeNotSupportedError } from './not-supported.error.js';
import { toStorableText } from '../common/storable-text.js';
import type { BackOfficeUserCandidate, PasswordValidator, UserValidator } from './validators.interface.js';
import { addsAny, twoFactorWeakening } from '../common/grants.js';

/**
 * Filled in by {@link BackOfficeUserManager.checkPassword} and `checkUnknownUserPassword`: `unavailable` is true
 * when the password checker could not decide (its `unavailable` answer, e.g. a directory outage).
 */
export interface BackOfficePasswordCheckOutcome {
  unavailable?: boolean;
  /** The password checker answered `valid` (the external system, not the local hash, accepted the password). */
  vouched?: boolean;
  /**
   * The password checker does not know the user (`fallback`) and the user has no local password hash (signs in
   * through an external provider): no password of this user can be checked here.
   */
  noPasswordToCheck?: boolean;
}

/** Input of {@link BackOfficeUserManager.createUser}. */
export interface CreateBackOfficeUserInput {
  email: string;
  name: string;
  /** Defaults to the email when `usernameIsEmail` is on. */
  username?: string;
  /** Omit for a user without a password (e.g. invited, or external login only). */
  password?: string;
  groups?: string[];
  isApproved?: boolean;
  /** Marks the user as invited (state `invited` until the invite is accepted). */
  invited?: boolean;
  /** `api` for a machine user (see `BackOfficeApiUserService`); default `person`. */
  kind?: BackOfficeUserKind;
  /**
   * Re-checks the caller's right to give the new user its groups, on the user as stored right after the insert, in
   * the insert's transaction (throw to refuse: the user is not kept). The groups' permissions it sees are the ones
   * the membership was written with: a group edit committed meanwhile is seen, and one not yet committed holds the
   * group's row, so the insert waits for it (the built-in stores: the membership's foreign key takes the group's row
   * FOR KEY SHARE, the group store's edit FOR UPDATE), or, once the insert holds the row, the edit waits for the
   * creation and then finds the new member (OWASP ASVS 4.0 4.1.3, 5.0 8.2.1). The HTTP routes pass
   * `mayAssignAsStored` for a caller outside `admin`.
   */
  authorize?: BackOfficeWriteAuthorizer;
}

/** An enabled person in `admin` (what the last-admin rule keeps at least one of, with the sign-in checks of the count). */
const isEnabledAdmin = (user: BackOfficeUser): boolean => user.isApproved && user.kind !== 'api' && user.groups.includes('admin');

/** Far-future lockout end used for "locked until an admin unlocks" (`lockout.durationMinutes: 0`). */
export const LOCKED_UNTIL_UNLOCKED = new Date('9999-12-31T00:00:00.000Z');
const MAX_LOOKUP_LENGTH = 256;
/** The emailed links a password change voids (see `voidPasswordBoundTokens`). */
const PASSWORD_BOUND_TOKEN_PURPOSES: readonly BackOfficeTokenPurpose[] = ['password_reset', 'invite', 'change_email'];

/**
 * What a write under {@link BackOfficeUserManager}'s `writeUnlessLastAdmin` tells of the user: `'no_user'` when it
 * found none (a delete that deleted no row), `'written'` when it wrote it, nothing when it cannot tell (the user is
 * read again). Never a store's own answer passed on: a host store may answer `false` for "nothing changed".
 */
type WriteAnswer = void | 'written' | 'no_user';

/** {@link BackOfficeUserManager.liftExpiredDisable}: the user as stored is no longer disabled with an ended `until`. */
class DisableNotEnded extends Error {
  constructor(readonly current: BackOfficeUser) {
    super('The disable has not ended');
  }
}

/**
 * The back-office user manager, modelled on ASP.NET Core Identity's `UserManager` as Umbraco uses it.
 * Meant to be extended: every method is overridable and a subclass needs no constructor.
 *
 * ```ts
 * class MyManager extends BackOfficeUserManager {
 *   override get supportsUserTwoFactor() { return false; }
 * }
 * BackOfficeIdentityModule.forRoot({ userManager: MyManager });
 * ```
 */
@Injectable()
export class BackOfficeUserManager {
  protected readonly logger = new Logger('BackOfficeUserManager');
  readonly store: BackOfficeUserStore;
  readonly options: ResolvedBackOfficeIdentityOptions;
  readonly errorDescriber: BackOfficeErrorDescriber;
  /** Run in order by {@link validatePassword}; push your own. */
  readonly passwordValidators: PasswordValidator[];
  /** Run in order by {@link validateUser}; push your own. */
  readonly userValidators: UserValidator[];
  protected readonly passwordHasher: BackOfficePasswordHasher;
  protected readonly passwordChecker: BackOfficePasswordChecker;
  protected readonly clock: BackOfficeClock;
  protected readonly notifications: NotificationPublisher;
  /** Registered second factors; `supportsUserTwoFactor` is false without any. */
  readonly twoFactorProviders: TwoFactorProvider[];
  /** API clients and bearer tokens, when registered: {@link setApproved} revokes an API user's tokens on disable. */
  protected readonly apiClientStore: BackOfficeApiClientStore | null;
  private dummyHash?: Promise<string>;
  /** The stamp {@link withSecurityStamp} announced for the calls it runs. */
  private readonly announcedSecurityStamp = new AsyncLocalStorage<string>();

  constructor(@Inject(BackOfficeUserManagerDependencies) deps: BackOfficeUserManagerDependencies) {
    this.store = deps.store;
    this.options = deps.options;
    this.errorDescriber = deps.errorDescriber;
    this.passwordHasher = deps.passwordHasher;
    this.passwordChecker = deps.passwordChecker;
    this.clock = deps.clock;
    this.notifications = deps.notifications;
    this.twoFactorProviders = [...deps.twoFactorProviders];
    this.apiClientStore = deps.apiClientStore ?? null;
    this.passwordValidators = [new PolicyPasswordValidator(deps.options.password, deps.errorDescriber)];
    if (deps.options.password.rejectCommon) this.passwordValidators.push(new CommonPasswordValidator(deps.errorDescriber));
    this.passwordValidators.push(...deps.options.passwordValidators);
    this.userValidators = [new DefaultUserValidator(deps.errorDescriber, deps.options.usernameIsEmail), ...deps.options.userValidators];
  }

  // ---- capabilities -------------------------------------------------------------------------------

  get supportsUserPassword(): boolean {
    return isUserPasswordStore(this.store);
  }
  get supportsUserLockout(): boolean {
    return isUserLockoutStore(this.store);
  }
  get supportsUserSecurityStamp(): boolean {
    return isUserSecurityStampStore(this.store);
  }
  /** True when the store keeps the 2FA flag and at least one provider is registered. */
  get supportsUserTwoFactor(): boolean {
    return isUserTwoFactorStore(this.store) && this.twoFactorProviders.length > 0;
  }
  /**
   * True when the store keeps the 2FA enrolment deadline (`UserTwoFactorSetupDeadlineStore`): without it a group's
   * `requireTwoFactor` applies at once, with no `twoFactor.enforcementGraceHours` grace period.
   */
  get supportsTwoFactorSetupDeadline(): boolean {
    return isUserTwoFactorSetupDeadlineStore(this.store);
  }
  get supportsUserPhoneNumber(): boolean {
    return isUserPhoneNumberStore(this.store);
  }
  get supportsUserTokens(): boolean {
    return isUserTokenStore(this.store);
  }
  get supportsUserGroups(): boolean {
    return isUserGroupStore(this.store);
  }
  /** True when the `passkeys` option is set and the store keeps passkeys (`UserPasskeyStore`). */
  get supportsUserPasskeys(): boolean {
    return this.options.passkeys !== null && isUserPasskeyStore(this.store);
  }

  /** True when the store keeps external logins (`UserLoginStore`); without it external providers are off. */
  get supportsUserLogin(): boolean {
    return isUserLoginStore(this.store);
  }

  /** True when the store keeps single-use recovery codes (`UserRecoveryCodeStore`); without it 2FA has none. */
  get supportsUserRecoveryCodes(): boolean {
    return isUserRecoveryCodeStore(this.store);
  }

  /** True when the store counts and locks usernames that match no user (`UnknownUserLockoutStore`). */
  get supportsUnknownUserLockout(): boolean {
    return isUnknownUserLockoutStore(this.store);
  }

  // ---- typed capability accessors (ASP.NET Identity's GetPasswordStore() and friends) ----------------
  // Each returns the store as the capability interface, or throws BackOfficeNotSupportedError (`not_supported`).

  /** The store as a `UserPasswordStore`. @throws BackOfficeNotSupportedError */
  getPasswordStore(): UserPasswordStore {
    return this.capability(isUserPasswordStore, 'UserPasswordStore');
  }
  /** The store as a `UserLockoutStore`. @throws BackOfficeNotSupportedError */
  getLockoutStore(): UserLockoutStore {
    return this.capability(isUserLockoutStore, 'UserLockoutStore');
  }
  /** The store as an `UnknownUserLockoutStore`. @throws BackOfficeNotSupportedError */
  getUnknownUserLockoutStore(): UnknownUserLockoutStore {
    return this.capability(isUnknownUserLockoutStore, 'UnknownUserLockoutStore');
  }
  /** The store as a `UserSecurityStampStore`. @throws BackOfficeNotSupportedError */
  getSecurityStampStore(): UserSecurityStampStore {
    return this.capability(isUserSecurityStampStore, 'UserSecurityStampStore');
  }
  /** The store as a `UserTwoFactorStore`. @throws BackOfficeNotSupportedError */
  getTwoFactorStore(): UserTwoFactorStore {
    return this.capability(isUserTwoFactorStore, 'UserTwoFactorStore');
  }
  /** The store as a `UserRecoveryCodeStore`. @throws BackOfficeNotSupportedError */
  getRecoveryCodeStore(): UserRecoveryCodeStore {
    return this.capability(isUserRecoveryCodeStore, 'UserRecoveryCodeStore');
  }
  /** The store as a `UserTokenStore`. @throws BackOfficeNotSupportedError */
  getTokenStore(): UserTokenStore {
    return this.capability(isUserTokenStore, 'UserTokenStore');
  }
  /** The store as a `UserGroupStore`. @throws BackOfficeNotSupportedError */
  getGroupStore(): UserGroupStore {
    return this.capability(isUserGroupStore, 'UserGroupStore');
  }
  /** The store as a `UserLoginStore` (external logins). @throws BackOfficeNotSupportedError */
  getLoginStore(): UserLoginStore {
    return this.capability(isUserLoginStore, 'UserLoginStore');
  }
  /** The store as a `UserPasskeyStore`. @throws BackOfficeNotSupportedError */
  getPasskeyStore(): UserPasskeyStore {
    return this.capability(isUserPasskeyStore, 'UserPasskeyStore');
  }
  /** The store as a `UserPhoneNumberStore`. @throws BackOfficeNotSupportedError */
  getPhoneNumberStore(): UserPhoneNumberStore {
    return this.capability(isUserPhoneNumberStore, 'UserPhoneNumberStore');
  }

  private capability<T extends object>(is: (store: object) => store is T, name: string, store: object = this.store): T {
    if (!is(store)) throw new BackOfficeNotSupportedError(name);
    return store;
  }

  // ---- lookup -------------------------------------------------------------------------------------

  /** The lookup form of a username or email: NFKC, trimmed, lower case. */
  normalizeKey(value: string): string {
    return normalizeLookupKey(value);
  }

  now(): Date {
    return this.clock.now();
  }

  /** The user, or null. Users the manager returns are redacted when logged (see {@link BackOfficeUser}). */
  findById(id: string): Promise<BackOfficeUser | null> {
    if (typeof id !== 'string') return Promise.resolve(null);
    return this.store.findById(id).then(redactSecretsWhenLogged);
  }

  /** Finds by username (by email when `usernameIsEmail`). Bad input finds nobody. */
  async findByName(username: string): Promise<BackOfficeUser | null> {
    const key = this.lookupKey(username);
    if (key === null) return null;
    return redactSecretsWhenLogged(await (this.options.usernameIsEmail ? this.store.findByNormalizedEmail(key) : this.store.findByNormalizedUsername(key)));
  }

  /** Finds by email. Bad input finds nobody. */
  async findByEmail(email: string): Promise<BackOfficeUser | null> {
    const key = this.lookupKey(email);
    return key === null ? null : redactSecretsWhenLogged(await this.store.findByNormalizedEmail(key));
  }

  /** The normalised key, or null for input that can match no user (not a string, empty, too long). */
  lookupKey(value: unknown): string | null {
    if (typeof value !== 'string' || value.length > MAX_LOOKUP_LENGTH * 4 || CONTROL_CHARACTERS.test(value)) return null;
    const key = this.normalizeKey(value);
    return key.length === 0 || key.length > MAX_LOOKUP_LENGTH ? null : key;
  }

  // ---- create and validate ------------------------------------------------------------------------

  /**
   * The trimmed, NFC-normalised email, username (the email when `usernameIsEmail`) and name of a new user,
   * with the errors of every user validator and of the stored lookup forms.
   */
  async prepareUserCandidate(input: { email?: unknown; username?: unknown; name?: unknown }): Promise<{ candidate: BackOfficeUserCandidate; errors: IdentityError[] }> {
    const d = this.errorDescriber;
    const clean = (value: unknown) => (typeof value === 'string' ? value.normalize('NFC').trim() : value);
    const email = clean(input?.email);
    const candidate = { email, username: this.options.usernameIsEmail ? email : clean(input?.username), name: clean(input?.name) } as BackOfficeUserCandidate;
    const errors = [...(await this.validateUser(candidate)).errors];
    // The lookup forms are what the database keeps (<= 256): NFKC and lower case can make a string longer.
    if (!errors.some((e) => e.code === 'invalid_email') && this.normalizeKey(String(candidate.email)).length > MAX_LOOKUP_LENGTH) {
      errors.push(d.invalidEmail());
    }
    if (!this.options.usernameIsEmail && !errors.some((e) => e.code === 'invalid_username') && this.normalizeKey(String(candidate.username)).length > MAX_LOOKUP_LENGTH) {
      errors.push(d.invalidUserName());
    }
    return { candidate, errors };
  }

  async createUser(input: CreateBackOfficeUserInput): Promise<IdentityResult<BackOfficeUser>> {
    return this.createUserRecord(input);
  }

  /**
   * Creates an invited user (no password) together with a live invite token, in one transaction of the store:
   * a failure half-way (e.g. the database going away) never leaves an invited user without a token.
   */
  async createInvitedUser(input: Omit<CreateBackOfficeUserInput, 'password' | 'invited'>): Promise<IdentityResult<{ user: BackOfficeUser; token: string }>> {
    if (!this.supportsUserTokens) return IdentityResult.failed(this.errorDescriber.notSupported('tokens'));
    const token = randomToken(32);
    const now = this.now();
    const initialToken = {
      purpose: 'invite' as const,
      tokenHash: sha256Hex(token),
      expiresAt: BackOfficeUserManager.expiryOfToken(now, this.options.tokens.inviteLifespanHours),
    };
    const created = await this.createUserRecord({ ...input, password: undefined, invited: true }, initialToken);
    if (!created.succeeded) return IdentityResult.failed(...created.errors);
    return IdentityResult.success({ user: created.value!, token });
  }

  /**
   * Creates a user (as {@link createUser}) together with an external login, in one transaction of the store when it
   * has them: a concurrent creation with the same email (another first sign-in of the same provider account) waits
   * for it and then finds the login linked, and a failure half-way leaves no user without its login behind.
   * `login_already_linked` when the key is someone's (nothing created). `UserLoginLinkedNotification` after the
   * commit; no security-stamp renewal, as in {@link addLogin}: a user created just now has no sessions to end.
   */
  async createUserWithLogin(input: CreateBackOfficeUserInput, login: Omit<BackOfficeUserLogin, 'createdAt'>): Promise<IdentityResult<BackOfficeUser>> {
    if (!isUserLoginStore(this.store)) return IdentityResult.failed(this.errorDescriber.notSupported('external logins'));
    const created = await this.createUserRecord(input, undefined, login);
    if (created.succeeded) await this.notify(UserLoginLinkedNotification, created.value!, { provider: login.provider });
    return created;
  }

  private async createUserRecord(
    input: CreateBackOfficeUserInput,
    initialToken?: NewBackOfficeUser['initialToken'],
    login?: Omit<BackOfficeUserLogin, 'createdAt'>,
  ): Promise<IdentityResult<BackOfficeUser>> {
    const d = this.errorDescriber;
    const { candidate, errors } = await this.prepareUserCandidate(input);
    if (input.password !== undefined) errors.push(...(await this.validatePassword(null, input.password)).errors);
    const groups = input.groups ?? [];
    if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) errors.push(d.unknownGroup(String(groups)));
    else if (groups.length > 0) errors.push(...(await this.unknownGroupErrors(groups)));
    if (errors.length > 0) return IdentityResult.failed(...errors);

    const now = this.now();
    const record: NewBackOfficeUser = {
      username: candidate.username,
      normalizedUsername: this.normalizeKey(candidate.username),
      email: candidate.email,
      normalizedEmail: this.normalizeKey(candidate.email),
      name: candidate.name,
      passwordHash: input.password !== undefined ? await this.passwordHasher.hashPassword(input.password) : null,
      securityStamp: this.newSecurityStamp(),
      isApproved: input.isApproved ?? true,
      invitedAt: input.invited ? now : null,
      groups: [...new Set(groups)],
      ...(initialToken ? { initialToken } : {}),
      ...(input.kind === 'api' ? { kind: 'api' as const, passwordHash: null } : {}),
    };
    const { authorize } = input;
    let createdId: string | undefined;
    try {
      const user =
        !authorize && !login
          ? await this.store.create(record, now)
          : await this.inTransaction(async (store) => {
              const created = authorize ? await BackOfficeUserManager.createAuthorized(store, record, now, authorize) : await store.create(record, now);
              createdId = created.id;
              if (login) await (store as BackOfficeUserStore & UserLoginStore).addLogin(created.id, login, now);
              return created;
            });
      return IdentityResult.success(redactSecretsWhenLogged(user));
    } catch (error) {
      // Rolled back, or a store without transactions: no user without its login may stay behind (its email in use for good).
      if (createdId !== undefined) await this.store.delete(createdId).catch(() => undefined);
      if (error instanceof BackOfficeDuplicateLoginError) return IdentityResult.failed(d.loginAlreadyLinked());
      if (error instanceof BackOfficeDuplicateUserError) {
        const emailTaken = error.field === 'email' || this.options.usernameIsEmail;
        return IdentityResult.failed(emailTaken ? d.duplicateEmail() : d.duplicateUserName());
      }
      throw error;
    }
  }

  /**
   * Inserts `record` and asks `authorize` about the user as stored, in the store's transaction (see
   * {@link CreateBackOfficeUserInput.authorize}). A refused user is deleted before the error goes on: the transaction
   * rolls it back anyway, and a store without rollback (the in-memory one) does not keep it.
   */
  private static async createAuthorized(store: BackOfficeUserStore, record: NewBackOfficeUser, now: Date, authorize: BackOfficeWriteAuthorizer): Promise<BackOfficeUser> {
    const user = await store.create(record, now);
    try {
      authorize((await store.findById(user.id)) ?? user);
    } catch (error) {
      await store.delete(user.id);
      throw error;
    }
    return user;
  }

  // ---- import -------------------------------------------------------------------------------------

  /**
   * Imports users from another system (Umbraco, ASP.NET Identity, ...) with their password hashes, which verify
   * at sign-in and are re-hashed to the module's format on the first success. Batches of 1,000 records, each one
   * transaction; an invalid record is reported and nothing of it is written. Answers one result per record, in
   * order, and writes one `UsersImportedNotification` (audit entry) with the counts. `authorize` (the HTTP
   * import's check of the caller) sees every record before anything is written and throws to refuse them all;
   * it needs the records to fit in one batch.
   *
   * @throws TypeError when `records` is not an array or an option is wrong.
   */
  async importUsers(
    records: readonly unknown[],
    options: ImportUsersOptions & { source?: string } = {},
    authorize?: ImportAuthorizer,
  ): Promise<ImportUserResult[]> {
    const committed: ImportUserResult[] = [];
    let results: ImportUserResult[];
    try {
      results = await this.createUserImporter().importUsers(records, options, authorize, (batch) => committed.push(...batch));
    } catch (error) {
      // The batches before the failure are committed (their users exist): audited with their counts, marked interrupted.
      if (committed.length > 0) await this.notifyImported(committed, { ...options, interrupted: true });
      throw error;
    }
    await this.notifyImported(results, options);
    return results;
  }

  /** The importer behind {@link importUsers}, for callers that stream batches (the CLI) and notify once at the end. */
  createUserImporter(): BackOfficeUserImporter {
    return new BackOfficeUserImporter(this);
  }

  /**
   * Publishes the one `UsersImportedNotification` of an import; `interrupted` for one that stopped part-way after some
   * batches were committed (the counts are theirs).
   */
  async notifyImported(
    results: readonly ImportUserResult[] | ReturnType<typeof summarizeImport>,
    options: ImportUsersOptions & { source?: string; interrupted?: boolean },
  ): Promise<void> {
    const summary = Array.isArray(results) ? summarizeImport(results) : (results as ReturnType<typeof summarizeImport>);
    await this.notify(UsersImportedNotification, null, {
      ...summary,
      dryRun: options.dryRun ?? false,
      onConflict: options.onConflict ?? 'skip',
      source: options.source ?? 'code',
      interrupted: options.interrupted === true,
    });
  }

  private async unknownGroupErrors(groups: string[]): Promise<IdentityError[]> {
    if (!this.supportsUserGroups) return [this.errorDescriber.notSupported('groups')];
    const known = await this.knownGroupAliases();
    return groups.filter((g) => !known.has(g)).map((g) => this.errorDescriber.unknownGroup(g));
  }

  /** The aliases of every group in the store (empty when the store has no groups); `store`: a transaction's. */
  async knownGroupAliases(store: BackOfficeUserStore = this.store): Promise<Set<string>> {
    if (!isUserGroupStore(store)) return new Set();
    return new Set((await store.listGroups()).map((g) => g.alias));
  }

  /**
   * Checks a new or changed user with {@link userValidators}. Every flow that creates a user runs it (createUser,
   * invites, imports over HTTP and from code, users a password checker vouches for): override it, as ASP.NET's
   * `ValidateUserAsync`, to add rules of your own.
   */
  async validateUser(user: BackOfficeUserCandidate): Promise<IdentityResult> {
    const errors = await this.collectUserErrors(user);
    return errors.length ? IdentityResult.failed(...errors) : IdentityResult.success();
  }

  /**
   * Checks a new password with {@link passwordValidators} (`user` null for a user being created). Every flow that
   * sets a password runs it (createUser, change password, add password, reset, invite acceptance): override it, as
   * ASP.NET's `ValidatePasswordAsync`, to add rules of your own.
   */
  async validatePassword(user: BackOfficeUser | null, password: string): Promise<IdentityResult> {
    const errors = await this.collectPasswordErrors(password, user);
    return errors.length ? IdentityResult.failed(...errors) : IdentityResult.success();
  }

  private async collectUserErrors(user: BackOfficeUserCandidate): Promise<IdentityError[]> {
    const errors: IdentityError[] = [];
    for (const validator of this.userValidators) errors.push(...(await validator.validate(user)));
    return errors;
  }

  private async collectPasswordErrors(password: unknown, user: BackOfficeUser | null): Promise<IdentityError[]> {
    if (typeof password !== 'string') return [this.errorDescriber.passwordInvalidCharacters()];
    const errors: IdentityError[] = [];
    for (const validator of this.passwordValidators) {
      errors.push(...(await validator.validate(password, user)));
      if (errors.some((e) => e.code === 'password_invalid')) break;
    }
    return errors;
  }

  // ---- passwords ----------------------------------------------------------------------------------

  hasPassword(user: BackOfficeUser): boolean {
    return user.passwordHash !== null;
  }

  /**
   * True while an admin's forced reset ({@link removePassword}) waits for the user to set a new password with the
   * emailed link (or one from forgot-password): no password, the removal's mark (`passwordResetForcedAt`) set, and
   * the directory does not own it. A passkey, a local credential like the password, does not sign such a user in
   * meanwhile (OWASP ASVS 5.0 6.4.x / 4.0 2.5.x): an admin forcing a reset after a suspected compromise expects no
   * local credential to get in until the reset is done. Users who never had a password (external logins, passkeys
   * added after an external sign-in) are not concerned, nor are users whose local hash a password checker retired
   * (`retiresLocalPasswords`, also when it leaves no directory mark): nobody forced a reset on them. A store that
   * does not keep the mark (`passwordResetForcedAt` absent) falls back to "no password, `lastPasswordChangeAt` set".
   */
  isPasswordResetPending(user: Pick<BackOfficeUser, 'passwordHash' | 'lastPasswordChangeAt' | 'directoryManagedAt' | 'passwordResetForcedAt'>): boolean {
    if (!this.supportsUserPassword || user.passwordHash !== null || this.isDirectoryManaged(user)) return false;
    return user.passwordResetForcedAt !== undefined ? user.passwordResetForcedAt != null : user.lastPasswordChangeAt != null;
  }

  /**
   * True when a password checker other than the default is registered (e.g. LDAP): it may accept the password of a
   * user without a local hash (created by the directory, or whose local hash it retired), so such a user's password
   * can still be checked (step-up).
   */
  get hasExternalPasswordChecker(): boolean {
    return !(this.passwordChecker instanceof FallbackPasswordChecker);
  }

  /**
   * True when the password is right: the `BackOfficePasswordChecker` is asked first; on `fallback` the local
   * hash decides, and a hash weaker than the configured cost is upgraded. Never throws on bad input. When the checker
   * answers `unavailable` (it could not decide: a directory outage) the answer is false and `outcome.unavailable` is
   * set, so a caller that counts failed attempts can leave this one out.
   */
  async checkPassword(user: BackOfficeUser, password: string, outcome?: BackOfficePasswordCheckOutcome): Promise<boolean> {
    if (outcome) Object.assign(outcome, { unavailable: false, vouched: false, noPasswordToCheck: false });
    if (typeof password !== 'string' || password.length === 0 || password.length > this.options.password.maxLength * 4) {
      await this.verifyAgainstDummyHash('');
      return false;
    }
    if (user.kind === 'api') {
      // API users sign in with client credentials only; the same hash work keeps the timing of a wrong password.
      await this.verifyAgainstDummyHash(password);
      return false;
    }
    const external = await this.passwordChecker.checkPassword(user, password);
    if (external !== 'fallback') {
      // The checker decided without the local hash: spend one hash check anyway, as unknown usernames do.
      await this.verifyAgainstDummyHash(password);
      if (outcome) Object.assign(outcome, { unavailable: external === 'unavailable', vouched: external === 'valid' });
      return external === 'valid';
    }
    if (!user.passwordHash) {
      await this.verifyAgainstDummyHash(password);
      if (outcome) outcome.noPasswordToCheck = true;
      return false;
    }
    const result = await this.passwordHasher.verifyHashedPassword(user.passwordHash, password);
    if (result === 'successRehashNeeded' && this.supportsUserPassword) {
      const rehashed = await this.passwordHasher.hashPassword(password);
      await this.getPasswordStore().setPasswordHash(user.id, rehashed, user.securityStamp, this.now(), { rehashOf: user.passwordHash });
      user.passwordHash = rehashed;
    }
    return result !== 'failed';
  }

  /**
   * For a username that matches no local user: asks the password checker's optional `checkUnknownUser`
   * (e.g. LDAP with `createUsers`) and creates the user it vouches for. Spends the time of one hash check
   * whatever the answer. Returns the new user, or null (the sign-in fails as for any unknown username); with a null,
   * `outcome.unavailable` says the checker could not decide (`unavailable`).
   */
  async checkUnknownUserPassword(username: string, password: string, outcome?: BackOfficePasswordCheckOutcome): Promise<BackOfficeUser | null> {
    if (outcome) outcome.unavailable = false;
    const checker = this.passwordChecker;
    const plausible = typeof password === 'string' && password.length > 0 && password.length <= this.options.password.maxLength * 4;
    const answer = plausible && typeof checker.checkUnknownUser === 'function' ? await checker.checkUnknownUser(username, password) : null;
    await this.verifyAgainstDummyHash(password);
    if (answer?.result === 'unavailable' && outcome) outcome.unavailable = true;
    if (answer?.result !== 'valid' || !answer.user) return null;
    const profile = answer.user;
    // With usernameIsEmail the user would be created with the directory's email as its username and found by that key
    // alone: one vouched for under another key (a uid filter) signed in this once, then never again. Not created.
    if (this.options.usernameIsEmail && this.lookupKey(profile.email) !== this.lookupKey(username)) {
      this.logger.warn(
        'A user vouched for by the password checker was not created: with usernameIsEmail people sign in with their email address, ' +
          'and the directory matched a username that is not the email it holds (search the directory by email, or set usernameIsEmail: false)',
      );
      return null;
    }
    const created = await this.createUser({ email: profile.email, name: profile.name, username: profile.username ?? username, groups: profile.groups });
    if (created.succeeded) {
      // Created by the directory: its password was always the directory's.
      await this.markDirectoryManaged(created.value!);
      return created.value!;
    }
    if (created.errors.some((e) => e.code === 'duplicate_email' || e.code === 'duplicate_username')) return null;
    this.logger.warn(`A user vouched for by the password checker could not be created: ${created.errors.map((e) => e.code).join(', ')}`);
    return null;
  }

  /**
   * After a sign-in the password checker vouched for (`outcome.vouched`): when the checker `retiresLocalPasswords`,
   * removes the user's local password hash (compare-and-set: a hash changed meanwhile stays; the security stamp and
   * sessions are kept). A user the external system later stops knowing (`fallback`) then has no local password to
   * sign in with. Does nothing otherwise.
   */
  async retireLocalPassword(user: BackOfficeUser): Promise<void> {
    if (!this.passwordChecker.retiresLocalPasswords || user.passwordHash === null || !this.supportsUserPassword) return;
    await this.getPasswordStore().setPasswordHash(user.id, null, user.securityStamp, this.now(), { rehashOf: user.passwordHash });
    user.passwordHash = null;
  }

  /**
   * True when the password checker is the authority for the passwords of the users it vouches for
   * (`marksDirectoryManaged`, which defaults to `retiresLocalPasswords`; LDAP) and the store keeps the mark
   * (`UserDirectoryManagedStore`).
   */
  get marksDirectoryManagedUsers(): boolean {
    return this.checkerMarksDirectoryManaged && isUserDirectoryManagedStore(this.store);
  }

  private get checkerMarksDirectoryManaged(): boolean {
    const checker = this.passwordChecker;
    return (checker.marksDirectoryManaged ?? checker.retiresLocalPasswords ?? false) === true;
  }

  private warnedNoDirectoryMark = false;

  /**
   * True when the user is marked directory-managed ({@link BackOfficeUser.directoryManagedAt}): their password
   * belongs to the directory, so no password-reset link is issued or accepted for them (forgot-password, reset,
   * an admin's forced reset). Any value but null or absent counts: a custom store may hand the date back as an ISO
   * string (JSON-backed or raw-SQL stores), and such a user must not pass for unmarked.
   */
  isDirectoryManaged(user: Pick<BackOfficeUser, 'directoryManagedAt'>): boolean {
    return user.directoryManagedAt != null;
  }

  /**
   * True when writing `username` would give a directory-managed user ({@link isDirectoryManaged}) another username
   * beyond ASCII letter case: the rule of `renamesDirectoryManagedUser` (the import's store refusal), asked through
   * this manager so a subclass's {@link isDirectoryManaged} decides the email move's refusals (lifecycle and here).
   */
  renamesDirectoryManaged(user: Pick<BackOfficeUser, 'directoryManagedAt' | 'username'>, username: string): boolean {
    return this.isDirectoryManaged(user) && differsBeyondAsciiCase(username, user.username);
  }

  /**
   * After the password checker vouched for the user (a sign-in, or the user it created): marks them
   * directory-managed when {@link marksDirectoryManagedUsers}, once, and voids their outstanding password-reset
   * and invite links in the same transaction (a link mailed before must not set a local password after the user left the
   * directory; OWASP ASVS 4.0 V2.5). Audited as `UserDirectoryManagedChangedNotification` (`managed: true`).
   * Does nothing for a user marked already or when the checker does not mark.
   */
  async markDirectoryManaged(user: BackOfficeUser): Promise<void> {
    if (this.isDirectoryManaged(user) || !this.checkerMarksDirectoryManaged || user.kind === 'api') return;
    if (!this.marksDirectoryManagedUsers) {
      if (!this.warnedNoDirectoryMark) {
        this.warnedNoDirectoryMark = true;
        this.logger.warn(
          'The password checker marks the users it vouches for as directory-managed, but the user store cannot keep the mark ' +
            '(no markDirectoryManaged, UserDirectoryManagedStore): users removed from the directory can still set a local password by a reset email.',
        );
      }
      return;
    }
    const now = this.now();
    const marked = await this.inTransaction(async (store) => {
      if (!(await this.capability(isUserDirectoryManagedStore, 'UserDirectoryManagedStore', store).markDirectoryManaged(user.id, now))) return false;
      if (isUserTokenStore(store)) {
        await store.voidTokens(user.id, 'password_reset', now);
        // An invite link would set a first local password as well (a pending invitee the host marks).
        await store.voidTokens(user.id, 'invite', now);
        // With usernameIsEmail an email move would move the username the directory signs them in with: refused from
        // now on, and a link asked before must not move it once the mark is cleared.
        if (this.options.usernameIsEmail) await store.voidTokens(user.id, 'change_email', now);
      }
      return true;
    });
    if (!marked) {
      user.directoryManagedAt = (await this.findById(user.id))?.directoryManagedAt ?? null;
      return;
    }
    user.directoryManagedAt = now;
    await this.notify(UserDirectoryManagedChangedNotification, user, { managed: true });
  }

  /**
   * Clears the directory-managed mark: an explicit decision of the host (an admin tool, a script) that the user's
   * password is local again, e.g. someone who left the directory but keeps back-office access. Password-reset links
   * (forgot-password, an admin's forced reset) work for them again; the next sign-in the directory vouches for marks
   * them again. Audited (`managed: false`). False when the user was not marked (or the store keeps no mark).
   */
  async clearDirectoryManaged(user: BackOfficeUser): Promise<boolean> {
    const store = this.store;
    if (!isUserDirectoryManagedStore(store)) return false;
    const cleared = await store.clearDirectoryManaged(user.id, this.now());
    user.directoryManagedAt = null;
    if (cleared) await this.notify(UserDirectoryManagedChangedNotification, user, { managed: false });
    return cleared;
  }

  /** Spends the time of one hash check, for users that do not exist (no timing oracle). */
  async verifyAgainstDummyHash(password: string): Promise<void> {
    this.dummyHash ??= this.passwordHasher.hashPassword(randomToken(24));
    await this.passwordHasher.verifyHashedPassword(await this.dummyHash, typeof password === 'string' ? password : '');
  }

  /**
   * Sets a new password after checking the current one (`password_mismatch`); `locked_out` when the account was
   * locked meanwhile ({@link isLockedOutNow}). Voids the user's emailed links and renews the security stamp.
   * `outcome` gets what {@link checkPassword} found about the current password (`noPasswordToCheck`, `unavailable`).
   */
  async changePassword(user: BackOfficeUser, currentPassword: string, newPassword: string, outcome: BackOfficePasswordCheckOutcome = {}): Promise<IdentityResult> {
    if (!this.supportsUserPassword) return IdentityResult.failed(this.errorDescriber.notSupported('passwords'));
    if (!(await this.checkPassword(user, currentPassword, outcome))) {
      // The password checker could not decide (a directory outage): refused, but not a wrong password to count.
      if (outcome.unavailable) return IdentityResult.failed({ code: 'invalid_credentials', description: 'The password could not be checked now.' });
      return IdentityResult.failed(this.errorDescriber.passwordMismatch());
    }
    // The external system (LDAP) owns this user's password: a local one would outlive the user's removal from it.
    if (outcome.vouched && this.passwordChecker.retiresLocalPasswords) {
      return IdentityResult.failed(this.errorDescriber.notSupported('local passwords of users whose password the directory checks (change it in the directory)'));
    }
    if (await this.isLockedOutNow(user)) return IdentityResult.failed(this.errorDescriber.lockedOut());
    const result = await this.setNewPassword(user, newPassword);
    if (result.succeeded) await this.notify(UserPasswordChangedNotification, user);
    return result;
  }

  async addPassword(user: BackOfficeUser, password: string): Promise<IdentityResult> {
    if (!this.supportsUserPassword) return IdentityResult.failed(this.errorDescriber.notSupported('passwords'));
    if (this.hasPassword(user)) return IdentityResult.failed(this.errorDescriber.userAlreadyHasPassword());
    return this.setNewPassword(user, password);
  }

  private async setNewPassword(user: BackOfficeUser, password: string): Promise<IdentityResult> {
    const validated = await this.validatePassword(user, password);
    if (!validated.succeeded) return validated;
    const hash = await this.passwordHasher.hashPassword(password);
    const stamp = this.newSecurityStamp();
    const now = this.now();
    await this.inTransaction(async (store) => {
      await this.capability(isUserPasswordStore, 'UserPasswordStore', store).setPasswordHash(user.id, hash, stamp, now);
      await this.voidPasswordBoundTokens(store, user.id, now);
    });
    Object.assign(user, { passwordHash: hash, securityStamp: stamp, lastPasswordChangeAt: now });
    return IdentityResult.success();
  }

  /**
   * Voids the user's outstanding password-reset, invite and email-change links: every password change (change,
   * reset, invite acceptance, an admin's forced reset) runs this in the same transaction, so a link requested by
   * someone who knew (or had reset) the old password, e.g. an email change to their own mailbox, dies with it
   * (OWASP ASVS 4.0 V2.5 credential recovery, 3.3.3: a password change ends what the old credential started). Email-change
   * links are `change_email` tokens of the `UserTokenStore` (`voidTokens` voids them; see the store contract).
   */
  protected async voidPasswordBoundTokens(store: BackOfficeUserStore, userId: string, now: Date): Promise<void> {
    if (!isUserTokenStore(store)) return;
    for (const purpose of PASSWORD_BOUND_TOKEN_PURPOSES) await store.voidTokens(userId, purpose, now);
  }

  /**
   * Voids the user's pending email-change link: when sessions are ended (an admin's "sign out everywhere", the user's
   * own, or one session), the move to another mailbox a session asked for ends with it, as it does with a password
   * change. Left live, the link a stolen session cookie asked for (to the thief's mailbox) still moved the account
   * once the cookie stopped working, and the thief then reset the password (OWASP ASVS 4.0 3.3.x, 2.5.x). Nothing
   * without a `UserTokenStore`.
   */
  async voidEmailChangeLinks(user: Pick<BackOfficeUser, 'id'>): Promise<void> {
    const store = this.store;
    if (isUserTokenStore(store)) await store.voidTokens(user.id, 'change_email', this.now());
  }

  /**
   * What follows the end of `count` of the user's sessions (an admin's DELETE /users/:id/sessions, the user's own
   * DELETE /auth/sessions and DELETE /auth/sessions/:id): the pending email-change link is voided
   * ({@link voidEmailChangeLinks}; not for an API user, whose "sessions" are bearer tokens), then
   * `UserSessionsRevokedNotification` is published with `count`. The notification (the audit) goes out even when the
   * void throws (a custom store's `voidTokens`): the sessions did end, and that must not go unaudited
   * (OWASP ASVS 5.0 16.3.2, 4.0 7.1.3); the void's error then goes on, so the request fails and the caller knows the
   * link may still be live. Not for a sign-out (`POST /auth/logout`) or a session replaced at sign-in: those leave the
   * link alone (the owner may sign out and confirm from the mail; the link needs no session).
   */
  async sessionsEnded(user: Pick<BackOfficeUser, 'id'> & Partial<Pick<BackOfficeUser, 'kind'>>, count: number): Promise<void> {
    try {
      if (user.kind !== 'api') await this.voidEmailChangeLinks(user);
    } finally {
      await this.notify(UserSessionsRevokedNotification, user, { count });
    }
  }

  // ---- single-use tokens --------------------------------------------------------------------------

  /**
   * A new password-reset token (valid `tokens.passwordResetLifespanHours`); earlier ones are void. Null, nothing
   * stored, when the store finds the user disabled (or gone) under the lock it writes the link with: a disabled user
   * gets no link (OWASP ASVS 4.0 2.5.x, 3.3.1), also when the disable committed after the caller read the user.
   */
  generatePasswordResetToken(user: BackOfficeUser): Promise<string | null> {
    return this.generateUserToken(user, 'password_reset', this.options.tokens.passwordResetLifespanHours);
  }

  /**
   * A new invite token (valid `tokens.inviteLifespanHours`); earlier ones are void. Null as {@link generatePasswordResetToken},
   * and when the user no longer waits for an invite (accepted since the caller read it).
   */
  generateInviteToken(user: BackOfficeUser): Promise<string | null> {
    return this.generateUserToken(user, 'invite', this.options.tokens.inviteLifespanHours);
  }

  /**
   * A new invite token, handed to `deliver` (which emails it), that takes over from the live invite link only once
   * `deliver` resolved: when it rejects (the mail relay refused, timed out, ...) the new token is dropped and the
   * previous link keeps working, so a failed resend never leaves the invitee without a link (OWASP ASVS 4.0 2.5.x).
   * Concurrent resends leave exactly one live link: the one of the last delivery to finish. Null, with nothing
   * stored and `deliver` not called, when the store finds the user disabled (or gone) under the lock it writes the
   * link with: a disable that committed after the caller read the user; so when the invitee accepted meanwhile (no
   * longer {@link isPendingInvitee} once the link is stored). A store without
   * {@link UserTokenHandoverStore} falls back to {@link generateInviteToken} before `deliver`.
   */
  deliverNewInviteToken<T>(user: BackOfficeUser, deliver: (token: string) => Promise<T>): Promise<T | null> {
    return this.deliverNewUserToken(user, 'invite', this.options.tokens.inviteLifespanHours, deliver);
  }

  /**
   * {@link deliverNewInviteToken} for password-reset links: a reset email that failed leaves the previous link
   * working; null (no link, no email) for a user disabled since the caller read it.
   */
  deliverNewPasswordResetToken<T>(user: BackOfficeUser, deliver: (token: string) => Promise<T>): Promise<T | null> {
    return this.deliverNewUserToken(user, 'password_reset', this.options.tokens.passwordResetLifespanHours, deliver);
  }

  /**
   * {@link deliverNewInviteToken} for the email-change link to `newEmail` (valid `lifespanHours`): a confirmation email
   * that failed leaves the pending email-change link working. A store without {@link UserEmailChangeHandoverStore}
   * voids the pending link before `deliver`. Null, `deliver` not called and no link left, when the user was disabled or
   * moved to another address since `user` was read, or got another security stamp (a password change that ended the
   * session that asked: see `storeAddressedLink`), or when `asked.stillAsked` (asked once the link is stored, e.g.
   * whether the session that asked is still live) answers false. An override must pass `asked` (with its
   * `stillAsked`) on to `super.deliverNewEmailChangeToken`, or ask `stillAsked` itself once the link is stored and drop
   * the link when it answers false: dropped, a link asked for by a session ended meanwhile (a stolen cookie the owner
   * signed out) is stored and mailed to the thief again (OWASP ASVS 4.0 3.3.x). @throws BackOfficeNotSupportedError
   * without a `UserEmailChangeStore`.
   */
  async deliverNewEmailChangeToken<T>(
    user: BackOfficeUser,
    newEmail: string,
    lifespanHours: number,
    deliver: (token: string) => Promise<T>,
    asked: { stillAsked?: () => Promise<boolean> } = {},
  ): Promise<T | null> {
    const store = this.capability(isUserEmailChangeStore, 'UserEmailChangeStore');
    if (isUserEmailChangeHandoverStore(store)) {
      return this.handOverUserToken(store, user, 'change_email', lifespanHours, deliver, {
        add: (hash, expiresAt, now, options) => store.addEmailChangeToken(user.id, hash, newEmail, expiresAt, now, options),
        drop: (hash, now) => store.consumeEmailChangeToken(user.id, hash, now),
        sameStamp: true,
        stillAsked: asked.stillAsked,
        hashOf: (secret) => BackOfficeUserManager.emailChangeHashOf(user, secret),
      });
    }
    const token = randomToken(32);
    const hash = BackOfficeUserManager.emailChangeHashOf(user, token);
    const now = this.now();
    const expiresAt = BackOfficeUserManager.expiryOfToken(now, lifespanHours);
    const stored = await this.storeAddressedLink(
      user,
      (options) => store.replaceEmailChangeToken(user.id, hash, newEmail, expiresAt, now, options),
      () => store.consumeEmailChangeToken(user.id, hash, this.now()),
      { sameStamp: true, stillAsked: asked.stillAsked },
    );
    return stored ? deliver(token) : null;
  }

  protected async deliverNewUserToken<T>(user: BackOfficeUser, purpose: BackOfficeTokenPurpose, lifespanHours: number, deliver: (token: string) => Promise<T>): Promise<T | null> {
    const store = this.getTokenStore();
    if (!isUserTokenHandoverStore(store)) {
      const token = await this.generateUserToken(user, purpose, lifespanHours);
      return token === null ? null : deliver(token);
    }
    return this.handOverUserToken(store, user, purpose, lifespanHours, deliver, {
      add: (hash, expiresAt, now, options) => store.addToken(user.id, purpose, hash, expiresAt, now, options),
      drop: (hash, now) => store.consumeToken(user.id, purpose, hash, now),
      pendingInvitee: purpose === 'invite',
    });
  }

  /**
   * The hand-over of {@link UserTokenHandoverStore}: a new token stored beside the live one (`add`), handed to `deliver`;
   * when that rejects the new token is dropped (`drop`) and the live one kept, else it alone stays live (`keepOnlyToken`).
   */
  private async handOverUserToken<T>(
    store: UserTokenHandoverStore,
    user: BackOfficeUser,
    purpose: BackOfficeTokenPurpose,
    lifespanHours: number,
    deliver: (token: string) => Promise<T>,
    token: {
      add: (hash: string, expiresAt: Date, now: Date, options: UserTokenIssueOptions) => Promise<boolean | void>;
      drop: (hash: string, now: Date) => Promise<unknown>;
      /** See {@link storeAddressedLink}: the email-change link, asked for by a session of `user`. */
      sameStamp?: boolean;
      /** See {@link storeAddressedLink}: an invite link, only for a user still waiting for an invite. */
      pendingInvitee?: boolean;
      /** See {@link storeAddressedLink}: asked once the link is stored; false drops it. */
      stillAsked?: () => Promise<boolean>;
      /** What is stored of the mailed secret (its SHA-256 when not given; see {@link emailChangeTokenHash}). */
      hashOf?: (secret: string) => string;
    },
  ): Promise<T | null> {
    const secret = randomToken(32);
    const hash = token.hashOf ? token.hashOf(secret) : sha256Hex(secret);
    const now = this.now();
    const expiresAt = BackOfficeUserManager.expiryOfToken(now, lifespanHours);
    const write = (options: UserTokenIssueOptions) => token.add(hash, expiresAt, now, options);
    const due = { sameStamp: token.sameStamp === true, pendingInvitee: token.pendingInvitee === true, stillAsked: token.stillAsked };
    if (!(await this.storeAddressedLink(user, write, () => token.drop(hash, this.now()), due))) return null;
    let delivered: T;
    try {
      delivered = await deliver(secret);
    } catch (error) {
      await token.drop(hash, this.now()).catch(() => undefined); // unknown to anyone, it expires anyway
      throw error;
    }
    await store.keepOnlyToken(user.id, purpose, hash, this.now());
    return delivered;
  }

  /**
   * A new token replacing the live ones of `purpose`; null when the store refused it (the user is disabled or gone,
   * or moved to another email since `user` was read: see {@link storeAddressedLink}).
   */
  protected async generateUserToken(user: BackOfficeUser, purpose: BackOfficeTokenPurpose, lifespanHours: number): Promise<string | null> {
    const store = this.getTokenStore();
    const token = randomToken(32);
    const hash = sha256Hex(token);
    const now = this.now();
    const expiresAt = BackOfficeUserManager.expiryOfToken(now, lifespanHours);
    const stored = await this.storeAddressedLink(
      user,
      (options) => store.replaceToken(user.id, purpose, hash, expiresAt, now, options),
      () => store.consumeToken(user.id, purpose, hash, this.now()),
      { pendingInvitee: purpose === 'invite' },
    );
    return stored ? token : null;
  }

  /**
   * Stores a new link for `user` with `write` and answers whether it stands (false: nothing to mail). `write` hands the
   * store the address the caller mails the link to (`addressedTo`, the `normalizedEmail` `user` was read with): the
   * store checks under the lock of the write that the user may still get a link (not disabled meanwhile) and still has
   * that address. An email change voids the links stored before it commits; one that committed after the caller read
   * the user but before the link was stored would not void it, and the link would go to the old mailbox, which the
   * move took the account away from (OWASP ASVS 4.0 2.5.6, 1.11.3). For a store that ignores `addressedTo` (one
   * written before it), the link, once stored, is dropped (`drop`) when {@link linkStillDue} finds the user moved.
   *
   * With `sameStamp` (the email-change link, which goes to an address the requester chose) the link is also dropped
   * when the user's security stamp is no longer the one `user` was read with: a password change (or reset, a forced
   * reset, 2FA on or off) that committed after the request was accepted but before its link was stored voided the
   * links there were, not this one, and ended the other sessions (the one that asked, unless it made the change
   * itself); left live, whoever signed in with the old password (the attacker the owner meant to lock out) confirmed it
   * and moved the account to their mailbox
   * (OWASP ASVS 4.0 3.3.3, 2.5.x, 1.11.3). The user's row is written and the links voided in one transaction, and the
   * link is written under that row's lock, so it is either stored before (and voided by it) or seen here afterwards.
   *
   * With `pendingInvitee` (an invite link) the link is also dropped when the user no longer waits for an invite
   * ({@link isPendingInvitee}): an acceptance that committed after the caller (a resend) read the invitee voided the
   * links there were, not this one, which then went out as an invitation to an active account, audited as an invite
   * (OWASP ASVS 4.0 1.11.3, 7.1.3); the resend answers 409 `not_invited` instead, as for any user no longer invited.
   *
   * With `stillAsked` (the email-change link: is the session that asked still live?) the link is also dropped when it
   * answers false, asked after the link is stored: ending sessions voids the pending email-change links after the
   * sessions end, so a link stored before that void is voided by it, and one stored after it is seen here with its
   * session ended (revoking a session keeps the security stamp, which `sameStamp` does not see) (OWASP ASVS 4.0 3.3.x).
   */
  private async storeAddressedLink(
    user: BackOfficeUser,
    write: (options: UserTokenIssueOptions) => Promise<boolean | void>,
    drop: () => Promise<unknown>,
    { sameStamp = false, pendingInvitee = false, stillAsked }: { sameStamp?: boolean; pendingInvitee?: boolean; stillAsked?: () => Promise<boolean> } = {},
  ): Promise<boolean> {
    if ((await write({ addressedTo: user.normalizedEmail })) === false) return false;
    if ((await this.linkStillDue(user, { sameStamp, pendingInvitee })) && (stillAsked === undefined || (await stillAsked()))) return true;
    await drop();
    return false;
  }

  /**
   * Asked once a new link is stored, before it is mailed (see {@link storeAddressedLink}), on one read of the user from
   * the store itself (not through {@link findById}, which a host manager may answer from elsewhere): whether the user
   * still has the email address `user` was read with; with `sameStamp`, still the same security stamp (true without a
   * security stamp store); with `pendingInvitee`, still waits for an invite.
   */
  protected async linkStillDue(user: BackOfficeUser, due: { sameStamp: boolean; pendingInvitee: boolean }): Promise<boolean> {
    const current = await this.store.findById(user.id);
    if (current === null || current.normalizedEmail !== user.normalizedEmail) return false;
    if (due.sameStamp && this.supportsUserSecurityStamp && current.securityStamp !== user.securityStamp) return false;
    return !due.pendingInvitee || isPendingInvitee(current);
  }

  /**
   * True while the token is live (right user, purpose, unexpired, unused). Does not use it up. A `change_email` link
   * is live only under the security stamp it was issued under, checked against the stamp as stored (read from the
   * store, as {@link confirmEmailChange} does), not `user`'s, which a host may have read from a cache before the stamp
   * changed (see {@link emailChangeTokenHash}).
   */
  async verifyUserToken(user: BackOfficeUser, purpose: BackOfficeTokenPurpose, token: string): Promise<boolean> {
    if (!this.supportsUserTokens || !BackOfficeUserManager.plausibleToken(token)) return false;
    let hash = sha256Hex(token);
    if (purpose === 'change_email') {
      const stored = await this.store.findById(user.id);
      if (!stored) return false;
      hash = BackOfficeUserManager.emailChangeHashOf(stored, token);
    }
    return this.getTokenStore().isTokenLive(user.id, purpose, hash, this.now());
  }

  /** What is stored of an email-change link's `secret`: bound to `user`'s security stamp (see {@link emailChangeTokenHash}). */
  private static emailChangeHashOf(user: Pick<BackOfficeUser, 'securityStamp'>, secret: string): string {
    return BackOfficeUserManager.emailChangeTokenHash(sha256Hex(secret), user.securityStamp);
  }

  /** When a link issued at `now` expires: `lifespanHours` later. */
  private static expiryOfToken(now: Date, lifespanHours: number): Date {
    return new Date(now.getTime() + lifespanHours * 3_600_000);
  }

  private static plausibleToken(token: unknown): token is string {
    return typeof token === 'string' && token.length > 0 && token.length <= 512;
  }

  /**
   * Sets a new password with a reset token: the token is used up, the lockout cleared and the security
   * stamp renewed, in one transaction. Wrong, used and expired tokens all give `invalid_token`.
   */
  async resetPassword(user: BackOfficeUser, token: string, newPassword: string): Promise<IdentityResult> {
    const result = await this.setPasswordWithToken(user, 'password_reset', token, newPassword);
    if (result.succeeded) await this.notify(UserPasswordResetNotification, user);
    return result;
  }

  /** Accepts an invite: sets the first password and uses up the invite token, in one transaction. */
  async acceptInvite(user: BackOfficeUser, token: string, password: string): Promise<IdentityResult> {
    return this.setPasswordWithToken(user, 'invite', token, password);
  }

  private async setPasswordWithToken(
    user: BackOfficeUser,
    purpose: BackOfficeTokenPurpose,
    token: string,
    password: string,
  ): Promise<IdentityResult> {
    const d = this.errorDescriber;
    if (!this.supportsUserPassword || !this.supportsUserTokens) return IdentityResult.failed(d.notSupported('tokens'));
    if (!(await this.verifyUserToken(user, purpose, token))) return IdentityResult.failed(d.invalidToken());
    const validated = await this.validatePassword(user, password);
    if (!validated.succeeded) return validated;
    const hash = await this.passwordHasher.hashPassword(password);
    const stamp = this.newSecurityStamp();
    const now = this.now();
    const consumed = await this.inTransaction(async (store) => {
      const tokens = this.capability(isUserTokenStore, 'UserTokenStore', store);
      if (!(await tokens.consumeToken(user.id, purpose, sha256Hex(token), now))) return false;
      await this.capability(isUserPasswordStore, 'UserPasswordStore', store).setPasswordHash(user.id, hash, stamp, now);
      await this.voidPasswordBoundTokens(store, user.id, now);
      await this.clearLockout(user, store, now);
      return true;
    });
    if (!consumed) return IdentityResult.failed(d.invalidToken());
    Object.assign(user, { passwordHash: hash, securityStamp: stamp, lockoutEnd: null, accessFailedCount: 0, lastPasswordChangeAt: now });
    return IdentityResult.success();
  }

  // ---- lockout ------------------------------------------------------------------------------------

  /** True while `lockoutEnd` lies in the future. */
  isLockedOut(user: BackOfficeUser): boolean {
    return this.supportsUserLockout && user.lockoutEnabled && user.lockoutEnd !== null && user.lockoutEnd.getTime() > this.now().getTime();
  }

  /**
   * True when the stored user is locked out now (read again; `user.lockoutEnd` is updated then): asked after a right
   * password, so a request that loaded the user before wrong attempts in flight locked the account does not get
   * through with a right guess, as sign-in looks again (OWASP ASVS 4.0 2.2.1).
   */
  async isLockedOutNow(user: Pick<BackOfficeUser, 'id' | 'lockoutEnd'>): Promise<boolean> {
    if (!this.supportsUserLockout) return false;
    const current = await this.findById(user.id);
    if (!current || !this.isLockedOut(current)) return false;
    user.lockoutEnd = current.lockoutEnd;
    return true;
  }

  /**
   * True when a refused password's count ({@link credentialRefused}) locked the account, or found it locked by a
   * request in flight (then the stored lock is read again: {@link isLockedOutNow}). Either way `user.lockoutEnd` holds
   * the lock's end (for the answer's Retry-After) and the answer is `locked_out`, as sign-in's (OWASP ASVS 4.0 2.2.1).
   * False for a null count (no lockout).
   */
  async lockedByCount(user: BackOfficeUser, counted: FailedAccessResult | null): Promise<boolean> {
    if (!counted) return false;
    return counted.lockedNow || (counted.alreadyLocked && (await this.isLockedOutNow(user)));
  }

  /** Ends an API client's lockout when its store can (`clearLockout` is optional); else says so in the log. */
  private async clearApiClientLockout(store: BackOfficeApiClientStore, userId: string): Promise<void> {
    if (store.clearLockout) await store.clearLockout(userId);
    else this.logger.warn(`API user ${userId} unlocked, but its API client store has no clearLockout: the client's own lockout runs out by itself.`);
  }

  /** When a lock starting now would end. */
  protected lockoutEndFromNow(): Date {
    const minutes = this.options.lockout.durationMinutes;
    return minutes === 0 ? LOCKED_UNTIL_UNLOCKED : new Date(this.now().getTime() + minutes * 60_000);
  }

  /**
   * Counts one failed access atomically; locks (and notifies once) when the maximum is reached.
   * @throws BackOfficeNotSupportedError without `UserLockoutStore` (check `supportsUserLockout`).
   */
  async accessFailed(user: BackOfficeUser): Promise<FailedAccessResult> {
    const result = await this.getLockoutStore().recordFailedAccess(user.id, this.lockoutPolicy(), this.now());
    user.accessFailedCount = result.accessFailedCount;
    if (result.lockoutEnd) user.lockoutEnd = result.lockoutEnd;
    if (result.lockedNow) await this.notify(UserLockedNotification, user);
    return result;
  }

  /**
   * A signed-in user's password or passkey was refused (step-up, or the current password of a change): audited as
   * `UserLoginFailedNotification` with `via` (OWASP ASVS 5.0 16.3.1: every authentication decision is logged), and
   * counted toward lockout when the store keeps it ({@link accessFailed}), first: an attempt that locks the account (or
   * finds it locked) is audited with reason `locked_out`, as a sign-in's is. Null without lockout.
   */
  async credentialRefused(user: BackOfficeUser, reason: string, via: BackOfficeCredentialCheckVia): Promise<FailedAccessResult | null> {
    const counted = this.supportsUserLockout ? await this.accessFailed(user) : null;
    const locked = counted !== null && (counted.lockedNow || (counted.alreadyLocked && user.lockoutEnabled));
    await this.notify(UserLoginFailedNotification, user, { reason: locked ? 'locked_out' : reason, via });
    return counted;
  }

  /**
   * A signed-in user's password or passkey was refused unchecked because the account is locked (step-up, change
   * password, turning 2FA off; or a right one once wrong ones in flight locked it): audited as
   * `UserLoginFailedNotification` with reason `locked_out` and `via`, as a locked sign-in is (OWASP ASVS 5.0 16.3.1:
   * every authentication decision is logged). Not counted: the lock already holds.
   */
  async lockedOutRefused(user: BackOfficeUser, via: BackOfficeCredentialCheckVia): Promise<void> {
    await this.notify(UserLoginFailedNotification, user, { reason: 'locked_out', via });
  }

  /**
   * Counts one failed login for a username that matches no user (same lockout rules, no notification of a user).
   * @throws BackOfficeNotSupportedError without `UnknownUserLockoutStore` (check `supportsUnknownUserLockout`).
   */
  async accessFailedForUnknownUser(normalizedUsername: string): Promise<FailedAccessResult> {
    return this.getUnknownUserLockoutStore().recordFailedAccessForUnknownUser(this.attemptedUsernameKey(normalizedUsername), this.lockoutPolicy(), this.now());
  }

  /** The lockout end of a username that matches no user, or null when it is not locked. */
  async unknownUserLockoutEnd(normalizedUsername: string): Promise<Date | null> {
    if (!isUnknownUserLockoutStore(this.store)) return null;
    return this.store.getUnknownUserLockoutEnd(this.attemptedUsernameKey(normalizedUsername), this.now());
  }

  /**
   * What is stored for a username that matches no user: a keyed HMAC (the key derived from
   * `twoFactor.encryptionKey`), never the text, since people type passwords into the username field.
   */
  attemptedUsernameKey(normalizedUsername: string): string {
    return keyedHash(this.options, 'login-attempt', normalizedUsername);
  }

  protected lockoutPolicy() {
    return { maxFailedAccessAttempts: this.options.lockout.maxFailedAccessAttempts, lockoutEnd: this.lockoutEndFromNow() };
  }

  /**
   * Ends the lockout and resets the failed count in `store` (the manager's, or the one of a running transaction),
   * with no notification (so no `UserUnlockedNotification` and no audit entry) and without touching `user` (the
   * caller updates it once the write holds): a token that proves the mailbox (password reset, invite accepted with
   * a password or through a provider) ends a lock that failed sign-ins on the address set (anyone can cause one,
   * OWASP ASVS 4.0 2.2.1). An admin's unlock is `setLockoutEnd(user, null)`, which notifies. Nothing on a store
   * without `UserLockoutStore`.
   */
  async clearLockout(user: BackOfficeUser, store: BackOfficeUserStore = this.store, now: Date = this.now()): Promise<void> {
    if (!isUserLockoutStore(store)) return;
    await store.setLockoutEnd(user.id, null, now);
    await store.resetAccessFailedCount(user.id, now);
  }

  /** Resets the failed count after a success. @throws BackOfficeNotSupportedError without `UserLockoutStore`. */
  async resetAccessFailedCount(user: BackOfficeUser): Promise<void> {
    const store = this.getLockoutStore();
    if (user.accessFailedCount === 0) return;
    await store.resetAccessFailedCount(user.id, this.now());
    user.accessFailedCount = 0;
    await this.notify(UserResetAccessFailedCountNotification, user);
  }

  /**
   * Locks until `lockoutEnd`, or unlocks with `null` (also resets the failed count, in the same transaction).
   * Notifies either way. With `options.authorize` the write runs under the admin group's lock after `authorize` was
   * asked about the user as stored, as {@link changeEmail}'s does (OWASP ASVS 5.0 15.4.2); a throw aborts, nothing written.
   */
  async setLockoutEnd(user: BackOfficeUser, lockoutEnd: Date | null, options: BackOfficeAuthorizedWriteOptions = {}): Promise<IdentityResult> {
    if (!isUserLockoutStore(this.store)) return IdentityResult.failed(this.errorDescriber.notSupported('lockout'));
    if (!user.lockoutEnabled) return IdentityResult.failed(this.errorDescriber.userLockoutNotEnabled());
    const now = this.now();
    const written = await this.writeAuthorized(
      user.id,
      async (store) => {
        const lockouts: UserLockoutStore = this.capability(isUserLockoutStore, 'UserLockoutStore', store);
        await lockouts.setLockoutEnd(user.id, lockoutEnd, now);
        if (lockoutEnd === null) await lockouts.resetAccessFailedCount(user.id, now);
      },
      options.authorize,
    );
    if (written === 'not_found') return IdentityResult.failed(this.errorDescriber.notFound('user'));
    user.lockoutEnd = lockoutEnd;
    if (lockoutEnd === null) {
      user.accessFailedCount = 0;
      // An API user's client may hold a lockout of its own (counted by an earlier version, or a host store's): the
      // unlock ends it too. Wrong secrets no longer lock a client (BackOfficeApiUserService.issueToken).
      if (user.kind === 'api' && this.apiClientStore) await this.clearApiClientLockout(this.apiClientStore, user.id);
      await this.notify(UserUnlockedNotification, user);
    } else {
      await this.notify(UserLockedNotification, user);
    }
    return IdentityResult.success();
  }

  // ---- security stamp, 2FA, approval, groups ------------------------------------------------------

  /**
   * A new security stamp: a random one, or the stamp announced by {@link withSecurityStamp} around the current
   * call, so a session that announced it keeps working the moment the user's row gets it.
   */
  protected newSecurityStamp(): string {
    return this.announcedSecurityStamp.getStore() ?? this.createSecurityStamp();
  }

  /** A new random security stamp (24 random bytes, base64url), not written anywhere. */
  createSecurityStamp(): string {
    return randomToken(24);
  }

  /**
   * Runs `work` with `stamp` as the stamp of every security-stamp renewal it makes (password change, 2FA on or off,
   * `updateSecurityStamp`, ...), instead of a random one. The sign-in manager uses it to keep the session that makes
   * an account change signed in throughout the change (`BackOfficeSignInManager.keepSignedInThrough`).
   */
  withSecurityStamp<T>(stamp: string, work: () => Promise<T>): Promise<T> {
    return this.announcedSecurityStamp.run(stamp, work);
  }

  /**
   * Renews the security stamp: every session made before ends.
   * @throws BackOfficeNotSupportedError without `UserSecurityStampStore` (check `supportsUserSecurityStamp`).
   */
  async updateSecurityStamp(user: BackOfficeUser): Promise<void> {
    const store = this.getSecurityStampStore();
    user.securityStamp = this.newSecurityStamp();
    await store.setSecurityStamp(user.id, user.securityStamp, this.now());
  }

  /**
   * Writes profile `changes` that move the user to another email address (an admin's edit, a confirmed email
   * change) together with what an address change must end, in one transaction when the store has them: a new
   * security stamp (sessions made before end; call `signInManager.refreshSignIn` to remove their rows), every
   * outstanding password-reset and invite link, which went to the old address, and a pending email-change link,
   * which would undo this change (OWASP ASVS 4.0 2.5.x, 3.3.x).
   *
   * With `options.authorize` the write runs under the admin group's lock, as {@link setGroups} does, and `authorize`
   * is first asked about the user as stored then: an admin's edit checked on a copy read before the user was made an
   * admin would otherwise send that admin's next reset link to the caller's address (OWASP ASVS 4.0 4.1.3, 5.0 15.4.2).
   * When it throws, nothing is written and the error goes on.
   * @throws BackOfficeDuplicateUserError when the email or username is taken (nothing is written then).
   */
  async changeEmail(user: BackOfficeUser, changes: BackOfficeUserProfileChanges, options: BackOfficeAuthorizedWriteOptions = {}): Promise<void> {
    const stamp = this.supportsUserSecurityStamp ? this.newSecurityStamp() : null;
    const now = this.now();
    await this.writeAuthorized(user.id, (store) => this.writeEmailChange(store, user.id, changes, stamp, now), options.authorize);
    Object.assign(user, changes, stamp !== null ? { securityStamp: stamp } : {});
  }

  /**
   * What the store keeps of an email-change link: the SHA-256 of the link's token hash (`tokenHash`, the token's SHA-256)
   * with the security stamp the link was issued under (`deliverNewEmailChangeToken` stores it only while the user still
   * has that stamp). `confirmEmailChange` looks the link up with the stamp the user has then, so any stamp change after
   * the request (a password change, two-factor on or off, an admin's two-factor reset, a passkey or login provider
   * added or removed, `updateSecurityStamp`) voids the link, as ASP.NET Identity binds its change-email tokens to the
   * stamp: the link a stolen session asked for (to the thief's mailbox) no longer outlives the owner's securing of the
   * account (OWASP ASVS 4.0 3.3.3, 2.5.x). No schema change: the token table keeps one hash per link. A store without
   * security stamps binds to the empty stamp.
   */
  protected static emailChangeTokenHash(tokenHash: string, securityStamp: string | null | undefined): string {
    return sha256Hex(`change_email:${securityStamp ?? ''}:${tokenHash}`);
  }

  /**
   * Confirms an email change with its link (the token's SHA-256): the link is used up and the email moves
   * (`changesFor(newEmail)`, written as {@link changeEmail} writes it: new security stamp, the old address's links void)
   * in one transaction, and only while the user, read again after the link was used up, still has the security stamp
   * the store had before (read in the transaction, so a host manager's cached `findById` does not refuse a live link;
   * a refusal rolls back and leaves the link live on a store with transactions). The built-in PostgreSQL store uses the link up under the user's row lock, which the write
   * keeps: a password change (new stamp, the link voided) either commits first, and the link is refused, or waits for
   * this transaction. Checked on two statements instead, a password change committed between them did not stop the
   * move (OWASP ASVS 4.0 3.3.3, V2.5). The changes written, or null (nothing moved) when the link is not live or the
   * stamp changed meanwhile. @throws BackOfficeDuplicateUserError when the address is taken (nothing is written then).
   */
  async confirmEmailChange(
    user: BackOfficeUser,
    tokenHash: string,
    changesFor: (newEmail: string) => BackOfficeUserProfileChanges,
  ): Promise<BackOfficeUserProfileChanges | null> {
    this.capability(isUserEmailChangeStore, 'UserEmailChangeStore');
    const stamp = this.supportsUserSecurityStamp ? this.newSecurityStamp() : null;
    const now = this.now();
    const changes = await abortable((abort: (value: null) => never) =>
      this.inTransaction(async (store) => {
        // The stamp as stored, read before the link is used up (not `user`'s, which a host manager may have read from a cache).
        const reference = (await store.findById(user.id))?.securityStamp;
        // Stored bound to the stamp it was issued under: once the stamp changed, no link matches (see emailChangeTokenHash).
        const boundHash = BackOfficeUserManager.emailChangeTokenHash(tokenHash, reference);
        const newEmail = await this.capability(isUserEmailChangeStore, 'UserEmailChangeStore', store).consumeEmailChangeToken(user.id, boundHash, now);
        if (!newEmail || reference === undefined) return null;
        // Aborted, not returned: the transaction rolls back and the link stays live (a store without rollback uses it up).
        // The row read under the lock the link's use took: the write's "before" (read once, not again).
        const locked = await store.findById(user.id);
        if (locked === null || locked.securityStamp !== reference) return abort(null);
        const written = changesFor(newEmail);
        await this.writeEmailChange(store, user.id, written, stamp, now, locked);
        return written;
      }),
    ).catch(async (error: unknown) => {
      // Refused for a directory-managed user: the rollback left the link live, so it is voided now (it would move
      // the username once the mark was cleared).
      if (error instanceof BackOfficeDirectoryManagedRenameError) await this.voidEmailChangeLinks(user);
      throw error;
    });
    if (changes) Object.assign(user, changes, stamp !== null ? { securityStamp: stamp } : {});
    return changes;
  }

  /**
   * What a move to another address writes (see {@link changeEmail}), in the caller's transaction. A move that gives a
   * directory-managed user another username (with `usernameIsEmail` it follows the email; beyond ASCII letter case)
   * throws {@link BackOfficeDirectoryManagedRenameError}: the username is the key a password checker keyed by it (LDAP
   * `uid={username}`, a mail filter) signs them in with, so the new one's directory password would sign in to this
   * user (OWASP ASVS 5.0 7.5.1, 4.0 V2.5), whoever asks (an admin after a step-up, the user's own confirmed link). The
   * mark is read before the write and again after it: the write holds the row, so a mark committed while it waited
   * for the row (the directory's first sign-in, which writes the mark on that row) is seen, and the throw rolls the
   * move back (on a store with transactions; a confirmation locks the row before this, so its first read sees it).
   * {@link renamesDirectoryManaged} (hence a host's {@link isDirectoryManaged}) is asked about the whole user: the row
   * read before the write, then the row read after it with the fields the move wrote at their values before it (a
   * host deciding from the address, say, is asked about the address the user has, not the one they move to).
   * `read`: the user as the caller read it in this transaction (a confirmation's row, read under the link's lock),
   * taken for the row before the write instead of reading it again.
   */
  private async writeEmailChange(
    store: BackOfficeUserStore,
    userId: string,
    changes: BackOfficeUserProfileChanges,
    stamp: string | null,
    now: Date,
    read?: BackOfficeUser,
  ): Promise<void> {
    const username = changes.username;
    const before = username === undefined ? null : (read ?? (await store.findById(userId)));
    if (before !== null && this.renamesDirectoryManaged(before, username!)) throw new BackOfficeDirectoryManagedRenameError();
    await store.updateProfile(userId, changes, now);
    if (before !== null) {
      const after = await store.findById(userId);
      if (after !== null && this.renamesDirectoryManaged(BackOfficeUserManager.unwritten(after, before, changes), username!)) throw new BackOfficeDirectoryManagedRenameError();
    }
    if (stamp !== null) await this.capability(isUserSecurityStampStore, 'UserSecurityStampStore', store).setSecurityStamp(userId, stamp, now);
    await this.voidPasswordBoundTokens(store, userId, now);
  }

  /** `after` (read after writing `changes`) with the fields of `changes` at their values in `before`: the user as if not written. */
  private static unwritten(after: BackOfficeUser, before: BackOfficeUser, changes: BackOfficeUserProfileChanges): BackOfficeUser {
    const restored: Record<string, unknown> = {};
    for (const key of Object.keys(changes) as Array<keyof BackOfficeUserProfileChanges>) restored[key] = before[key];
    return { ...after, ...restored };
  }

  /**
   * Renames the user (an admin's edit: no credential moves, so nothing else changes). With `options.authorize` the
   * write runs under the admin group's lock after `authorize` was asked about the user as stored, as
   * {@link changeEmail}'s does (OWASP ASVS 4.0 4.1.3, 5.0 15.4.2); a throw aborts, nothing written. `not_found` when
   * the user is gone (checked only with `authorize`).
   */
  async changeName(user: BackOfficeUser, name: string, options: BackOfficeAuthorizedWriteOptions = {}): Promise<IdentityResult> {
    const now = this.now();
    const written = await this.writeAuthorized(
      user.id,
      async (store) => {
        await store.updateProfile(user.id, { name }, now);
      },
      options.authorize,
    );
    if (written === 'not_found') return IdentityResult.failed(this.errorDescriber.notFound('user'));
    user.name = name;
    return IdentityResult.success();
  }

  /**
   * Asks `authorize` about the user as stored, under the admin group's lock (as the writes that take `{ authorize }`
   * do), for a change written outside the user store just after (its sessions, an invite's email), which cannot take
   * that lock itself: a caller's check made on a copy read before the user was made an admin is made again on the
   * user as the last membership change left them (OWASP ASVS 4.0 4.1.3, 5.0 15.4.2). A throw goes on; `not_found`
   * when the user is gone.
   */
  async authorizeAsStored(user: BackOfficeUser, authorize: BackOfficeWriteAuthorizer): Promise<IdentityResult> {
    const found = await this.writeAuthorized(user.id, async () => {}, authorize);
    return found === 'not_found' ? IdentityResult.failed(this.errorDescriber.notFound('user')) : IdentityResult.success();
  }

  /**
   * Turns the 2FA flag on or off with a new security stamp, and raises `UserTwoFactorEnabledNotification` or
   * `UserTwoFactorDisabledNotification`: the one place either is raised, so a host calling the manager sees
   * what the REST routes do. Turning it off deletes the recovery codes in the same transaction, after the flag (the
   * user's row, locked): a new set asked for meanwhile ({@link regenerateRecoveryCodes}) is either written before it
   * and deleted by it, or refused after it; 2FA is never left off with codes stored (OWASP ASVS 4.0 1.11.3).
   *
   * With `options.whileSetUp` (turning it on: the provider whose enrolment was just confirmed) the flag is written
   * only while that provider is still set up (`isSetUp`), asked in the write's transaction just before the flag and
   * again after it (the user's row locked by then; the provider joined to the transaction through
   * `TwoFactorProvider.inTransactionOf`): a new setup (`POST /auth/2fa/setup`) that replaced the confirmed key between
   * the code check and this write saw 2FA off and left an unconfirmed key the person's app does not have. Then the
   * transaction rolls back (flag, stamp unchanged; no notification) and the answer is `invalid_code`
   * ({@link BackOfficeErrorDescriber.twoFactorSetupReplaced}). The built-in PostgreSQL store's setup locks the user's
   * row too, so it either commits before the second check, which sees it, or waits and then keeps the key (2FA on).
   * The provider is also asked once before the transaction: a store without transactions, or without rollback (the
   * in-memory one, whose methods are each atomic), or a provider that cannot join the transaction the store hands over
   * (`inTransactionOf` null for it, also when it answers itself for the store) relies on that read just before the
   * write: a setup landing between that read and the flag goes unseen.
   */
  async setTwoFactorEnabled(user: BackOfficeUser, enabled: boolean, options: { whileSetUp?: TwoFactorProvider } = {}): Promise<IdentityResult> {
    const provider = enabled ? options.whileSetUp : undefined;
    if (!provider) return this.writeTwoFactorEnabled(user, enabled);
    const replaced = () => IdentityResult.failed(this.errorDescriber.twoFactorSetupReplaced());
    // Asked before the transaction (on the pool, never on a second connection from in it), whatever the provider answers
    // for this.store: whether it can join is known only from the store the transaction hands over (a host store's may be
    // an object the provider does not know: its in-transaction checks are then skipped, and this read is the only one).
    if (!(await provider.isSetUp(user))) return replaced();
    const result = await abortable((abort: (value: 'replaced') => never) => {
      const check = async (store: BackOfficeUserStore) => {
        const joined = provider.inTransactionOf?.(store) ?? null;
        if (joined && !(await joined.isSetUp(user))) abort('replaced');
      };
      // Again after the flag only where a refusal rolls it back: a transaction hands its work a store bound to it, not
      // the store itself (a store without transactions, or the in-memory one, would keep the flag on).
      const checkAgain = async (store: BackOfficeUserStore) => (store === this.store ? undefined : check(store));
      return this.writeTwoFactorEnabled(user, true, check, undefined, checkAgain);
    });
    return result === 'replaced' ? replaced() : result;
  }

  /**
   * {@link setTwoFactorEnabled}, with `first` run in the same transaction before the flag (a read only: the user's row
   * is not locked yet, and a write of a row that hangs off it would invert the lock order), `then` after it (the
   * user's row locked: a reset's enrolments) and, with `authorize`, under the admin group's lock after asking it about
   * the user as stored ({@link writeAuthorized}).
   */
  private async writeTwoFactorEnabled(
    user: BackOfficeUser,
    enabled: boolean,
    first?: (store: BackOfficeUserStore) => Promise<void>,
    authorize?: BackOfficeWriteAuthorizer,
    then?: (store: BackOfficeUserStore) => Promise<void>,
  ): Promise<IdentityResult> {
    if (!isUserTwoFactorStore(this.store)) return IdentityResult.failed(this.errorDescriber.notSupported('two-factor authentication'));
    const stamp = this.newSecurityStamp();
    const now = this.now();
    const written = await this.writeAuthorized(
      user.id,
      async (store) => {
        await first?.(store);
        await this.capability(isUserTwoFactorStore, 'UserTwoFactorStore', store).setTwoFactorEnabled(user.id, enabled, stamp, now);
        if (!enabled && isUserRecoveryCodeStore(store)) await store.replaceRecoveryCodes(user.id, [], now);
        await then?.(store);
      },
      authorize,
    );
    if (written === 'not_found') return IdentityResult.failed(this.errorDescriber.notFound('user'));
    Object.assign(user, { twoFactorEnabled: enabled, securityStamp: stamp });
    if (enabled) await this.notify(UserTwoFactorEnabledNotification, user);
    else await this.notify(UserTwoFactorDisabledNotification, user);
    return IdentityResult.success();
  }

  /**
   * Starts (or with null clears) the grace period for enrolling in 2FA.
   * @throws BackOfficeNotSupportedError when the store is no `UserTwoFactorSetupDeadlineStore`
   * (check {@link supportsTwoFactorSetupDeadline}).
   */
  async setTwoFactorSetupDeadline(user: BackOfficeUser, deadline: Date | null): Promise<void> {
    await this.capability(isUserTwoFactorSetupDeadlineStore, 'UserTwoFactorSetupDeadlineStore').setTwoFactorSetupDeadline(user.id, deadline);
    user.twoFactorSetupDeadline = deadline;
  }

  /** The provider called `name`, if registered. */
  getTwoFactorProvider(name: string): TwoFactorProvider | undefined {
    return this.twoFactorProviders.find((p) => p.name === name);
  }

  /** The providers the user can sign in with: enrolled ones, plus `recovery` while codes are left. */
  async getValidTwoFactorProviders(user: BackOfficeUser): Promise<string[]> {
    const [names, codesLeft] = await Promise.all([this.getSetUpTwoFactorProviders(user), this.countRecoveryCodes(user)]);
    return codesLeft > 0 ? [...names, RECOVERY_PROVIDER] : names;
  }

  /**
   * The second factors the user has set up, recovery codes aside (they are a fallback, not a factor): every
   * registered provider's `isSetUp`, asked at once (one round trip's wait with the built-in stores; the built-in
   * passkey provider tests for a passkey without reading them). In registration order.
   */
  async getSetUpTwoFactorProviders(user: BackOfficeUser): Promise<string[]> {
    const setUp = await Promise.all(this.twoFactorProviders.map((provider) => provider.isSetUp(user)));
    return this.twoFactorProviders.filter((_, i) => setUp[i]).map((provider) => provider.name);
  }

  /**
   * Checks a second-factor code: `recovery` redeems a recovery code, any other name asks that provider. `outcome`
   * learns whether a refused code was a reused one (`reused`), for the audit. `context.pendingSignInId`, at a
   * sign-in's second step, is handed to the provider (a passkey answers only its own pending sign-in's challenge).
   */
  async verifyTwoFactorCode(
    user: BackOfficeUser,
    provider: string,
    code: string,
    outcome?: TwoFactorVerifyOutcome,
    context: { pendingSignInId?: string } = {},
  ): Promise<boolean> {
    if (!this.supportsUserTwoFactor || typeof code !== 'string') return false;
    if (provider === RECOVERY_PROVIDER) return this.redeemRecoveryCode(user, code);
    const found = this.getTwoFactorProvider(provider);
    if (!found || code.length > (found.maxCodeLength ?? 64)) return false;
    const options = { ...(outcome ? { outcome } : {}), ...(context.pendingSignInId === undefined ? {} : { pendingSignInId: context.pendingSignInId }) };
    return Object.keys(options).length > 0 ? found.verify(user, code, options) : found.verify(user, code);
  }

  /**
   * New recovery codes of 80 random bits (the old ones stop working); only a keyed, per-user HMAC of each is
   * stored (see `hashRecoveryCode`). With `options.whileTwoFactorEnabled` the store writes them only while the user,
   * read under the lock of the write, has 2FA on, and the answer is null (nothing written) once it is off: for a
   * caller that turned 2FA on just before, so a disable committed in between leaves no code behind (OWASP ASVS 4.0
   * 1.11.3).
   */
  async generateNewRecoveryCodes(user: BackOfficeUser, count?: number): Promise<string[]>;
  async generateNewRecoveryCodes(user: BackOfficeUser, count: number | undefined, options: { whileTwoFactorEnabled: true }): Promise<string[] | null>;
  async generateNewRecoveryCodes(user: BackOfficeUser, count = 10, options: { whileTwoFactorEnabled?: boolean } = {}): Promise<string[] | null> {
    return this.storeNewRecoveryCodes(user, count, options);
  }

  /** New codes stored as {@link generateNewRecoveryCodes} does; null when the store refused them (`options`). */
  private async storeNewRecoveryCodes(user: BackOfficeUser, count: number, options: { whileTwoFactorEnabled?: boolean }): Promise<string[] | null> {
    const store = this.getRecoveryCodeStore();
    const codes = Array.from({ length: count }, () => newRecoveryCode());
    const stored = await store.replaceRecoveryCodes(user.id, codes.map((c) => hashRecoveryCode(this.options, user.id, c)), this.now(), options);
    return stored === false ? null : codes;
  }

  /**
   * A new set of recovery codes for a user who has 2FA on (ASP.NET Core Identity's
   * `GenerateNewTwoFactorRecoveryCodesAsync`): the old set stops working at once, the new codes are answered once
   * (only their keyed hashes are stored) and `UserRecoveryCodesRegeneratedNotification` is raised. Fails with
   * `not_supported` when the store keeps no recovery codes and `two_factor_not_enabled` while 2FA is off: on `user`
   * as read, and as the store reads it under the lock that writes the codes (`whileTwoFactorEnabled`), so a set asked
   * for while a disable commits is refused rather than left behind with 2FA off (OWASP ASVS 4.0 1.11.3).
   */
  async regenerateRecoveryCodes(user: BackOfficeUser, count = 10): Promise<IdentityResult<string[]>> {
    if (!this.supportsUserTwoFactor || !this.supportsUserRecoveryCodes) return IdentityResult.failed(this.errorDescriber.notSupported('recovery codes'));
    const notEnabled = () => IdentityResult.failed<string[]>({ code: 'two_factor_not_enabled', description: 'Two-factor authentication is not on.' });
    if (!user.twoFactorEnabled) return notEnabled();
    const codes = await this.storeNewRecoveryCodes(user, count, { whileTwoFactorEnabled: true });
    if (codes === null) return notEnabled();
    await this.notify(UserRecoveryCodesRegeneratedNotification, user, { count: codes.length });
    return IdentityResult.success(codes);
  }

  /**
   * How many of the user's recovery codes are left unused (ASP.NET Core Identity's `CountRecoveryCodesAsync`);
   * 0 when the store keeps none.
   */
  async countRecoveryCodes(user: Pick<BackOfficeUser, 'id'>): Promise<number> {
    return isUserRecoveryCodeStore(this.store) ? this.store.countRecoveryCodes(user.id) : 0;
  }

  /** Uses up a recovery code: a current one, or one issued before 0.2 (kept working once; see the README). */
  async redeemRecoveryCode(user: BackOfficeUser, code: string): Promise<boolean> {
    if (!isUserRecoveryCodeStore(this.store) || typeof code !== 'string' || code.length > 64) return false;
    const hashes = [hashRecoveryCode(this.options, user.id, code), legacyRecoveryCodeHash(user.id, code)];
    return this.store.redeemRecoveryCode(user.id, hashes, this.now());
  }

  // ---- passkeys ----------------------------------------------------------------------------------

  /** Most passkeys one account may have. */
  readonly maxPasskeysPerUser = 25;

  /** The user's passkeys, oldest first; none when passkeys are off. */
  async getPasskeys(user: BackOfficeUser): Promise<StoredPasskey[]> {
    return this.supportsUserPasskeys ? this.getPasskeyStore().listPasskeys(user.id) : [];
  }

  /** Trimmed NFC name of 1 to 64 characters without control characters, or null. */
  normalizePasskeyName(name: unknown): string | null {
    if (typeof name !== 'string') return null;
    const trimmed = name.normalize('NFC').trim();
    return trimmed.length >= 1 && [...trimmed].length <= 64 && !CONTROL_CHARACTERS.test(trimmed) ? trimmed : null;
  }

  /**
   * Registers a verified passkey (`UserPasskeyAddedNotification`) and, as turning two-factor on does, renews the
   * security stamp: a new way in was added, so the sessions and pending second steps made before end (OWASP ASVS
   * 5.0 7.4.3). Call `signInManager.refreshSignIn` afterwards (and `keepSignedInThrough` around this call to keep
   * the session that asked). Fails on a duplicate credential, a bad name or too many passkeys (nothing renewed),
   * `password_reset_required` while an admin's forced reset is pending, `not_found` when the user was deleted meanwhile.
   */
  async addPasskey(user: BackOfficeUser, passkey: NewStoredPasskey): Promise<IdentityResult<StoredPasskey>> {
    const d = this.errorDescriber;
    if (!this.supportsUserPasskeys) return IdentityResult.failed(d.notSupported('passkeys'));
    const name = this.normalizePasskeyName(passkey.name);
    if (name === null) return IdentityResult.failed(d.invalidPasskeyName());
    const store = this.getPasskeyStore();
    if ((await store.listPasskeys(user.id)).length >= this.maxPasskeysPerUser) return IdentityResult.failed(d.tooManyPasskeys(this.maxPasskeysPerUser));
    try {
      // Refused while an admin's forced reset is pending, decided on the user read under the insert's lock: a
      // registration in flight when the reset ran (its session live, past the guard) is either written before the
      // reset's password write, and then removed by removeAllPasskeys, or refused (OWASP ASVS 5.0 6.4.x / 4.0 2.5.x).
      const refuseIf = (current: BackOfficeUser) => this.isPasswordResetPending(current);
      const added = await store.addPasskey(user.id, { ...passkey, name }, this.now(), { maxPerUser: this.maxPasskeysPerUser, refuseIf });
      if (this.supportsUserSecurityStamp) await this.updateSecurityStamp(user);
      await this.notify(UserPasskeyAddedNotification, user, { passkeyId: added.id, passkeyName: added.name });
      return IdentityResult.success(added);
    } catch (error) {
      if (error instanceof BackOfficeDuplicatePasskeyError) return IdentityResult.failed(d.duplicatePasskey());
      if (error instanceof BackOfficeTooManyPasskeysError) return IdentityResult.failed(d.tooManyPasskeys(this.maxPasskeysPerUser));
      // The user deleted meanwhile (the store refuses, or its foreign key does): `not_found`, not a forced reset or a 500.
      if (!(await this.store.findById(user.id))) return IdentityResult.failed(d.notFound('user'));
      if (error instanceof BackOfficePasskeyRefusedError) return IdentityResult.failed(d.passwordResetRequired());
      throw error;
    }
  }

  /**
   * Renames one of the user's passkeys (`UserPasskeyRenamedNotification`, with the previous name); fails with
   * `not_found` when the user has no such passkey, `invalid_passkey_name` for a bad name. A name that is the stored
   * one once normalized (NFC, trimmed) succeeds with nothing written or sent: each rename is an audit entry, and a
   * session repeating one must not bury the earlier entries (OWASP ASVS 5.0 16.3.x / 4.0 11.1.4).
   */
  async renamePasskey(user: BackOfficeUser, passkeyId: string, name: string): Promise<IdentityResult> {
    const d = this.errorDescriber;
    if (!this.supportsUserPasskeys) return IdentityResult.failed(d.notSupported('passkeys'));
    const normalized = this.normalizePasskeyName(name);
    if (normalized === null) return IdentityResult.failed(d.invalidPasskeyName());
    const store = this.getPasskeyStore();
    const passkey = (await store.listPasskeys(user.id)).find((p) => p.id === passkeyId);
    if (passkey?.name === normalized) return IdentityResult.success();
    if (!passkey || !(await store.renamePasskey(user.id, passkeyId, normalized, this.now()))) return IdentityResult.failed(d.notFound('passkey'));
    await this.notify(UserPasskeyRenamedNotification, user, { passkeyId: passkey.id, passkeyName: normalized, previousName: passkey.name });
    return IdentityResult.success();
  }

  /**
   * Removes one of the user's passkeys (`UserPasskeyRemovedNotification`) and, as for a password change or an
   * unlinked login, renews the security stamp: a way in is gone, so the sessions and pending second steps made
   * before end (OWASP ASVS 4.0 3.3.3, ASVS 5.0 7.4.3). Call `signInManager.refreshSignIn` afterwards (and
   * `keepSignedInThrough` around this call to keep the session that asked). False when the user has no such passkey.
   */
  async removePasskey(user: BackOfficeUser, passkeyId: string): Promise<boolean> {
    return (await this.deletePasskey(user, passkeyId, 0)) === 'removed';
  }

  /**
   * Removes every passkey of the user in one store write (`UserPasskeyStore.removeAllPasskeys`: all or none; when it
   * throws, none went and the error goes on); how many went. One `UserPasskeyRemovedNotification` per passkey removed
   * (the audit keeps one entry each; the module mails none for it) and one new security stamp for them all, none with
   * `stampRenewed` (the caller renewed it in the same action, as the forced reset's {@link removePassword} did). A host
   * store without `removeAllPasskeys` has them removed one at a time ({@link UserPasskeyStore.removePasskey}), not
   * atomically. An admin's forced password reset uses it: a passkey added by whoever prompted the reset would
   * otherwise sign in again once the owner has set the new password (OWASP ASVS 5.0 6.4.x / 4.0 2.5.x).
   */
  async removeAllPasskeys(user: BackOfficeUser, options: { stampRenewed?: boolean } = {}): Promise<number> {
    if (!this.supportsUserPasskeys) return 0;
    const store = this.getPasskeyStore();
    let removed: StoredPasskey[] = [];
    if (store.removeAllPasskeys) removed = await store.removeAllPasskeys(user.id);
    else for (const passkey of await store.listPasskeys(user.id)) if (await store.removePasskey(user.id, passkey.id)) removed.push(passkey);
    if (removed.length === 0) return 0;
    if (this.supportsUserSecurityStamp && !options.stampRenewed) await this.updateSecurityStamp(user);
    for (const passkey of removed) await this.notify(UserPasskeyRemovedNotification, user, { passkeyId: passkey.id, passkeyName: passkey.name });
    return removed.length;
  }

  /**
   * The user's own removal of a passkey (`DELETE /auth/passkeys/:id`): as {@link removePasskey}, but while 2FA is
   * on and passkeys are the user's only second factor (no other provider set up; recovery codes are a fallback,
   * not a factor) the last passkey stays: `last_second_factor`, else the next sign-in would ask for a second
   * factor nobody can give. Counted with the delete (removals sent at once keep one). `not_found` for no such
   * passkey of the user's. An admin's removal (a lost device) is not guarded: {@link removePasskey}.
   */
  async removeOwnPasskey(user: BackOfficeUser, passkeyId: string): Promise<IdentityResult> {
    const keepAtLeast = (await this.passkeysAreOnlySecondFactor(user)) ? 1 : 0;
    const outcome = await this.deletePasskey(user, passkeyId, keepAtLeast);
    if (outcome === 'removed') return IdentityResult.success();
    return IdentityResult.failed(outcome === 'kept' ? this.errorDescriber.lastSecondFactor() : { code: 'not_found', description: 'No such passkey.' });
  }

  /** 2FA is on and no provider but passkeys is set up for it (recovery codes do not count). */
  private async passkeysAreOnlySecondFactor(user: BackOfficeUser): Promise<boolean> {
    if (!user.twoFactorEnabled || !this.supportsUserTwoFactor) return false;
    return (await this.getSetUpTwoFactorProviders(user)).every((p) => p === PASSKEY_PROVIDER);
  }

  private async deletePasskey(user: BackOfficeUser, passkeyId: string, keepAtLeast: number): Promise<'removed' | 'kept' | 'not_found'> {
    if (!this.supportsUserPasskeys) return 'not_found';
    const store = this.getPasskeyStore();
    const passkeys = await store.listPasskeys(user.id);
    const passkey = passkeys.find((p) => p.id === passkeyId);
    if (!passkey) return 'not_found';
    // Decided here too, not only by the store: a host store that ignores `keepAtLeast` would remove the last one.
    // The store's own count (locked with the delete) still settles removals sent at once.
    if (keepAtLeast > 0 && passkeys.length <= keepAtLeast) return 'kept';
    if (!(await store.removePasskey(user.id, passkeyId, keepAtLeast))) {
      return keepAtLeast > 0 && (await store.listPasskeys(user.id)).some((p) => p.id === passkeyId) ? 'kept' : 'not_found';
    }
    if (this.supportsUserSecurityStamp) await this.updateSecurityStamp(user);
    await this.notify(UserPasskeyRemovedNotification, user, { passkeyId: passkey.id, passkeyName: passkey.name });
    return 'removed';
  }

  /**
   * Turns 2FA off: every enrolment and recovery code removed, the flag off, a new security stamp ({@link
   * setTwoFactorEnabled}: the flag and the codes in one transaction). The enrolments of providers that can join that
   * transaction (`TwoFactorProvider.inTransactionOf`: the built-in TOTP and passkey providers) go in it too, after the
   * flag: the user's row is locked (written) before the enrolments' rows, the order of every other writer (a setup's
   * `setAuthenticatorKey` locks the row, then writes the key; a user's delete deletes the row, then its keys by
   * cascade). Removed before the flag, the key's row was held while the reset waited for the user's row that a
   * concurrent setup or delete held while it waited for the key's: PostgreSQL aborted one of them (a deadlock, 503).
   * Another provider's enrolments are removed after the commit.
   *
   * With `options.authorize` the whole transaction runs under the admin group's lock, as {@link setGroups}' does, and
   * `authorize` is first asked about the user as stored then (OWASP ASVS 4.0 4.1.3, 5.0 15.4.2): when it throws,
   * nothing is removed (no enrolment either) and the error goes on. An admin's reset checked on a copy read before the
   * user was made an admin would otherwise strip that admin's second factor.
   */
  async resetTwoFactor(user: BackOfficeUser, options: BackOfficeAuthorizedWriteOptions = {}): Promise<IdentityResult> {
    if (!isUserTwoFactorStore(this.store)) {
      for (const provider of this.twoFactorProviders) await provider.reset(user);
      if (isUserRecoveryCodeStore(this.store)) await this.store.replaceRecoveryCodes(user.id, [], this.now());
      return IdentityResult.failed(this.errorDescriber.notSupported('two-factor authentication'));
    }
    let afterCommit: TwoFactorProvider[] = [];
    const resetJoined = async (store: BackOfficeUserStore) => {
      afterCommit = [];
      for (const provider of this.twoFactorProviders) {
        const joined = provider.inTransactionOf?.(store) ?? null;
        if (joined) await joined.reset(user);
        else afterCommit.push(provider);
      }
    };
    const result = await this.writeTwoFactorEnabled(user, false, undefined, options.authorize, resetJoined);
    if (!result.succeeded) return result;
    for (const provider of afterCommit) await provider.reset(user);
    return result;
  }

  /**
   * Enables or disables (Umbraco's `IsApproved`) a user. Disabling renews the stamp, ending sessions; it may
   * carry a reason and an end (`until`), after which the next sign-in enables the user again. A NUL or lone
   * surrogate in the reason (free text no database column holds) is stored as U+FFFD.
   *
   * `options.authorize`, as {@link setGroups}' is, is called with the user as stored when the change is written (under
   * the admin group's lock, inside the write's transaction), so a caller's permission check cannot rest on a copy that
   * a concurrent change (say the user made an admin) made stale (OWASP ASVS 5.0 15.4.2); when it throws, nothing is
   * written and the error goes on.
   */
  async setApproved(
    user: BackOfficeUser,
    isApproved: boolean,
    disable: { reason?: string | null; until?: Date | null } = {},
    options: BackOfficeAuthorizedWriteOptions = {},
  ): Promise<IdentityResult> {
    const removesAdmin = (current: BackOfficeUser) => !isApproved && isEnabledAdmin(current);
    const changes = isApproved
      ? { isApproved, disabledReason: null, disabledUntil: null }
      : { isApproved, disabledReason: disable.reason == null ? null : toStorableText(disable.reason), disabledUntil: disable.until ?? null };
    const stamp = !isApproved && this.supportsUserSecurityStamp ? this.newSecurityStamp() : null;
    const now = this.now();
    // The row (not approved, a new stamp: sessions end) and the links mailed before the disable (they must not work
    // once the user is enabled again) in one transaction: the user's row first, then its links (the store's lock
    // order), so a failure or crash between them cannot leave a disabled user with live links.
    // Every disable (the HTTP API, the manager API, a timed one) ends an API user's bearer tokens, so enabling it
    // again never revives a token issued before (OWASP ASVS 4.0 3.3.1, 3.5.2). Imports revoke in their own SQL.
    const apiClients = !isApproved && user.kind === 'api' ? this.apiClientStore : null;
    let tokensRevoked = false;
    const written = await this.writeUnlessLastAdmin(removesAdmin, user.id, async (store) => {
      await store.updateProfile(user.id, changes, now);
      if (isApproved) return;
      if (stamp !== null) await this.capability(isUserSecurityStampStore, 'UserSecurityStampStore', store).setSecurityStamp(user.id, stamp, now);
      if (isUserTokenStore(store)) await this.voidPasswordBoundTokens(store, user.id, now);
      // In the same transaction when the API client store can join it: revoked after the commit, a failure or crash
      // in between left a disabled user with live bearer tokens (that worked again once it was enabled).
      const joined = apiClients?.inTransactionOf?.(store) ?? null;
      if (joined) {
        await joined.revokeAccessTokens(user.id, now);
        tokensRevoked = true;
      }
    }, options.authorize);
    if (written !== 'written') return IdentityResult.failed(written === 'last_admin' ? this.errorDescriber.lastAdmin() : this.errorDescriber.notFound('user'));
    Object.assign(user, changes, stamp !== null ? { securityStamp: stamp } : {});
    // A store that cannot join the user store's transaction (another database, a host's own store) revokes after it.
    if (apiClients && !tokensRevoked) await apiClients.revokeAccessTokens(user.id, this.now());
    if (isApproved) await this.notify(UserEnabledNotification, user);
    else await this.notify(UserDisabledNotification, user, { reason: changes.disabledReason, until: changes.disabledUntil });
    return IdentityResult.success();
  }

  /**
   * Removes the password (it stops working) and renews the security stamp, so every session ends: the first
   * step of an admin's forced reset. With `unlessDirectoryManaged` (the forced reset) nothing changes for a user
   * marked directory-managed, read under the lock of the write (a mark committed after the caller read the user
   * counts): `password_managed_by_directory`.
   *
   * With `options.authorize` the removal runs under the admin group's lock, as {@link setGroups} does, and `authorize`
   * is first asked about the user as stored then (OWASP ASVS 5.0 15.4.2); when it throws, nothing is written and the
   * error goes on.
   */
  async removePassword(
    user: BackOfficeUser,
    options: BackOfficeAuthorizedWriteOptions & { unlessDirectoryManaged?: boolean } = {},
  ): Promise<IdentityResult> {
    if (!this.supportsUserPassword) return IdentityResult.failed(this.errorDescriber.notSupported('passwords'));
    if (options.unlessDirectoryManaged && this.isDirectoryManaged(user)) return IdentityResult.failed(this.errorDescriber.passwordManagedByDirectory());
    const stamp = this.newSecurityStamp();
    const now = this.now();
    const unlessDirectoryManaged = options.unlessDirectoryManaged === true;
    let written = false;
    const write = async (store: BackOfficeUserStore) => {
      const passwords = this.capability(isUserPasswordStore, 'UserPasswordStore', store);
      if ((await passwords.setPasswordHash(user.id, null, stamp, now, { forcedReset: true, ...(unlessDirectoryManaged ? { unlessDirectoryManaged } : {}) })) === false) return;
      await this.voidPasswordBoundTokens(store, user.id, now);
      written = true;
    };
    await this.writeAuthorized(user.id, write, options.authorize);
    if (!written) {
      user.directoryManagedAt = (await this.findById(user.id))?.directoryManagedAt ?? null;
      return IdentityResult.failed(this.isDirectoryManaged(user) ? this.errorDescriber.passwordManagedByDirectory() : this.errorDescriber.notFound('user'));
    }
    Object.assign(user, { passwordHash: null, securityStamp: stamp, lastPasswordChangeAt: now, passwordResetForcedAt: now });
    return IdentityResult.success();
  }

  /**
   * Deletes the user (sessions and tokens go with it); refuses to delete the last enabled admin. `options.authorize`
   * as in {@link setApproved}: asked about the user as stored when the row is deleted. `not_found` when the user was
   * deleted meanwhile (by a concurrent request): this call deleted nothing, so its caller audits nothing.
   */
  async deleteUser(user: BackOfficeUser, options: BackOfficeAuthorizedWriteOptions = {}): Promise<IdentityResult> {
    // `false` when no row went (a concurrent delete took it first): `not_found`, without a group lock too. `void` (a
    // store that does not answer) is taken as deleted: a read after it would find the user gone either way.
    const written = await this.writeUnlessLastAdmin(
      isEnabledAdmin,
      user.id,
      async (store) => ((await store.delete(user.id)) === false ? 'no_user' : 'written'),
      options.authorize,
    );
    if (written === 'written') return IdentityResult.success();
    return IdentityResult.failed(written === 'last_admin' ? this.errorDescriber.lastAdmin() : this.errorDescriber.notFound('user'));
  }

  /**
   * Enables a user whose timed disable has ended; true when it did. Decided on `user` (as the sign-in read them) and
   * again on the user as stored when the enable is written (under the admin group's lock; a store without group locks
   * is read again just before): a disable for good, or for longer, that an admin committed after the sign-in's read
   * is not undone by it (OWASP ASVS 4.0 1.11.3, 5.0 15.4.2). When it no longer applies, `user` takes the stored
   * disable (so the caller refuses the sign-in) and nothing is written.
   */
  async liftExpiredDisable(user: BackOfficeUser): Promise<boolean> {
    if (!this.disableHasEnded(user)) return false;
    const stillEnded: BackOfficeWriteAuthorizer = (current) => {
      if (!this.disableHasEnded(current)) throw new DisableNotEnded(current);
    };
    try {
      if (!isUserGroupStore(this.store)) stillEnded((await this.store.findById(user.id)) ?? user);
      return (await this.setApproved(user, true, {}, { authorize: stillEnded })).succeeded;
    } catch (error) {
      if (!(error instanceof DisableNotEnded)) throw error;
      const { isApproved, disabledReason, disabledUntil } = error.current;
      Object.assign(user, { isApproved, disabledReason, disabledUntil });
      return false;
    }
  }

  /** Disabled with an `until` that has passed: the next sign-in enables the user again ({@link liftExpiredDisable}). */
  private disableHasEnded(user: Pick<BackOfficeUser, 'isApproved' | 'disabledUntil'>): boolean {
    return !user.isApproved && user.disabledUntil != null && user.disabledUntil.getTime() <= this.now().getTime();
  }

  /**
   * Replaces the user's groups; refuses to remove the last enabled admin from `admin`, and refuses local edits
   * (`groups_managed_by_provider`) of a user whose groups an external provider manages, unless `byProvider`
   * names that provider (the external sign-in applying the provider's groups).
   *
   * `authorize` is called with the user as stored when the groups are written (read under the same lock as the
   * write, after any concurrent membership change), so a caller's permission check cannot rest on a copy that a
   * concurrent change made stale (OWASP ASVS 5.0 15.4.2); when it throws, nothing is written and the error goes on.
   * It runs inside the write's transaction: it must not wait for another database connection (a pool of one would
   * wait for ever), so it checks what it has in hand. It is asked again about the user as written, in the same
   * transaction, with the permissions of its new groups as stored: a group the write adds that a concurrent edit
   * (`PUT /groups/:alias`) gave a permission the caller lacks is seen (the edit committed before the write's
   * membership rows took the group's row), or the edit waits for the write (OWASP ASVS 4.0 4.1.3, 5.0 8.2.1); when
   * that throws, the groups as read before the write are put back (the transaction rolls the write back anyway; a
   * store without rollback does not keep it) and the error goes on.
   *
   * `stepUp`, when given, is called under the same lock, after `authorize`, when `groups` holds one the user as stored
   * there is not in (not as `user` was read before: a group a concurrent request took away is added again by this
   * write), and may throw to refuse (nothing written, the error goes on): a group given is a lasting grant of access
   * (`PUT /users/:id/groups`' step-up, OWASP ASVS 5.0 7.5.3 / 4.0 3.7.1), asked after the 409 / 400 checks above as
   * the group routes ask theirs. It is also called, in the same transaction after the write, when the user as stored
   * was in a group requiring two-factor and as written is in none: the rule weakens for them (OWASP ASVS 4.0 2.2.x);
   * a throw puts the groups back, as for `authorize`.
   *
   * A subclass that overrides this must pass `options` on to `super.setGroups` (or call `options.authorize` and
   * `options.stepUp` on the user as stored before its own write): `PUT /users/:id/groups` relies on it, and an
   * override that drops `options` skips those checks silently.
   */
  async setGroups(
    user: BackOfficeUser,
    groups: string[],
    options: BackOfficeAuthorizedWriteOptions & { byProvider?: string; stepUp?: () => void } = {},
  ): Promise<IdentityResult> {
    if (!isUserGroupStore(this.store)) return IdentityResult.failed(this.errorDescriber.notSupported('groups'));
    const managedBy = await this.groupsManagedBy(user);
    if (managedBy.length > 0 && !(options.byProvider && managedBy.includes(options.byProvider))) {
      return IdentityResult.failed(this.errorDescriber.groupsManagedByProvider());
    }
    let before = [...user.groups];
    const unknown = await this.unknownGroupErrors(groups);
    if (unknown.length) return IdentityResult.failed(...unknown);
    const aliases = [...new Set(groups)];
    const removesAdmin = (current: BackOfficeUser) => isEnabledAdmin(current) && !aliases.includes('admin');
    let weakens: ReturnType<typeof twoFactorWeakening>;
    const authorize = (current: BackOfficeUser) => {
      before = [...current.groups]; // what the write replaces, for the notification's added / removed
      weakens = twoFactorWeakening(current);
      options.authorize?.(current);
      if (addsAny(aliases, current.groups)) options.stepUp?.();
    };
    const write = async (store: BackOfficeUserStore, abort: (gone: string[]) => never) => {
      const groupStore = this.capability(isUserGroupStore, 'UserGroupStore', store);
      // Deleted since the check above (DELETE /groups/:alias): answered as a request naming an unknown group, not as
      // the store's error (a 500). The groups given are locked by now (findAsStored), so none goes before the commit.
      const known = await this.knownGroupAliases(store);
      const gone = aliases.filter((alias) => !known.has(alias));
      if (gone.length > 0) abort(gone);
      await groupStore.setGroups(user.id, aliases);
      // The 2FA rule's weakening, asked only of a write that may ask a step-up.
      const mayWeaken = options.stepUp ? weakens : undefined;
      if (!options.authorize && !mayWeaken) return;
      const written = await store.findById(user.id);
      try {
        if (written) options.authorize?.(written);
        // Out of every group requiring 2FA it was in: the rule weakens for this user (a password alone signs in).
        if (written && mayWeaken?.(written)) options.stepUp?.();
      } catch (error) {
        await groupStore.setGroups(user.id, before);
        throw error;
      }
    };
    // The groups locked in alias order before any membership row, with or without a re-check (an admin's write too):
    // else a group delete moving this user's group into one given here deadlocked with it (503).
    const written = await abortable((abort: (gone: string[]) => never) =>
      this.writeUnlessLastAdmin(removesAdmin, user.id, (store) => write(store, abort), authorize, aliases),
    );
    if (Array.isArray(written)) return IdentityResult.failed(...written.map((alias) => this.errorDescriber.unknownGroup(alias)));
    if (written !== 'written') return IdentityResult.failed(written === 'last_admin' ? this.errorDescriber.lastAdmin() : this.errorDescriber.notFound('user'));
    user.groups = aliases;
    if (this.supportsUserSecurityStamp) await this.updateSecurityStamp(user);
    await this.notify(UserGroupsChangedNotification, user, {
      groups: user.groups,
      added: aliases.filter((g) => !before.includes(g)).sort(),
      removed: before.filter((g) => !aliases.includes(g)).sort(),
      source: options.byProvider ? `provider:${options.byProvider}` : 'local',
    });
    return IdentityResult.success();
  }

  /** Names of the user's linked providers that manage groups (`autoLink.groupsManagedByProvider`). */
  async groupsManagedBy(user: BackOfficeUser): Promise<string[]> {
    const managing = this.options.externalLogins.filter((p) => p.autoLink.groupsManagedByProvider).map((p) => p.name);
    if (managing.length === 0 || !this.supportsUserLogin) return [];
    return (await this.getLogins(user)).map((l) => l.provider).filter((p) => managing.includes(p));
  }

  // ---- external logins (ASP.NET Identity's IUserLoginStore) ---------------------------------------

  /** The user's external logins, oldest first (empty when the store has no `UserLoginStore`). */
  async getLogins(user: Pick<BackOfficeUser, 'id'>): Promise<BackOfficeUserLogin[]> {
    return isUserLoginStore(this.store) ? this.store.getLogins(user.id) : [];
  }

  /** The user who owns this provider key, or null. */
  async findByLogin(provider: string, providerKey: string): Promise<BackOfficeUser | null> {
    if (!isUserLoginStore(this.store) || typeof provider !== 'string' || typeof providerKey !== 'string') return null;
    const userId = await this.store.findUserIdByLogin(provider, providerKey);
    return userId ? redactSecretsWhenLogged(await this.store.findById(userId)) : null;
  }

  /**
   * Links an external login (`UserLoginLinkedNotification`) and, as adding a passkey does, renews the security stamp:
   * a new way in was added, so the sessions and pending second steps made before end (OWASP ASVS 5.0 7.4.3, 4.0
   * 3.3.3). Call `signInManager.refreshSignIn` afterwards (and `keepSignedInThrough` around this call to keep the
   * session that asked). `login_already_linked` when the key is someone's or the user has one of that provider
   * (nothing renewed).
   */
  async addLogin(user: BackOfficeUser, login: Omit<BackOfficeUserLogin, 'createdAt'>): Promise<IdentityResult> {
    if (!isUserLoginStore(this.store)) return IdentityResult.failed(this.errorDescriber.notSupported('external logins'));
    try {
      await this.store.addLogin(user.id, login, this.now());
    } catch (error) {
      if (error instanceof BackOfficeDuplicateLoginError) return IdentityResult.failed(this.errorDescriber.loginAlreadyLinked());
      throw error;
    }
    await this.loginLinked(user, login.provider);
    return IdentityResult.success();
  }

  /**
   * What follows a login of `provider` written for `user` (after the write; when the write ran in a transaction, an
   * invite's accept, after it commits): a new way in renews the security stamp (when the store has one) and
   * `UserLoginLinkedNotification` is published.
   * Called by {@link addLogin} and by an invite accepted through a provider, so an override reaches both.
   */
  async loginLinked(user: BackOfficeUser, provider: string): Promise<void> {
    if (this.supportsUserSecurityStamp) await this.updateSecurityStamp(user);
    await this.notify(UserLoginLinkedNotification, user, { provider });
  }

  /**
   * Removes the user's login of `provider`, but never the last way in: without a usable password (none, or
   * `denyLocalLogin`) and without another login of a configured provider it answers `last_login_method`. A login
   * of a provider no longer in `externalLogins` is no way in: it never counts, and removing it is always allowed.
   */
  async removeLogin(user: BackOfficeUser, provider: string): Promise<IdentityResult> {
    if (!isUserLoginStore(this.store)) return IdentityResult.failed(this.errorDescriber.notSupported('external logins'));
    const logins = await this.store.getLogins(user.id);
    if (!logins.some((l) => l.provider === provider)) return IdentityResult.failed(this.errorDescriber.loginNotFound());
    const configured = new Set(this.options.externalLogins.map((p) => p.name));
    const passwordWorks = this.hasPassword(user) && !this.options.denyLocalLogin;
    const guarded = !passwordWorks && configured.has(provider);
    // The store counts every login under its lock: keep one more than the retired ones, so a configured one stays.
    const retired = logins.filter((l) => !configured.has(l.provider)).length;
    if (guarded && logins.length <= retired + 1) return IdentityResult.failed(this.errorDescriber.lastLoginMethod());
    if (!(await this.store.removeLogin(user.id, provider, guarded ? retired + 1 : 0))) {
      const left = await this.store.getLogins(user.id);
      return IdentityResult.failed(left.some((l) => l.provider === provider) ? this.errorDescriber.lastLoginMethod() : this.errorDescriber.loginNotFound());
    }
    await this.notify(UserLoginUnlinkedNotification, user, { provider });
    return IdentityResult.success();
  }

  /**
   * Runs `write` (a disable or enable, a deletion, new groups) under the store's `admin` group lock, in one
   * transaction. `removesAdmin` is asked about the user as stored now, read under the lock, not as the caller loaded
   * it: when the write takes an enabled admin away, it runs only while another admin who can sign in now remains
   * (enabled, invite accepted, not locked out). Every such write takes the lock, whether the caller's copy of the
   * user was an admin or not: checked on a copy read before a concurrent promotion or enable, a removal skipped the
   * check while two admins removed each other counting that user, and left no admin. Answers `not_found` when the
   * user is gone. `check`, when given, is asked about the same current user first (a throw aborts: nothing written);
   * a store without groups has no such lock and no check, but still answers `not_found` for a user gone: the user is
   * read in the write's transaction first, and again after a `write` that answers nothing (`void`), which sees a
   * concurrent delete that the write waited for and so wrote nothing (READ COMMITTED: the next statement sees it
   * committed); a `write` that answers `'no_user'` found no user (a delete that deleted no row), `'written'` wrote it
   * (only {@link deleteUser}'s answers: a store's other writes answer nothing, and what a host's store answers anyway,
   * as `false` for "nothing changed", is not passed on, so it never reads as a missing user). Without
   * that, a deletion or disable of a user already gone answered success and was audited (OWASP ASVS 4.0 7.1, 5.0
   * 16.2.1). With `check` or `lockGroups` the user is read after its groups and the groups `lockGroups` names (those
   * the write gives) are locked ({@link findAsStored}): a concurrent group edit is waited for and seen by `check` and
   * by the write's own re-check after it (OWASP ASVS 4.0 4.1.3, 5.0 8.2.1).
   */
  private async writeUnlessLastAdmin(
    removesAdmin: (current: BackOfficeUser) => boolean,
    userId: string,
    write: (store: BackOfficeUserStore) => Promise<WriteAnswer>,
    check?: BackOfficeWriteAuthorizer,
    lockGroups?: readonly string[],
  ): Promise<'written' | 'last_admin' | 'not_found'> {
    const locks = lockGroups ?? (check ? [] : null);
    if (!isUserGroupStore(this.store)) {
      return this.inTransaction(async (store) => {
        if (!(await store.findById(userId))) return 'not_found';
        const wrote = await write(store);
        if (wrote === 'no_user' || (wrote !== 'written' && !(await store.findById(userId)))) return 'not_found';
        return 'written';
      });
    }
    return this.store.withGroupLock('admin', async (store) => {
      const current = locks ? await findAsStored(store, userId, locks) : await store.findById(userId);
      if (!current) return 'not_found';
      check?.(current);
      if (removesAdmin(current)) {
        const others = await this.capability(isUserGroupStore, 'UserGroupStore', store).countApprovedInGroup('admin', { now: this.now(), exceptUserId: userId });
        if (others < 1) return 'last_admin';
      }
      return (await write(store)) === 'no_user' ? 'not_found' : 'written';
    });
  }

  /**
   * Runs `write` in one transaction; with `authorize`, under the admin group's lock after asking `authorize` about the
   * user as stored there (a throw aborts: nothing written), as {@link writeUnlessLastAdmin} does for a write that
   * removes no admin. `not_found` when the user is gone (checked only with `authorize`).
   */
  private async writeAuthorized(
    userId: string,
    write: (store: BackOfficeUserStore) => Promise<void>,
    authorize?: BackOfficeWriteAuthorizer,
  ): Promise<'written' | 'not_found'> {
    if (!authorize) {
      await this.inTransaction(write);
      return 'written';
    }
    return (await this.writeUnlessLastAdmin(() => false, userId, write, authorize)) === 'not_found' ? 'not_found' : 'written';
  }

  /**
   * Records a successful sign-in time. During `POST /auth/login` with the built-in stores the write goes with the
   * session row, in the same statement (the login guard arranges it); otherwise it is written here.
   */
  async recordLogin(user: BackOfficeUser): Promise<void> {
    const now = this.now();
    const deferred = BackOfficeRequestContextStore.current().signInWrites;
    if (deferred?.lastLogin && !deferred.lastLoginAt) deferred.lastLoginAt = { userId: user.id, at: now };
    else await this.store.updateProfile(user.id, { lastLoginAt: now }, now);
    user.lastLoginAt = now;
  }

  // ---- plumbing -----------------------------------------------------------------------------------

  /** Runs `work` in one transaction when the store supports it, else directly. */
  protected inTransaction<T>(work: (store: BackOfficeUserStore) => Promise<T>): Promise<T> {
    return isTransactionalUserStore(this.store) ? this.store.transaction(work) : work(this.store);
  }

  /** Publishes a notification about `user` with the current request's IP and performing user. */
  async notify<N extends BackOfficeNotification>(
    type: new (init: BackOfficeNotificationInit & any) => N,
    user: Pick<BackOfficeUser, 'id'> | null,
    extra: Partial<BackOfficeNotificationInit> & Record<string, unknown> = {},
  ): Promise<N> {
    const context = BackOfficeRequestContextStore.current();
    const notification = new type({
      ipAddress: context.ipAddress ?? null,
      performingUserId: context.performingUserId ?? user?.id ?? null,
      affectedUserId: user?.id ?? null,
      dateTimeUtc: this.now(),
      ...extra,
    });
    // Listeners run outside {@link withSecurityStamp}: the announced stamp is the change's own, and a renewal a
    // listener makes (e.g. a host ending every session after a password change) must be a new stamp.
    return this.announcedSecurityStamp.exit(() => this.notifications.publish(notification));
  }
}
