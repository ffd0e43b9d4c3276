import { randomUUID } from 'node:crypto';
import { isUuid } from '../../common/ids.js';
import { isPendingInvitee, type BackOfficeUser, type BackOfficeUserState } from '../../users/backoffice-user.js';
import {
  BackOfficeDuplicateLoginError,
  BackOfficeDuplicatePasskeyError,
  BackOfficePasskeyRefusedError,
  type AddPasskeyOptions,
  BackOfficeTooManyPasskeysError,
  BackOfficeDuplicateUserError,
  type BackOfficeGroup,
  type BackOfficeTokenPurpose,
  type BackOfficeUserLogin,
  type BackOfficeUserProfileChanges,
  type BackOfficeUserQuery,
  type BackOfficeUserStore,
  type FailedAccessResult,
  type LockoutPolicy,
  type NewBackOfficeUser,
  type NewStoredPasskey,
  type PrunableUserStore,
  type StoredAuthenticatorKey,
  type StoredPasskey,
  type TransactionalUserStore,
  type UnknownUserLockoutStore,
  type UserAuthenticatorKeyStore,
  type UserEmailChangeStore,
  type UserEmailChangeHandoverStore,
  type UserGroupStore,
  type UserLockoutStore,
  type UserLoginStore,
  type UserPasskeyStore,
  type UserPasswordStore,
  type UserDirectoryManagedStore,
  type UserPhoneNumberStore,
  type UserQueryStore,
  type UserRecoveryCodeStore,
  type UserSecurityStampStore,
  type UserTokenStore,
  type UserTokenHandoverStore,
  type UserTokenIssueOptions,
  type UserTwoFactorStore,
  passwordResetForcedAtAfterWrite,
  BACKOFFICE_TOKEN_HAND_OVER_PENDING_MAX_AGE_MS,
} from '../../users/stores/user-store.interface.js';
import { copyDate, InMemoryBackOfficeState, KeyedMutex, type InMemoryUser } from './in-memory-state.js';

const DAY_MS = 86_400_000;
/** A lock ending later than this from now is one until an admin unlocks (lockout.durationMinutes is at most 365 days). */
const UNTIL_UNLOCKED_AFTER_MS = 366 * DAY_MS;

interface TokenRow {
  userId: string;
  purpose: BackOfficeTokenPurpose;
  tokenHash: string;
  expiresAt: Date;
  usedAt: Date | null;
  newEmail: string | null;
  /** Stored beside the live link by `addToken`, not handed over yet: another hand-over leaves it live. */
  handOverPending?: boolean;
  /** `now` of `addToken`: a pending token older than {@link BACKOFFICE_TOKEN_HAND_OVER_PENDING_MAX_AGE_MS} is voided by a hand-over. */
  createdAt?: Date;
}

interface Counter {
  accessFailedCount: number;
  lockoutEnd: Date | null;
  updatedAt: Date;
}

/** One atomic failed-access count on a counter (the same rule as the SQL of the TypeORM store). */
function countFailure(counter: Counter, policy: LockoutPolicy, now: Date): FailedAccessResult {
  const next = counter.accessFailedCount + 1;
  if (next >= policy.maxFailedAccessAttempts) {
    counter.accessFailedCount = 0;
    counter.lockoutEnd = new Date(policy.lockoutEnd.getTime());
  } else {
    counter.accessFailedCount = next;
  }
  counter.updatedAt = now;
  const lockoutEnd = copyDate(counter.lockoutEnd);
  return { alreadyLocked: false, lockedNow: lockoutEnd !== null && lockoutEnd > now, accessFailedCount: counter.accessFailedCount, lockoutEnd };
}

/** The state filter of the user list, as the TypeORM store's SQL has it. */
function inState(u: BackOfficeUser, state: BackOfficeUserState, now: Date): boolean {
  // As `deriveUserState`: a timed disable whose `until` has passed no longer counts as disabled.
  const enabled = u.isApproved || (!!u.disabledUntil && u.disabledUntil <= now);
  const unlocked = enabled && (u.lockoutEnd === null || u.lockoutEnd <= now);
  switch (state) {
    case 'disabled':
      return !enabled;
    case 'lockedOut':
      return enabled && u.lockoutEnd !== null && u.lockoutEnd > now;
    case 'invited':
      return unlocked && isPendingInvitee(u);
    case 'inactive':
      return unlocked && u.lastLoginAt === null && !isPendingInvitee(u);
    case 'active':
      return unlocked && u.lastLoginAt !== null;
  }
}

const ALREADY_LOCKED: FailedAccessResult = { alreadyLocked: true, lockedNow: false, accessFailedCount: 0, lockoutEnd: null };

/**
 * The user store in memory, with every capability of the TypeORM store (except bulk import): for host apps'
 * tests and demos without a database. Each method is atomic (no await between read and write), so the same
 * race rules hold: counters never lose an increment, tokens are used once. `transaction` runs the work
 * directly (no rollback); `withGroupLock` serialises the work per group.
 */
export class InMemoryBackOfficeUserStore
  implements
    BackOfficeUserStore,
    UserPasswordStore,
    UserDirectoryManagedStore,
    UserSecurityStampStore,
    UserLockoutStore,
    UnknownUserLockoutStore,
    UserTwoFactorStore,
    UserPhoneNumberStore,
    UserTokenStore,
    UserTokenHandoverStore,
    UserGroupStore,
    UserQueryStore,
    UserAuthenticatorKeyStore,
    UserRecoveryCodeStore,
    UserPasskeyStore,
    UserLoginStore,
    UserEmailChangeStore,
    UserEmailChangeHandoverStore,
    PrunableUserStore,
    TransactionalUserStore<InMemoryBackOfficeUserStore>
{
  private readonly tokens: TokenRow[] = [];
  private readonly unknownUsers = new Map<string, Counter>();
  private readonly authenticators = new Map<string, StoredAuthenticatorKey & { userId: string }>();
  private readonly recoveryCodes: Array<{ userId: string; codeHash: string; used: boolean }> = [];
  private readonly passkeys = new Map<string, StoredPasskey>();
  private readonly logins: Array<BackOfficeUserLogin & { userId: string }> = [];
  private readonly groupLocks = new KeyedMutex();

  constructor(readonly state: InMemoryBackOfficeState = new InMemoryBackOfficeState()) {}

  transaction<T>(work: (store: InMemoryBackOfficeUserStore) => Promise<T>): Promise<T> {
    return work(this);
  }

  async create(user: NewBackOfficeUser, now: Date): Promise<BackOfficeUser> {
    const { initialToken, ...fields } = user;
    this.assertFree(fields.normalizedEmail, fields.normalizedUsername);
    this.assertGroups(fields.groups);
    const stored: InMemoryUser = {
      id: randomUUID(),
      username: fields.username,
      normalizedUsername: fields.normalizedUsername,
      email: fields.email,
      normalizedEmail: fields.normalizedEmail,
      name: fields.name,
      passwordHash: fields.passwordHash,
      securityStamp: fields.securityStamp,
      accessFailedCount: 0,
      lockoutEnabled: true,
      lockoutEnd: null,
      isApproved: fields.isApproved,
      twoFactorEnabled: false,
      phoneNumber: null,
      phoneNumberConfirmed: false,
      invitedAt: copyDate(fields.invitedAt),
      lastLoginAt: null,
      lastPasswordChangeAt: null,
      createdAt: new Date(now.getTime()),
      updatedAt: new Date(now.getTime()),
      groups: [...new Set(fields.groups)],
      kind: fields.kind ?? 'person',
      twoFactorSetupDeadline: null,
      disabledReason: null,
      disabledUntil: null,
      directoryManagedAt: null,
      passwordResetForcedAt: null,
    };
    this.state.users.set(stored.id, stored);
    if (initialToken) this.insertToken(stored.id, initialToken.purpose, initialToken.tokenHash, initialToken.expiresAt, now, null);
    return this.state.toUser(stored);
  }

  private assertFree(normalizedEmail: string | undefined, normalizedUsername: string | undefined, exceptId?: string): void {
    for (const other of this.state.users.values()) {
      if (other.id === exceptId) continue;
      if (normalizedEmail !== undefined && other.normalizedEmail === normalizedEmail) throw new BackOfficeDuplicateUserError('email');
      if (normalizedUsername !== undefined && other.normalizedUsername === normalizedUsername) throw new BackOfficeDuplicateUserError('username');
    }
  }

  private assertGroups(aliases: readonly string[]): void {
    const missing = aliases.find((alias) => !this.state.groups.has(alias));
    if (missing !== undefined) throw new Error(`Unknown group "${missing}"`);
  }

  private row(userId: string): InMemoryUser | undefined {
    return isUuid(userId) ? this.state.users.get(userId) : undefined;
  }

  async findById(id: string): Promise<BackOfficeUser | null> {
    const stored = this.row(id);
    return stored ? this.state.toUser(stored) : null;
  }

  async findByNormalizedUsername(normalizedUsername: string): Promise<BackOfficeUser | null> {
    for (const u of this.state.users.values()) if (u.normalizedUsername === normalizedUsername) return this.state.toUser(u);
    return null;
  }

  async findByNormalizedEmail(normalizedEmail: string): Promise<BackOfficeUser | null> {
    for (const u of this.state.users.values()) if (u.normalizedEmail === normalizedEmail) return this.state.toUser(u);
    return null;
  }

  async updateProfile(userId: string, changes: BackOfficeUserProfileChanges, now: Date): Promise<void> {
    const stored = this.row(userId);
    if (!stored) return;
    this.assertFree(changes.normalizedEmail, changes.normalizedUsername, userId);
    Object.assign(stored, structuredClone(changes), { updatedAt: now });
  }

  async delete(userId: string): Promise<boolean> {
    if (!this.state.users.delete(userId)) return false;
    const keep = <T extends { userId: string }>(rows: T[]) => rows.splice(0, rows.length, ...rows.filter((r) => r.userId !== userId));
    keep(this.tokens);
    keep(this.recoveryCodes);
    keep(this.logins);
    for (const [id, p] of this.passkeys) if (p.userId === userId) this.passkeys.delete(id);
    for (const [key, a] of this.authenticators) if (a.userId === userId) this.authenticators.delete(key);
    return true;
  }

  /** The end of the user's grace period for enrolling in 2FA (null clears it). */
  async setTwoFactorSetupDeadline(userId: string, deadline: Date | null): Promise<void> {
    const stored = this.row(userId);
    if (stored) stored.twoFactorSetupDeadline = copyDate(deadline);
  }

  /** People only: API users are not counted. */
  async count(): Promise<number> {
    return [...this.state.users.values()].filter((u) => u.kind !== 'api').length;
  }

  async markDirectoryManaged(userId: string, now: Date): Promise<boolean> {
    const stored = this.row(userId);
    if (!stored || stored.directoryManagedAt) return false;
    Object.assign(stored, { directoryManagedAt: new Date(now.getTime()), updatedAt: new Date(now.getTime()) });
    return true;
  }

  async clearDirectoryManaged(userId: string, now: Date): Promise<boolean> {
    const stored = this.row(userId);
    if (!stored || !stored.directoryManagedAt) return false;
    Object.assign(stored, { directoryManagedAt: null, updatedAt: new Date(now.getTime()) });
    return true;
  }

  async setPasswordHash(
    userId: string,
    passwordHash: string | null,
    securityStamp: string,
    now: Date,
    options: { rehashOf?: string; unlessDirectoryManaged?: boolean; forcedReset?: boolean } = {},
  ): Promise<boolean> {
    const stored = this.row(userId);
    if (!stored) return false;
    if (options.rehashOf !== undefined) {
      if (stored.passwordHash === options.rehashOf) Object.assign(stored, { passwordHash, updatedAt: now });
      return true;
    }
    if (options.unlessDirectoryManaged && stored.directoryManagedAt != null) return false;
    const passwordResetForcedAt = passwordResetForcedAtAfterWrite(passwordHash, now, options);
    Object.assign(stored, { passwordHash, securityStamp, lastPasswordChangeAt: now, updatedAt: now, passwordResetForcedAt });
    return true;
  }

  async setSecurityStamp(userId: string, securityStamp: string, now: Date): Promise<void> {
    const stored = this.row(userId);
    if (stored) Object.assign(stored, { securityStamp, updatedAt: now });
  }

  async recordFailedAccess(userId: string, policy: LockoutPolicy, now: Date): Promise<FailedAccessResult> {
    const stored = this.row(userId);
    if (!stored || !stored.lockoutEnabled || (stored.lockoutEnd !== null && stored.lockoutEnd > now)) return { ...ALREADY_LOCKED };
    return countFailure(stored, policy, now);
  }

  async resetAccessFailedCount(userId: string, now: Date): Promise<void> {
    const stored = this.row(userId);
    if (stored) Object.assign(stored, { accessFailedCount: 0, updatedAt: now });
  }

  async setLockoutEnd(userId: string, lockoutEnd: Date | null, now: Date): Promise<void> {
    const stored = this.row(userId);
    if (stored) Object.assign(stored, { lockoutEnd: copyDate(lockoutEnd), updatedAt: now });
  }

  async getUnknownUserLockoutEnd(usernameKey: string, now: Date): Promise<Date | null> {
    const counter = this.unknownUsers.get(usernameKey);
    return counter?.lockoutEnd && counter.lockoutEnd > now ? copyDate(counter.lockoutEnd) : null;
  }

  async recordFailedAccessForUnknownUser(usernameKey: string, policy: LockoutPolicy, now: Date): Promise<FailedAccessResult> {
    let counter = this.unknownUsers.get(usernameKey);
    if (!counter) {
      counter = { accessFailedCount: 0, lockoutEnd: null, updatedAt: now };
      this.unknownUsers.set(usernameKey, counter);
    } else if (counter.lockoutEnd !== null && counter.lockoutEnd > now) {
      return { ...ALREADY_LOCKED };
    }
    return countFailure(counter, policy, now);
  }

  async setTwoFactorEnabled(userId: string, enabled: boolean, securityStamp: string, now: Date): Promise<void> {
    const stored = this.row(userId);
    if (stored) Object.assign(stored, { twoFactorEnabled: enabled, securityStamp, updatedAt: now });
  }

  async setPhoneNumber(userId: string, phoneNumber: string | null, confirmed: boolean, now: Date): Promise<void> {
    const stored = this.row(userId);
    if (stored) Object.assign(stored, { phoneNumber, phoneNumberConfirmed: confirmed, updatedAt: now });
  }

  private insertToken(userId: string, purpose: BackOfficeTokenPurpose, tokenHash: string, expiresAt: Date, now: Date, newEmail: string | null): void {
    this.voidTokensNow(userId, purpose, now);
    this.tokens.push({ userId, purpose, tokenHash, expiresAt: new Date(expiresAt.getTime()), usedAt: null, newEmail });
  }

  private voidTokensNow(userId: string, purpose: BackOfficeTokenPurpose, now: Date): void {
    for (const t of this.tokens) if (t.userId === userId && t.purpose === purpose && t.usedAt === null) t.usedAt = now;
  }

  private liveToken(userId: string, purpose: BackOfficeTokenPurpose, tokenHash: string, now: Date): TokenRow | undefined {
    return this.tokens.find((t) => t.userId === userId && t.purpose === purpose && t.tokenHash === tokenHash && t.usedAt === null && t.expiresAt > now);
  }

  async replaceToken(userId: string, purpose: BackOfficeTokenPurpose, tokenHash: string, expiresAt: Date, now: Date, options: UserTokenIssueOptions = {}): Promise<boolean> {
    if (!this.mayGetLink(userId, purpose, now, options)) return false;
    this.insertToken(userId, purpose, tokenHash, expiresAt, now, null);
    return true;
  }

  /**
   * The user exists and is not disabled (a timed disable whose end has passed does not count); for a link that sets
   * a password (`password_reset`, `invite`), not marked directory-managed; still at `addressedTo` when given.
   */
  private mayGetLink(userId: string, purpose: BackOfficeTokenPurpose, now: Date, { addressedTo }: UserTokenIssueOptions): boolean {
    const user = this.row(userId);
    if (user === undefined || (purpose !== 'change_email' && user.directoryManagedAt != null)) return false;
    if (addressedTo !== undefined && user.normalizedEmail !== addressedTo) return false;
    return user.isApproved || (user.disabledUntil != null && user.disabledUntil.getTime() <= now.getTime());
  }

  async consumeToken(userId: string, purpose: BackOfficeTokenPurpose, tokenHash: string, now: Date): Promise<boolean> {
    const token = this.liveToken(userId, purpose, tokenHash, now);
    if (!token) return false;
    token.usedAt = now;
    return true;
  }

  async isTokenLive(userId: string, purpose: BackOfficeTokenPurpose, tokenHash: string, now: Date): Promise<boolean> {
    return this.liveToken(userId, purpose, tokenHash, now) !== undefined;
  }

  async addToken(userId: string, purpose: BackOfficeTokenPurpose, tokenHash: string, expiresAt: Date, now: Date, options: UserTokenIssueOptions = {}): Promise<boolean> {
    return this.insertTokenBeside(userId, purpose, tokenHash, expiresAt, now, null, options);
  }

  /** Stores a token beside the user's live ones, only while the user may get a link (not disabled, or a timed disable that has ended). */
  private insertTokenBeside(
    userId: string,
    purpose: BackOfficeTokenPurpose,
    tokenHash: string,
    expiresAt: Date,
    now: Date,
    newEmail: string | null,
    options: UserTokenIssueOptions,
  ): boolean {
    const mayGetLink = this.mayGetLink(userId, purpose, now, options);
    if (mayGetLink) this.tokens.push({ userId, purpose, tokenHash, expiresAt: new Date(expiresAt.getTime()), usedAt: null, newEmail, handOverPending: true, createdAt: new Date(now.getTime()) });
    return mayGetLink;
  }

  async keepOnlyToken(userId: string, purpose: BackOfficeTokenPurpose, tokenHash: string, now: Date): Promise<boolean> {
    const kept = this.liveToken(userId, purpose, tokenHash, now);
    if (!kept) return false;
    kept.handOverPending = false;
    // Links still being mailed stay live: the last hand-over (of the email accepted last) leaves the live link. A
    // pending one older than the bound belongs to a request that died before its hand-over: voided like the others.
    const youngSince = now.getTime() - BACKOFFICE_TOKEN_HAND_OVER_PENDING_MAX_AGE_MS;
    const stillMailed = (t: TokenRow) => t.handOverPending === true && (t.createdAt?.getTime() ?? -Infinity) >= youngSince;
    for (const t of this.tokens) if (t.userId === userId && t.purpose === purpose && t !== kept && t.usedAt === null && !stillMailed(t)) t.usedAt = now;
    return true;
  }

  async voidTokens(userId: string, purpose: BackOfficeTokenPurpose, now: Date): Promise<void> {
    this.voidTokensNow(userId, purpose, now);
  }

  async replaceEmailChangeToken(userId: string, tokenHash: string, newEmail: string, expiresAt: Date, now: Date, options: UserTokenIssueOptions = {}): Promise<boolean> {
    if (!this.mayGetLink(userId, 'change_email', now, options)) return false;
    this.insertToken(userId, 'change_email', tokenHash, expiresAt, now, newEmail);
    return true;
  }

  async addEmailChangeToken(userId: string, tokenHash: string, newEmail: string, expiresAt: Date, now: Date, options: UserTokenIssueOptions = {}): Promise<boolean> {
    return this.insertTokenBeside(userId, 'change_email', tokenHash, expiresAt, now, newEmail, options);
  }

  async consumeEmailChangeToken(userId: string, tokenHash: string, now: Date): Promise<string | null> {
    const token = this.liveToken(userId, 'change_email', tokenHash, now);
    if (!token) return null;
    token.usedAt = now;
    return token.newEmail;
  }

  async prune(now: Date): Promise<{ loginAttempts: number; tokens: number }> {
    const dayAgo = new Date(now.getTime() - DAY_MS);
    const monthAgo = new Date(now.getTime() - 30 * DAY_MS);
    let loginAttempts = 0;
    const stale = (c: Counter) => c.updatedAt < dayAgo && (c.lockoutEnd === null || c.lockoutEnd < now);
    for (const [key, c] of this.unknownUsers) {
      // a lock of an unknown username that none can end (lockout.durationMinutes 0) goes 30 days after it began; a
      // timed one (at most 365 days) is kept until it ends, as a known user's is
      if (stale(c) || (c.updatedAt < monthAgo && c.lockoutEnd !== null && c.lockoutEnd.getTime() > now.getTime() + UNTIL_UNLOCKED_AFTER_MS)) {
        this.unknownUsers.delete(key);
        loginAttempts++;
      }
    }
    // A known user's failed attempts are forgotten with the same rule, else a 423 after the next guess tells it apart.
    for (const u of this.state.users.values()) {
      if (u.accessFailedCount > 0 && stale(u)) {
        u.accessFailedCount = 0;
        loginAttempts++;
      }
    }
    const before = this.tokens.length;
    this.tokens.splice(0, this.tokens.length, ...this.tokens.filter((t) => !(t.expiresAt < monthAgo)));
    return { loginAttempts, tokens: before - this.tokens.length };
  }

  async getAuthenticatorKey(userId: string, provider: string): Promise<StoredAuthenticatorKey | null> {
    const key = this.authenticators.get(`${userId}\u0000${provider}`);
    return key ? { encryptedSecret: key.encryptedSecret, confirmed: key.confirmed, lastUsedStep: key.lastUsedStep } : null;
  }

  async setAuthenticatorKey(userId: string, provider: string, encryptedSecret: string): Promise<boolean> {
    const row = this.row(userId);
    const key = `${userId}\u0000${provider}`;
    if (!row || (row.twoFactorEnabled && this.authenticators.get(key)?.confirmed)) return false;
    this.authenticators.set(key, { userId, encryptedSecret, confirmed: false, lastUsedStep: null });
    return true;
  }

  async useAuthenticatorStep(userId: string, provider: string, step: number, confirm: boolean, _now?: Date, encryptedSecret?: string): Promise<boolean> {
    const key = this.authenticators.get(`${userId}\u0000${provider}`);
    if (!key || (key.lastUsedStep !== null && key.lastUsedStep >= step) || key.confirmed === confirm) return false;
    if (encryptedSecret !== undefined && key.encryptedSecret !== encryptedSecret) return false;
    key.lastUsedStep = step;
    if (confirm) key.confirmed = true;
    return true;
  }

  async removeAuthenticatorKey(userId: string, provider: string): Promise<void> {
    this.authenticators.delete(`${userId}\u0000${provider}`);
  }

  async replaceRecoveryCodes(userId: string, codeHashes: string[], _now?: Date, options: { whileTwoFactorEnabled?: boolean } = {}): Promise<boolean> {
    if (options.whileTwoFactorEnabled && this.row(userId)?.twoFactorEnabled !== true) return false;
    this.recoveryCodes.splice(0, this.recoveryCodes.length, ...this.recoveryCodes.filter((c) => c.userId !== userId));
    for (const codeHash of codeHashes) this.recoveryCodes.push({ userId, codeHash, used: false });
    return true;
  }

  async redeemRecoveryCode(userId: string, codeHashes: string | readonly string[]): Promise<boolean> {
    const hashes = typeof codeHashes === 'string' ? [codeHashes] : codeHashes;
    const matching = this.recoveryCodes.filter((c) => c.userId === userId && !c.used && hashes.includes(c.codeHash));
    for (const code of matching) code.used = true;
    return matching.length >= 1;
  }

  async countRecoveryCodes(userId: string): Promise<number> {
    return this.recoveryCodes.filter((c) => c.userId === userId && !c.used).length;
  }

  private static copyPasskey(p: StoredPasskey): StoredPasskey {
    return { ...p, publicKey: new Uint8Array(p.publicKey), transports: [...p.transports], createdAt: new Date(p.createdAt), lastUsedAt: copyDate(p.lastUsedAt) };
  }

  async hasPasskeys(userId: string): Promise<boolean> {
    return [...this.passkeys.values()].some((p) => p.userId === userId);
  }

  async listPasskeys(userId: string): Promise<StoredPasskey[]> {
    return [...this.passkeys.values()]
      .filter((p) => p.userId === userId)
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.id.localeCompare(b.id))
      .map(InMemoryBackOfficeUserStore.copyPasskey);
  }

  async findPasskeyByCredentialId(credentialId: string): Promise<StoredPasskey | null> {
    for (const p of this.passkeys.values()) if (p.credentialId === credentialId) return InMemoryBackOfficeUserStore.copyPasskey(p);
    return null;
  }

  async addPasskey(userId: string, passkey: NewStoredPasskey, now: Date, options: AddPasskeyOptions = {}): Promise<StoredPasskey> {
    for (const p of this.passkeys.values()) if (p.credentialId === passkey.credentialId) throw new BackOfficeDuplicatePasskeyError();
    if (!this.row(userId)) throw new Error(`Unknown user "${userId}"`);
    // Checked and written without an await between: no forced reset lands in between (OWASP ASVS 5.0 6.4.x).
    if (options.refuseIf?.(this.state.toUser(this.row(userId)!))) throw new BackOfficePasskeyRefusedError();
    if (options.maxPerUser !== undefined && [...this.passkeys.values()].filter((p) => p.userId === userId).length >= options.maxPerUser) {
      throw new BackOfficeTooManyPasskeysError();
    }
    const stored: StoredPasskey = { ...passkey, id: randomUUID(), userId, publicKey: new Uint8Array(passkey.publicKey), transports: [...passkey.transports], createdAt: now, lastUsedAt: null };
    this.passkeys.set(stored.id, stored);
    return InMemoryBackOfficeUserStore.copyPasskey(stored);
  }

  async renamePasskey(userId: string, passkeyId: string, name: string): Promise<boolean> {
    const p = this.passkeys.get(passkeyId);
    if (!p || p.userId !== userId) return false;
    p.name = name;
    return true;
  }

  async removePasskey(userId: string, passkeyId: string, keepAtLeast = 0): Promise<boolean> {
    const p = this.passkeys.get(passkeyId);
    if (!p || p.userId !== userId) return false;
    if ([...this.passkeys.values()].filter((k) => k.userId === userId).length <= keepAtLeast) return false;
    return this.passkeys.delete(passkeyId);
  }

  async removeAllPasskeys(userId: string): Promise<StoredPasskey[]> {
    const removed = await this.listPasskeys(userId); // no await between the read and the deletes below
    for (const p of removed) this.passkeys.delete(p.id);
    return removed;
  }

  async recordPasskeyUse(passkeyId: string, newCounter: number, now: Date): Promise<boolean> {
    const p = this.passkeys.get(passkeyId);
    if (!p || !(p.counter < newCounter || (p.counter === 0 && newCounter === 0))) return false;
    Object.assign(p, { counter: newCounter, lastUsedAt: now });
    return true;
  }

  async addLogin(userId: string, login: Omit<BackOfficeUserLogin, 'createdAt'>, now: Date): Promise<void> {
    const taken = this.logins.some(
      (l) => (l.provider === login.provider && l.providerKey === login.providerKey) || (l.userId === userId && l.provider === login.provider),
    );
    if (taken) throw new BackOfficeDuplicateLoginError();
    this.logins.push({ userId, provider: login.provider, providerKey: login.providerKey, displayName: login.displayName, createdAt: now });
  }

  async removeLogin(userId: string, provider: string, keepAtLeast = 0): Promise<boolean> {
    const mine = this.logins.filter((l) => l.userId === userId);
    const index = this.logins.findIndex((l) => l.userId === userId && l.provider === provider);
    if (index < 0 || mine.length <= keepAtLeast) return false;
    this.logins.splice(index, 1);
    return true;
  }

  async getLogins(userId: string): Promise<BackOfficeUserLogin[]> {
    return this.logins
      .filter((l) => l.userId === userId)
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.provider.localeCompare(b.provider))
      .map(({ provider, providerKey, displayName, createdAt }) => ({ provider, providerKey, displayName, createdAt: new Date(createdAt) }));
  }

  async findUserIdByLogin(provider: string, providerKey: string): Promise<string | null> {
    return this.logins.find((l) => l.provider === provider && l.providerKey === providerKey)?.userId ?? null;
  }

  async listGroups(): Promise<BackOfficeGroup[]> {
    return [...this.state.groups.values()].map(({ alias, name }) => ({ alias, name })).sort((a, b) => (a.alias < b.alias ? -1 : a.alias > b.alias ? 1 : 0));
  }

  async setGroups(userId: string, aliases: string[]): Promise<void> {
    const stored = this.row(userId);
    if (!stored) throw new Error(`Unknown user "${userId}"`);
    this.assertGroups(aliases);
    stored.groups = [...new Set(aliases)];
  }

  async countApprovedInGroup(alias: string, options: { now?: Date; exceptUserId?: string } = {}): Promise<number> {
    const { now, exceptUserId } = options;
    return [...this.state.users.values()].filter(
      (u) =>
        u.groups.includes(alias) &&
        u.isApproved &&
        u.kind !== 'api' &&
        u.id !== exceptUserId &&
        (!now || ((u.lockoutEnd === null || u.lockoutEnd <= now) && !isPendingInvitee(u))),
    ).length;
  }

  withGroupLock<T>(alias: string, work: (store: InMemoryBackOfficeUserStore) => Promise<T>): Promise<T> {
    return this.groupLocks.run(alias, () => work(this));
  }

  async list(query: BackOfficeUserQuery): Promise<{ items: BackOfficeUser[]; total: number }> {
    const filter = query.filter?.toLowerCase();
    const matching = [...this.state.users.values()]
      .filter((u) => u.kind !== 'api')
      .filter((u) => !filter || [u.username, u.email, u.name].some((text) => text.toLowerCase().includes(filter)))
      .map((u) => this.state.toUser(u))
      .filter((u) => !query.state || inState(u, query.state, query.now))
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { items: matching.slice(query.skip, query.skip + query.take), total: matching.length };
  }
}
