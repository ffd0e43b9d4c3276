import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { BackOfficeStores } from '../persistence/backoffice-stores.interface.js';
import { MAX_ANNOUNCED_SECURITY_STAMPS, type BackOfficeSession } from '../sessions/session-store.interface.js';
import { BACKOFFICE_EXTERNAL_LOGIN_STATES_PER_USER, BACKOFFICE_PASSKEY_CHALLENGES_PER_USER, type BackOfficePendingSignIn } from '../sign-in/pending-sign-in-store.interface.js';
import { BackOfficeDuplicateGroupError } from '../groups/group-store.interface.js';
import {
  BackOfficeDuplicateUserError,
  isUserGroupStore,
  isUserLockoutStore,
  isUserPasswordStore,
  isUserSecurityStampStore,
  isUserDirectoryManagedStore,
  isUserEmailChangeStore,
  isUserEmailChangeHandoverStore,
  isUserTokenStore,
  isUserTokenHandoverStore,
  BACKOFFICE_TOKEN_HAND_OVER_PENDING_MAX_AGE_MS,
  isUnknownUserLockoutStore,
  isPrunableUserStore,
  isUserQueryStore,
  isUserRecoveryCodeStore,
  isUserTwoFactorStore,
  isUserPasskeyStore,
  isUserAuthenticatorKeyStore,
  type BackOfficeUserStore,
  type UserGroupStore,
} from '../users/stores/user-store.interface.js';
import { deriveUserState, type BackOfficeUser, type BackOfficeUserState } from '../users/backoffice-user.js';
import { isUserImportStore, type ImportedUserRow } from '../users/import/user-import.js';
import { defineAuditStoreContract, type ContractMatchers } from './audit-store.contract.js';

/**
 * The test functions of the runner that hosts the contract: vitest's or jest's `describe`, `it` and `expect`
 * (or any with the same shape). The suite imports no test runner itself.
 */
export interface StoreContractTestApi {
  describe(name: string, body: () => void): void;
  it(name: string, body: () => Promise<void>, timeout?: number): void;
  expect(actual: unknown): StoreContractExpectation;
}

/** The matchers the suite uses (vitest and jest both have them), the audit contract's included. */
export interface StoreContractExpectation extends ContractMatchers {
  toBeGreaterThanOrEqual(expected: number): void;
  toBeInstanceOf(expected: abstract new (...args: never[]) => unknown): void;
  rejects: { toThrow(expected?: unknown): Promise<void> };
}

/**
 * Makes the stores under test. Called once per test; may hand back the same stores each time (the suite uses
 * fresh ids and group aliases, so it needs no empty database), with a `dispose` run after each test.
 * The audit part lists the whole trail, so it needs an empty `auditStore`: a factory that hands back stores on a
 * shared database gives `clearAuditTrail` (e.g. a `TRUNCATE`), called before each audit test; one that makes
 * fresh stores on every call (as `InMemoryBackOfficeStores.create()`) needs none.
 */
export type BackOfficeStoreFactory = () => Promise<BackOfficeStores & { dispose?: () => Promise<void>; clearAuditTrail?: () => Promise<void> }>;

const PARALLEL = 20;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Far enough in the future that no store's clock is involved: every time the suite passes is its own. */
const T0 = Date.parse('2031-06-01T12:00:00.000Z');
const at = (offsetMs: number) => new Date(T0 + offsetMs);
const hash = (text: string) => createHash('sha256').update(text).digest('hex');
const unique = (prefix: string) => `${prefix}${randomBytes(5).toString('hex')}`;

async function newUser(store: BackOfficeUserStore, groups: string[] = [], overrides: Partial<BackOfficeUser> = {}): Promise<BackOfficeUser> {
  const name = unique('contract-');
  return store.create(
    {
      username: `${name}@example.test`,
      normalizedUsername: `${name}@EXAMPLE.TEST`,
      email: `${name}@example.test`,
      normalizedEmail: `${name}@EXAMPLE.TEST`,
      name: 'Zoë Ünïcode',
      passwordHash: overrides.passwordHash ?? 'hash-1',
      securityStamp: 'stamp-1',
      isApproved: overrides.isApproved ?? true,
      invitedAt: null,
      groups,
      kind: 'person',
    },
    at(0),
  );
}

function newSession(userId: string, securityStamp: string, overrides: Partial<BackOfficeSession> = {}): BackOfficeSession {
  return {
    id: randomUUID(),
    userId,
    tokenHash: hash(randomUUID()),
    securityStamp,
    createdAt: at(0),
    lastSeenAt: at(0),
    expiresAt: at(8 * HOUR),
    reauthenticatedAt: at(0),
    revokedAt: null,
    ip: '203.0.113.7',
    userAgent: 'contract',
    twoFactorSetupOnly: false,
    ...overrides,
  };
}

function pending(overrides: Partial<BackOfficePendingSignIn> = {}): BackOfficePendingSignIn {
  return {
    kind: 'passkey',
    keyHash: hash(randomUUID()),
    purpose: 'authentication',
    browserHash: null,
    userId: null,
    securityStamp: null,
    payload: null,
    expiresAt: at(5 * 60_000),
    ...overrides,
  };
}

/** Runs `work` `n` times at once and returns the results. */
const concurrently = <T>(n: number, work: (i: number) => Promise<T>): Promise<T[]> => Promise.all(Array.from({ length: n }, (_, i) => work(i)));

/**
 * The behaviour every set of stores must have, like ASP.NET Identity's `UserManagerSpecificationTests`: atomic
 * counters (parallel failed logins), single-use tokens and pending sign-ins under concurrency, lockout, the
 * security stamp, group writes under the last-admin rule, sessions (ending the others keeps the current one),
 * a client lockout an API client store holds, pruning, and the audit trail ({@link defineAuditStoreContract} on the set's `auditStore`).
 * Run it in your test file against your own stores:
 *
 *     runBackOfficeStoreContract('my stores', async () => myStores, { describe, it, expect });
 */
export function runBackOfficeStoreContract(name: string, factory: BackOfficeStoreFactory, { describe, it, expect }: StoreContractTestApi): void {
  const test = (title: string, body: (stores: BackOfficeStores) => Promise<void>) =>
    it(
      title,
      async () => {
        const made = await factory();
        try {
          await body(made);
        } finally {
          await made.dispose?.();
        }
      },
      60_000,
    );

  describe(`BackOfficeStores contract: ${name}`, () => {
    describe('users', () => {
      test('creates and finds users; duplicates of email or username are refused', async ({ userStore }) => {
        const user = await newUser(userStore);
        expect((await userStore.findById(user.id))?.email).toBe(user.email);
        expect((await userStore.findByNormalizedEmail(user.normalizedEmail))?.id).toBe(user.id);
        expect((await userStore.findByNormalizedUsername(user.normalizedUsername))?.name).toBe('Zoë Ünïcode');
        expect(await userStore.findById('not-a-uuid')).toBeNull();
        expect(await userStore.findById(randomUUID())).toBeNull();
        const { username, normalizedUsername, email, normalizedEmail, passwordHash, securityStamp } = user;
        const fields = { username, normalizedUsername, email, normalizedEmail, name: 'Twin', passwordHash, securityStamp, isApproved: true, invitedAt: null, groups: [], kind: 'person' as const };
        await expect(userStore.create(fields, at(0))).rejects.toThrow(BackOfficeDuplicateUserError);
        await expect(userStore.create({ ...fields, username: 'other', normalizedUsername: 'OTHER' }, at(0))).rejects.toThrow(BackOfficeDuplicateUserError);
      });

      test('OWASP ASVS 4.0 7.1 / 5.0 16.2.1: delete answers true for a user it deleted and false for one that is not there (gone already, never there); of deletes sent at once exactly one answers true', async ({ userStore }) => {
        const user = await newUser(userStore);
        const deleted = await userStore.delete(user.id);
        expect(await userStore.findById(user.id)).toBeNull();
        const again = await userStore.delete(user.id);
        const never = await userStore.delete(randomUUID());
        const malformed = await userStore.delete('not-a-uuid');
        // A store that answers nothing (void) is taken to have deleted the user: it cannot tell two deletes apart.
        if (deleted === undefined && again === undefined) return;
        expect({ deleted, again, never, malformed }).toEqual({ deleted: true, again: false, never: false, malformed: false });
        const raced = await newUser(userStore);
        const answers = await concurrently(PARALLEL, () => userStore.delete(raced.id));
        expect(answers.filter((a) => a === true)).toHaveLength(1);
        expect(answers.filter((a) => a === false)).toHaveLength(PARALLEL - 1);
      });

      test('ASVS 2.2.1: 20 parallel failed logins are all counted; exactly one of them locks the account', async ({ userStore }) => {
        if (!isUserLockoutStore(userStore)) return;
        const user = await newUser(userStore);
        const counted = await concurrently(PARALLEL, () => userStore.recordFailedAccess(user.id, { maxFailedAccessAttempts: 100, lockoutEnd: at(HOUR) }, at(1)));
        expect(Math.max(...counted.map((r) => r.accessFailedCount))).toBe(PARALLEL);
        expect((await userStore.findById(user.id))?.accessFailedCount).toBe(PARALLEL);

        const other = await newUser(userStore);
        const results = await concurrently(PARALLEL, () => userStore.recordFailedAccess(other.id, { maxFailedAccessAttempts: 5, lockoutEnd: at(HOUR) }, at(1)));
        expect(results.filter((r) => r.lockedNow)).toHaveLength(1);
        expect(results.filter((r) => r.alreadyLocked)).toHaveLength(PARALLEL - 5);
        const locked = await userStore.findById(other.id);
        expect(locked?.lockoutEnd?.getTime()).toBe(at(HOUR).getTime());
        expect(locked?.accessFailedCount).toBe(0);
      });

      test('lockout: not counted while locked, counted again once the lock ended; reset clears the count', async ({ userStore }) => {
        if (!isUserLockoutStore(userStore)) return;
        const user = await newUser(userStore);
        const policy = { maxFailedAccessAttempts: 2, lockoutEnd: at(HOUR) };
        expect((await userStore.recordFailedAccess(user.id, policy, at(1))).lockedNow).toBe(false);
        expect((await userStore.recordFailedAccess(user.id, policy, at(2))).lockedNow).toBe(true);
        expect((await userStore.recordFailedAccess(user.id, policy, at(3))).alreadyLocked).toBe(true);
        const after = await userStore.recordFailedAccess(user.id, { maxFailedAccessAttempts: 2, lockoutEnd: at(3 * HOUR) }, at(2 * HOUR));
        expect(after.alreadyLocked).toBe(false);
        expect(after.accessFailedCount).toBe(1);
        await userStore.resetAccessFailedCount(user.id, at(2 * HOUR));
        expect((await userStore.findById(user.id))?.accessFailedCount).toBe(0);
        await userStore.setLockoutEnd(user.id, null, at(2 * HOUR));
        expect((await userStore.findById(user.id))?.lockoutEnd).toBeNull();
      });

      test('unknown usernames are counted atomically too (lockout is no account oracle)', async ({ userStore }) => {
        if (!isUnknownUserLockoutStore(userStore)) return;
        const key = hash(unique('nobody-'));
        const results = await concurrently(PARALLEL, () => userStore.recordFailedAccessForUnknownUser(key, { maxFailedAccessAttempts: 5, lockoutEnd: at(HOUR) }, at(1)));
        expect(results.filter((r) => r.lockedNow)).toHaveLength(1);
        expect((await userStore.getUnknownUserLockoutEnd(key, at(2)))?.getTime()).toBe(at(HOUR).getTime());
        expect(await userStore.getUnknownUserLockoutEnd(key, at(2 * HOUR))).toBeNull();
      });

      test('security stamp: a password change writes hash and stamp; a rehash never undoes a change made meanwhile', async ({ userStore }) => {
        if (!isUserPasswordStore(userStore) || !isUserSecurityStampStore(userStore)) return;
        const user = await newUser(userStore);
        await userStore.setSecurityStamp(user.id, 'stamp-2', at(1));
        expect((await userStore.findById(user.id))?.securityStamp).toBe('stamp-2');
        await userStore.setPasswordHash(user.id, 'hash-2', 'stamp-3', at(2));
        let found = await userStore.findById(user.id);
        expect([found?.passwordHash, found?.securityStamp]).toEqual(['hash-2', 'stamp-3']);
        await userStore.setPasswordHash(user.id, 'hash-1-stronger', 'ignored', at(3), { rehashOf: 'hash-1' });
        found = await userStore.findById(user.id);
        expect([found?.passwordHash, found?.securityStamp]).toEqual(['hash-2', 'stamp-3']);
        await userStore.setPasswordHash(user.id, 'hash-2-stronger', 'ignored', at(4), { rehashOf: 'hash-2' });
        found = await userStore.findById(user.id);
        expect([found?.passwordHash, found?.securityStamp]).toEqual(['hash-2-stronger', 'stamp-3']);
      });

      test('OWASP ASVS 5.0 6.4.x: a forced reset (setPasswordHash of null with forcedReset) is read back as passwordResetForcedAt until a new password is written; a removal that is no forced reset, or a store that keeps no mark (absent), leaves none', async ({
        userStore,
      }) => {
        if (!isUserPasswordStore(userStore)) return;
        const user = await newUser(userStore);
        // The mark as a time (a custom store may hand it back as ISO text); undefined: the store keeps no mark.
        const mark = async (found?: BackOfficeUser | null) => {
          const value = (found === undefined ? await userStore.findById(user.id) : found)?.passwordResetForcedAt;
          return value == null ? value : new Date(value as Date | string).getTime();
        };
        await userStore.setPasswordHash(user.id, null, 'stamp-forced', at(1), { forcedReset: true });
        // A store that keeps no mark (absent) leaves the manager to its fallback ("no password, lastPasswordChangeAt
        // set"). One that reads it back null after the forced reset lets a passkey sign in while the reset is pending.
        if ((await mark()) === undefined) return;
        expect(await mark()).toBe(at(1).getTime());
        expect(await mark(await userStore.findByNormalizedEmail(user.normalizedEmail))).toBe(at(1).getTime());
        // A rehash that finds another hash (none) changes nothing, the mark included.
        await userStore.setPasswordHash(user.id, 'hash-x-stronger', 'ignored', at(2), { rehashOf: 'hash-x' });
        expect(await mark()).toBe(at(1).getTime());
        // The user's new password ends the forced reset.
        await userStore.setPasswordHash(user.id, 'hash-new', 'stamp-new', at(3));
        expect(await mark()).toBeNull();
        // A local hash retired by a password checker (a compare-and-set removal) is no forced reset: no mark.
        await userStore.setPasswordHash(user.id, null, 'ignored', at(4), { rehashOf: 'hash-new' });
        expect([(await userStore.findById(user.id))?.passwordHash, await mark()]).toEqual([null, null]);
        // The forced reset of the lifecycle (only while not directory-managed) marks as well; a removal without it does not.
        expect(await userStore.setPasswordHash(user.id, null, 'stamp-forced-2', at(5), { forcedReset: true, unlessDirectoryManaged: true })).not.toBe(false);
        expect(await mark()).toBe(at(5).getTime());
        await userStore.setPasswordHash(user.id, null, 'stamp-removed', at(6));
        expect(await mark()).toBeNull();
      });

      test('ASVS 4.0 V2.5: the directory-managed mark is set once (the first time stays, also of 20 parallel callers), read with the user, and cleared', async ({ userStore }) => {
        if (!isUserDirectoryManagedStore(userStore)) return;
        const user = await newUser(userStore);
        expect((await userStore.findById(user.id))?.directoryManagedAt ?? null).toBeNull();
        const marks = await concurrently(PARALLEL, () => userStore.markDirectoryManaged(user.id, at(1)));
        expect(marks.filter(Boolean)).toHaveLength(1);
        expect(await userStore.markDirectoryManaged(user.id, at(2))).toBe(false);
        expect((await userStore.findById(user.id))?.directoryManagedAt?.getTime()).toBe(at(1).getTime());
        expect((await userStore.findByNormalizedEmail(user.normalizedEmail))?.directoryManagedAt?.getTime()).toBe(at(1).getTime());
        expect(await userStore.clearDirectoryManaged(user.id, at(3))).toBe(true);
        expect(await userStore.clearDirectoryManaged(user.id, at(4))).toBe(false);
        expect((await userStore.findById(user.id))?.directoryManagedAt ?? null).toBeNull();
        expect(await userStore.markDirectoryManaged(user.id, at(5))).toBe(true);
        expect((await userStore.findById(user.id))?.directoryManagedAt?.getTime()).toBe(at(5).getTime());
        expect(await userStore.markDirectoryManaged(randomUUID(), at(6))).toBe(false);
      });

      test('ASVS 2.5.1: a single-use token is used by exactly one of 20 parallel callers; a new one voids the old', async ({ userStore }) => {
        if (!isUserTokenStore(userStore)) return;
        const user = await newUser(userStore);
        await userStore.replaceToken(user.id, 'password_reset', hash('first'), at(HOUR), at(0));
        await userStore.replaceToken(user.id, 'password_reset', hash('second'), at(HOUR), at(1));
        expect(await userStore.isTokenLive(user.id, 'password_reset', hash('first'), at(2))).toBe(false);
        expect(await userStore.isTokenLive(user.id, 'password_reset', hash('second'), at(2))).toBe(true);
        expect(await userStore.consumeToken(user.id, 'invite', hash('second'), at(2))).toBe(false);
        const uses = await concurrently(PARALLEL, () => userStore.consumeToken(user.id, 'password_reset', hash('second'), at(2)));
        expect(uses.filter(Boolean)).toHaveLength(1);
        await userStore.replaceToken(user.id, 'invite', hash('late'), at(HOUR), at(0));
        expect(await userStore.consumeToken(user.id, 'invite', hash('late'), at(HOUR))).toBe(false);
      });

      test('ASVS 4.0 2.5.x: of 20 parallel replaceToken calls exactly one token stays live (two clicks never leave two live links)', async ({ userStore }) => {
        if (!isUserTokenStore(userStore)) return;
        const user = await newUser(userStore);
        const hashes = Array.from({ length: PARALLEL }, (_, i) => hash(`parallel-${i}`));
        let next = 0;
        await concurrently(PARALLEL, () => userStore.replaceToken(user.id, 'password_reset', hashes[next++], at(HOUR), at(0)));
        const live = [];
        for (const h of hashes) if (await userStore.isTokenLive(user.id, 'password_reset', h, at(1))) live.push(h);
        expect(live).toHaveLength(1);
        if (!isUserEmailChangeStore(userStore)) return;
        const changeHashes = Array.from({ length: PARALLEL }, (_, i) => hash(`parallel-change-${i}`));
        next = 0;
        await concurrently(PARALLEL, () => userStore.replaceEmailChangeToken(user.id, changeHashes[next], `parallel${next++}@example.com`, at(HOUR), at(0)));
        const changes = [];
        for (const h of changeHashes) if (await userStore.isTokenLive(user.id, 'change_email', h, at(1))) changes.push(h);
        expect(changes).toHaveLength(1);
      });

      test('ASVS 4.0 2.5.x: addToken leaves the live link alone; keepOnlyToken hands over atomically (20 in parallel leave one live link)', async ({ userStore }) => {
        if (!isUserTokenStore(userStore) || !isUserTokenHandoverStore(userStore)) return;
        const user = await newUser(userStore);
        await userStore.replaceToken(user.id, 'invite', hash('old'), at(HOUR), at(0));
        await userStore.addToken(user.id, 'invite', hash('failed'), at(HOUR), at(1));
        expect(await userStore.isTokenLive(user.id, 'invite', hash('old'), at(2))).toBe(true);
        expect(await userStore.consumeToken(user.id, 'invite', hash('failed'), at(2))).toBe(true); // its email failed: dropped
        expect(await userStore.keepOnlyToken(user.id, 'invite', hash('failed'), at(3))).toBe(false);
        expect(await userStore.isTokenLive(user.id, 'invite', hash('old'), at(3))).toBe(true);
        const hashes = Array.from({ length: PARALLEL }, (_, i) => hash(`handover-${i}`));
        for (const h of hashes) await userStore.addToken(user.id, 'invite', h, at(HOUR), at(4));
        let next = 0;
        const kept = await concurrently(PARALLEL, () => userStore.keepOnlyToken(user.id, 'invite', hashes[next++], at(5)));
        expect(kept.filter(Boolean).length).toBeGreaterThanOrEqual(1);
        const live = [];
        for (const h of [hash('old'), ...hashes]) if (await userStore.isTokenLive(user.id, 'invite', h, at(6))) live.push(h);
        expect(live).toHaveLength(1);
        expect(await userStore.isTokenLive(user.id, 'password_reset', live[0], at(6))).toBe(false);
      });

      test('ASVS 4.0 2.5.x: keepOnlyToken leaves a link whose hand-over has not run yet live; its own later hand-over voids the first (the link of the email accepted last stays live)', async ({ userStore }) => {
        if (!isUserTokenStore(userStore) || !isUserTokenHandoverStore(userStore)) return;
        const user = await newUser(userStore);
        await userStore.replaceToken(user.id, 'password_reset', hash('pending-old'), at(HOUR), at(0));
        await userStore.addToken(user.id, 'password_reset', hash('pending-slow'), at(HOUR), at(1));
        await userStore.addToken(user.id, 'password_reset', hash('pending-fast'), at(HOUR), at(2));
        expect(await userStore.keepOnlyToken(user.id, 'password_reset', hash('pending-fast'), at(3))).toBe(true);
        const live = async () => {
          const found = [];
          for (const h of ['old', 'slow', 'fast']) if (await userStore.isTokenLive(user.id, 'password_reset', hash(`pending-${h}`), at(5))) found.push(h);
          return found;
        };
        expect(await live()).toEqual(['slow', 'fast']);
        expect(await userStore.keepOnlyToken(user.id, 'password_reset', hash('pending-slow'), at(4))).toBe(true);
        expect(await live()).toEqual(['slow']);
      });

      test('ASVS 4.0 2.5.x: keepOnlyToken voids a link stored by addToken whose hand-over never ran once older than BACKOFFICE_TOKEN_HAND_OVER_PENDING_MAX_AGE_MS (its request died after the email), and leaves a younger one live', async ({ userStore }) => {
        if (!isUserTokenStore(userStore) || !isUserTokenHandoverStore(userStore)) return;
        const user = await newUser(userStore);
        const later = BACKOFFICE_TOKEN_HAND_OVER_PENDING_MAX_AGE_MS + 60_000;
        await userStore.addToken(user.id, 'password_reset', hash('stuck-dead'), at(2 * HOUR), at(0));
        await userStore.addToken(user.id, 'password_reset', hash('stuck-young'), at(2 * HOUR), at(later));
        await userStore.addToken(user.id, 'password_reset', hash('stuck-fresh'), at(2 * HOUR), at(later + 1_000));
        expect(await userStore.keepOnlyToken(user.id, 'password_reset', hash('stuck-fresh'), at(later + 2_000))).toBe(true);
        const live = [];
        for (const h of ['dead', 'young', 'fresh']) if (await userStore.isTokenLive(user.id, 'password_reset', hash(`stuck-${h}`), at(later + 3_000))) live.push(h);
        expect(live).toEqual(['young', 'fresh']);
      });

      test('ASVS 4.0 2.5.x: addEmailChangeToken leaves the pending email-change link alone; keepOnlyToken hands over to the address of the kept one', async ({ userStore }) => {
        if (!isUserEmailChangeHandoverStore(userStore)) return;
        const user = await newUser(userStore);
        await userStore.replaceEmailChangeToken(user.id, hash('pending'), 'pending@example.com', at(HOUR), at(0));
        await userStore.addEmailChangeToken(user.id, hash('refused'), 'refused@example.com', at(HOUR), at(1));
        expect(await userStore.consumeEmailChangeToken(user.id, hash('refused'), at(2))).toBe('refused@example.com'); // its email failed: dropped
        expect(await userStore.keepOnlyToken(user.id, 'change_email', hash('refused'), at(3))).toBe(false);
        await userStore.addEmailChangeToken(user.id, hash('delivered'), 'delivered@example.com', at(HOUR), at(4));
        expect(await userStore.keepOnlyToken(user.id, 'change_email', hash('delivered'), at(5))).toBe(true);
        expect(await userStore.consumeEmailChangeToken(user.id, hash('pending'), at(6))).toBeNull();
        expect(await userStore.consumeEmailChangeToken(user.id, hash('delivered'), at(6))).toBe('delivered@example.com');
      });

      test('ASVS 4.0 2.5.x, 3.3.1: addToken stores no link for a disabled or unknown user (false); a timed disable that has ended does not count', async ({ userStore }) => {
        if (!isUserTokenStore(userStore) || !isUserTokenHandoverStore(userStore)) return;
        const user = await newUser(userStore);
        expect(await userStore.addToken(user.id, 'password_reset', hash('enabled'), at(HOUR), at(0))).not.toBe(false);
        await userStore.updateProfile(user.id, { isApproved: false, disabledUntil: at(2 * HOUR) }, at(1));
        expect(await userStore.addToken(user.id, 'password_reset', hash('disabled'), at(HOUR), at(1))).toBe(false);
        expect(await userStore.isTokenLive(user.id, 'password_reset', hash('disabled'), at(1))).toBe(false);
        expect(await userStore.addToken(user.id, 'password_reset', hash('ended'), at(3 * HOUR), at(2 * HOUR + 1))).not.toBe(false);
        expect(await userStore.isTokenLive(user.id, 'password_reset', hash('ended'), at(2 * HOUR + 2))).toBe(true);
        expect(await userStore.addToken('00000000-0000-4000-8000-000000000000', 'password_reset', hash('nobody'), at(HOUR), at(1))).toBe(false);
      });

      test('ASVS 4.0 2.5.x, 3.3.1: replaceToken and replaceEmailChangeToken store no link for a disabled or unknown user (false, the live ones untouched); a timed disable that has ended does not count', async ({ userStore }) => {
        if (!isUserTokenStore(userStore)) return;
        const user = await newUser(userStore);
        expect(await userStore.replaceToken(user.id, 'password_reset', hash('replace-enabled'), at(HOUR), at(0))).not.toBe(false);
        await userStore.updateProfile(user.id, { isApproved: false, disabledUntil: at(2 * HOUR) }, at(1));
        expect(await userStore.replaceToken(user.id, 'password_reset', hash('replace-disabled'), at(HOUR), at(1))).toBe(false);
        expect(await userStore.isTokenLive(user.id, 'password_reset', hash('replace-disabled'), at(1))).toBe(false);
        expect(await userStore.isTokenLive(user.id, 'password_reset', hash('replace-enabled'), at(1))).toBe(true);
        if (isUserEmailChangeStore(userStore)) {
          expect(await userStore.replaceEmailChangeToken(user.id, hash('replace-disabled-change'), 'elsewhere@example.com', at(HOUR), at(1))).toBe(false);
          expect(await userStore.consumeEmailChangeToken(user.id, hash('replace-disabled-change'), at(2))).toBeNull();
        }
        expect(await userStore.replaceToken(user.id, 'password_reset', hash('replace-ended'), at(3 * HOUR), at(2 * HOUR + 1))).not.toBe(false);
        expect(await userStore.isTokenLive(user.id, 'password_reset', hash('replace-ended'), at(2 * HOUR + 2))).toBe(true);
        expect(await userStore.replaceToken('00000000-0000-4000-8000-000000000000', 'password_reset', hash('replace-nobody'), at(HOUR), at(1))).toBe(false);
      });

      test('ASVS 4.0 2.5.6, 1.11.3: with addressedTo, replaceToken, addToken, replaceEmailChangeToken and addEmailChangeToken store no link once the user moved to another email (false, nothing written); the current address is stored', async ({ userStore }) => {
        if (!isUserTokenStore(userStore)) return;
        const user = await newUser(userStore);
        const old = { addressedTo: user.normalizedEmail };
        const moved = `${unique('moved-')}@example.test`;
        await userStore.updateProfile(user.id, { email: moved, normalizedEmail: moved.toUpperCase() }, at(1));
        const current = { addressedTo: moved.toUpperCase() };
        expect(await userStore.replaceToken(user.id, 'password_reset', hash('addressed-old'), at(HOUR), at(2), old)).toBe(false);
        expect(await userStore.isTokenLive(user.id, 'password_reset', hash('addressed-old'), at(2))).toBe(false);
        expect(await userStore.replaceToken(user.id, 'password_reset', hash('addressed-new'), at(HOUR), at(3), current)).not.toBe(false);
        expect(await userStore.isTokenLive(user.id, 'password_reset', hash('addressed-new'), at(3))).toBe(true);
        if (isUserTokenHandoverStore(userStore)) {
          expect(await userStore.addToken(user.id, 'invite', hash('addressed-add-old'), at(HOUR), at(4), old)).toBe(false);
          expect(await userStore.isTokenLive(user.id, 'invite', hash('addressed-add-old'), at(4))).toBe(false);
          expect(await userStore.addToken(user.id, 'invite', hash('addressed-add-new'), at(HOUR), at(4), current)).not.toBe(false);
        }
        if (isUserEmailChangeStore(userStore)) {
          expect(await userStore.replaceEmailChangeToken(user.id, hash('addressed-change-old'), 'next@example.com', at(HOUR), at(5), old)).toBe(false);
          expect(await userStore.consumeEmailChangeToken(user.id, hash('addressed-change-old'), at(5))).toBeNull();
        }
        if (isUserEmailChangeHandoverStore(userStore)) {
          expect(await userStore.addEmailChangeToken(user.id, hash('addressed-add-change-old'), 'next@example.com', at(HOUR), at(6), old)).toBe(false);
          expect(await userStore.consumeEmailChangeToken(user.id, hash('addressed-add-change-old'), at(6))).toBeNull();
        }
      });

      test('ASVS 4.0 1.11.3: replaceRecoveryCodes with whileTwoFactorEnabled stores no code for a user with 2FA off (false, the codes untouched); with 2FA on it replaces the set', async ({ userStore }) => {
        if (!isUserRecoveryCodeStore(userStore) || !isUserTwoFactorStore(userStore)) return;
        const user = await newUser(userStore);
        await userStore.replaceRecoveryCodes(user.id, [hash('kept')], at(0));
        expect(await userStore.replaceRecoveryCodes(user.id, [hash('refused-1'), hash('refused-2')], at(1), { whileTwoFactorEnabled: true })).toBe(false);
        expect(await userStore.countRecoveryCodes(user.id)).toBe(1);
        expect(await userStore.redeemRecoveryCode(user.id, hash('refused-1'), at(2))).toBe(false);
        await userStore.setTwoFactorEnabled(user.id, true, 'stamp-2fa', at(3));
        expect(await userStore.replaceRecoveryCodes(user.id, [hash('fresh-1'), hash('fresh-2')], at(4), { whileTwoFactorEnabled: true })).not.toBe(false);
        expect(await userStore.countRecoveryCodes(user.id)).toBe(2);
        expect(await userStore.redeemRecoveryCode(user.id, hash('kept'), at(5))).toBe(false);
        expect(await userStore.redeemRecoveryCode(user.id, hash('fresh-1'), at(5))).toBe(true);
      });

      test('ASVS 4.0 1.11.3: setAuthenticatorKey replaces an unconfirmed key, and a confirmed one while 2FA is off, but keeps a confirmed key while 2FA is on (false); a store answering nothing is taken to have stored it', async ({ userStore }) => {
        if (!isUserAuthenticatorKeyStore(userStore) || !isUserTwoFactorStore(userStore)) return;
        const user = await newUser(userStore);
        const stored = (answer: boolean | void) => answer !== false;
        expect(stored(await userStore.setAuthenticatorKey(user.id, 'totp', 'secret-1', at(0)))).toBe(true);
        expect(stored(await userStore.setAuthenticatorKey(user.id, 'totp', 'secret-2', at(1)))).toBe(true);
        expect(await userStore.useAuthenticatorStep(user.id, 'totp', 10, true, at(2), 'secret-2')).toBe(true);
        // Confirmed, 2FA still off (an enable that did not get to turn it on): a new setup replaces it.
        expect(stored(await userStore.setAuthenticatorKey(user.id, 'totp', 'secret-3', at(3)))).toBe(true);
        expect(await userStore.getAuthenticatorKey(user.id, 'totp')).toEqual({ encryptedSecret: 'secret-3', confirmed: false, lastUsedStep: null });
        expect(await userStore.useAuthenticatorStep(user.id, 'totp', 11, true, at(4), 'secret-3')).toBe(true);
        await userStore.setTwoFactorEnabled(user.id, true, 'stamp-2fa', at(5));
        expect(await userStore.setAuthenticatorKey(user.id, 'totp', 'secret-4', at(6))).toBe(false);
        expect(await userStore.getAuthenticatorKey(user.id, 'totp')).toEqual({ encryptedSecret: 'secret-3', confirmed: true, lastUsedStep: 11 });
      });

      test('OWASP ASVS 5.0 6.3.x: removePasskey with keepAtLeast keeps that many (false, nothing removed), counted with the delete: removals sent at once leave one; without it the last one goes', async ({ userStore }) => {
        if (!isUserPasskeyStore(userStore)) return;
        const user = await newUser(userStore);
        const add = (name: string) =>
          userStore.addPasskey(user.id, { credentialId: randomBytes(16).toString('base64url'), publicKey: randomBytes(32), counter: 0, transports: ['internal'], name, deviceType: 'multiDevice', backedUp: true }, at(0));
        const hasPasskeys = async () => (userStore.hasPasskeys ? userStore.hasPasskeys(user.id) : (await userStore.listPasskeys(user.id)).length > 0);
        expect(await hasPasskeys()).toBe(false);
        const only = await add('only');
        expect(await hasPasskeys()).toBe(true);
        expect(await userStore.removePasskey(user.id, only.id, 1)).toBe(false);
        expect((await userStore.listPasskeys(user.id)).map((p) => p.id)).toEqual([only.id]);
        const more = await Promise.all(['a', 'b', 'c'].map(add));
        const removed = await Promise.all([only, ...more].map((p) => userStore.removePasskey(user.id, p.id, 1)));
        expect(removed.filter(Boolean)).toHaveLength(3);
        const [left] = await userStore.listPasskeys(user.id);
        expect(await userStore.listPasskeys(user.id)).toHaveLength(1);
        expect(await userStore.removePasskey(user.id, left.id)).toBe(true);
        expect(await userStore.listPasskeys(user.id)).toEqual([]);
        expect(await hasPasskeys()).toBe(false);
      });

      test('ASVS 4.0 V2.5: a directory-managed user gets no password_reset or invite link (replaceToken, addToken: false) and keeps the password a setPasswordHash with unlessDirectoryManaged would remove (false); email-change links and other password writes are not refused', async ({ userStore }) => {
        if (!isUserDirectoryManagedStore(userStore)) return;
        const user = await newUser(userStore);
        expect(await userStore.markDirectoryManaged(user.id, at(0))).toBe(true);
        if (isUserTokenStore(userStore)) {
          for (const purpose of ['password_reset', 'invite'] as const) {
            expect(await userStore.replaceToken(user.id, purpose, hash(`marked-replace-${purpose}`), at(HOUR), at(1))).toBe(false);
            expect(await userStore.isTokenLive(user.id, purpose, hash(`marked-replace-${purpose}`), at(1))).toBe(false);
            if (isUserTokenHandoverStore(userStore)) {
              expect(await userStore.addToken(user.id, purpose, hash(`marked-add-${purpose}`), at(HOUR), at(1))).toBe(false);
              expect(await userStore.isTokenLive(user.id, purpose, hash(`marked-add-${purpose}`), at(1))).toBe(false);
            }
          }
          expect(await userStore.replaceToken(user.id, 'change_email', hash('marked-change'), at(HOUR), at(1))).not.toBe(false);
        }
        if (isUserPasswordStore(userStore)) {
          const kept = (await userStore.findById(user.id))!.passwordHash;
          expect(await userStore.setPasswordHash(user.id, null, 'stamp-refused', at(2), { unlessDirectoryManaged: true })).toBe(false);
          expect((await userStore.findById(user.id))!.passwordHash).toBe(kept);
          expect(await userStore.setPasswordHash(user.id, 'hash-by-the-host', 'stamp-written', at(3))).not.toBe(false);
          expect((await userStore.findById(user.id))!.passwordHash).toBe('hash-by-the-host');
          expect(await userStore.clearDirectoryManaged(user.id, at(4))).toBe(true);
          expect(await userStore.setPasswordHash(user.id, null, 'stamp-cleared', at(5), { unlessDirectoryManaged: true })).not.toBe(false);
          expect((await userStore.findById(user.id))!.passwordHash).toBeNull();
        }
      });

      test("ASVS 4.0 V2.5: voidTokens(user, 'change_email') voids a pending email-change link (a password change does this)", async ({ userStore }) => {
        if (!isUserTokenStore(userStore) || !isUserEmailChangeStore(userStore)) return;
        const user = await newUser(userStore);
        const other = await newUser(userStore);
        await userStore.replaceEmailChangeToken(user.id, hash('move-me'), 'elsewhere@example.com', at(HOUR), at(0));
        await userStore.replaceEmailChangeToken(other.id, hash('keep-me'), 'kept@example.com', at(HOUR), at(0));
        await userStore.voidTokens(user.id, 'change_email', at(1));
        expect(await userStore.consumeEmailChangeToken(user.id, hash('move-me'), at(2))).toBeNull();
        expect(await userStore.consumeEmailChangeToken(other.id, hash('keep-me'), at(2))).toBe('kept@example.com');
      });
    });

    describe('user import', () => {
      /** An import row overwriting `user` (its email and username, with `onConflict: 'update'`) under another name. */
      const importRow = (
        { username, normalizedUsername, email, normalizedEmail }: Pick<BackOfficeUser, 'username' | 'normalizedUsername' | 'email' | 'normalizedEmail'>,
        name: string,
      ): ImportedUserRow => ({
        username,
        normalizedUsername,
        email,
        normalizedEmail,
        name,
        passwordHash: null,
        securityStamp: unique('stamp-'),
        isApproved: null,
        groups: [],
        createdAt: at(0),
        lastLoginAt: null,
      });

      test('OWASP ASVS 5.0 7.5.1 / 4.0 V2.5: refuseTarget is asked about every existing user a row overwrites (as stored, with the row index), dry runs too; a row it answers true for is answered directory_managed and nothing of it is written', async ({ userStore }) => {
        if (!isUserImportStore(userStore)) return;
        const refused = await newUser(userStore);
        const kept = await newUser(userStore);
        const fresh = `${unique('contract-new-')}@example.test`;
        const newcomer = { username: fresh, normalizedUsername: fresh.toUpperCase(), email: fresh, normalizedEmail: fresh.toUpperCase() };
        const rows = [importRow(newcomer, 'New'), importRow(refused, 'Overwritten'), importRow(kept, 'Overwritten')];
        for (const dryRun of [true, false]) {
          const asked: Array<[number, string, string]> = [];
          const outcomes = await userStore.importUsers(
            rows,
            {
              onConflict: 'update',
              dryRun,
              protectedGroup: 'admin',
              refuseTarget: (current, index) => {
                asked.push([index, current.id, current.name]);
                return current.id === refused.id;
              },
            },
            at(1),
          );
          // Every overwritten user, as it is stored before the batch writes it (a new row overwrites no one).
          expect([dryRun, asked.sort((a, b) => a[0] - b[0])]).toEqual([dryRun, [[1, refused.id, refused.name], [2, kept.id, kept.name]]]);
          expect([dryRun, outcomes]).toEqual([dryRun, ['created', 'directory_managed', 'updated']]);
          expect([dryRun, (await userStore.findById(refused.id))?.name]).toEqual([dryRun, refused.name]);
          expect([dryRun, (await userStore.findById(kept.id))?.name]).toEqual([dryRun, dryRun ? kept.name : 'Overwritten']);
          expect([dryRun, (await userStore.findByNormalizedEmail(newcomer.normalizedEmail)) !== null]).toEqual([dryRun, !dryRun]);
        }
      });

      test('OWASP ASVS 4.0 1.11.3 / 5.0 15.4.2: a row\'s isApproved enables or disables for good, whatever the user\'s disable: no disabledUntil or disabledReason is kept (a timed disable still running becomes a disable for good), and a disable voids the reset, invite and email-change links', async ({ userStore }) => {
        if (!isUserImportStore(userStore)) return;
        const links = isUserTokenStore(userStore) ? userStore : null;
        const disabledUntil = async (until: Date, changes: Partial<BackOfficeUser> = {}) => {
          const user = await newUser(userStore);
          // A link the user got before the disable was written (a store-level write voids none).
          await links?.replaceToken(user.id, 'password_reset', hash(`import-link-${user.id}`), at(6 * HOUR), at(0));
          await userStore.updateProfile(user.id, { isApproved: false, disabledUntil: until, disabledReason: 'holiday', ...changes }, at(1));
          return user;
        };
        const enabled = await disabledUntil(at(2 * HOUR));
        const ended = await disabledUntil(at(HOUR));
        // Approved with the end and reason of an earlier disable left on it (as an import's enable used to leave them).
        const stale = await disabledUntil(at(HOUR), { isApproved: true });
        const running = await disabledUntil(at(5 * HOUR));
        const runningEnabled = await disabledUntil(at(5 * HOUR));
        const row = (user: BackOfficeUser, isApproved: boolean): ImportedUserRow => ({ ...importRow(user, user.name), isApproved });
        const outcomes = await userStore.importUsers(
          [row(enabled, true), row(ended, false), row(stale, false), row(running, false), row(runningEnabled, true)],
          { onConflict: 'update', dryRun: false, protectedGroup: 'admin' },
          at(2 * HOUR),
        );
        expect(outcomes).toEqual(['updated', 'updated', 'updated', 'updated', 'updated']);
        const stored = async (user: BackOfficeUser) => {
          const found = (await userStore.findById(user.id))!;
          return [found.isApproved, found.disabledUntil ?? null, found.disabledReason ?? null, deriveUserState(found, at(6 * HOUR))];
        };
        expect(await stored(enabled)).toEqual([true, null, null, 'inactive']);
        // Disabled for good: no sign-in after the old end enables them again (liftExpiredDisable).
        expect(await stored(ended)).toEqual([false, null, null, 'disabled']);
        expect(await stored(stale)).toEqual([false, null, null, 'disabled']);
        // A timed disable still running is made one for good too, as POST /users/:id/disable without until does.
        expect(await stored(running)).toEqual([false, null, null, 'disabled']);
        expect(await stored(runningEnabled)).toEqual([true, null, null, 'inactive']);
        if (links) {
          const live = async (user: BackOfficeUser) => links.isTokenLive(user.id, 'password_reset', hash(`import-link-${user.id}`), at(2 * HOUR + 1));
          expect([await live(ended), await live(stale), await live(running)]).toEqual([false, false, false]);
        }
      });

      test('a row\'s isApproved false for a user an admin disabled for good with a reason keeps that reason (a lossless re-import of an export); an enable, or a disable of a user approved or with a timed disable, leaves none', async ({ userStore }) => {
        if (!isUserImportStore(userStore)) return;
        const disabled = async (changes: Partial<BackOfficeUser>) => {
          const user = await newUser(userStore);
          await userStore.updateProfile(user.id, { isApproved: false, disabledUntil: null, disabledReason: 'left the company', ...changes }, at(1));
          return user;
        };
        // POST /users/:id/disable with a reason and no until.
        const forGood = await disabled({});
        const reEnabled = await disabled({});
        // Approved with a reason left from an earlier disable: a disable by the import has none of its own.
        const approved = await disabled({ isApproved: true });
        const row = (user: BackOfficeUser, isApproved: boolean): ImportedUserRow => ({ ...importRow(user, user.name), isApproved });
        const outcomes = await userStore.importUsers(
          [row(forGood, false), row(reEnabled, true), row(approved, false)],
          { onConflict: 'update', dryRun: false, protectedGroup: 'admin' },
          at(2 * HOUR),
        );
        expect(outcomes).toEqual(['updated', 'updated', 'updated']);
        const stored = async (user: BackOfficeUser) => {
          const found = (await userStore.findById(user.id))!;
          return [found.isApproved, found.disabledUntil ?? null, found.disabledReason ?? null, deriveUserState(found, at(6 * HOUR))];
        };
        expect(await stored(forGood)).toEqual([false, null, 'left the company', 'disabled']);
        expect(await stored(reEnabled)).toEqual([true, null, null, 'inactive']);
        expect(await stored(approved)).toEqual([false, null, null, 'disabled']);
      });
    });

    describe('user list', () => {
      test('a state filter lists exactly the users clients see in that state (a timed disable that ended is not "disabled")', async ({ userStore }) => {
        if (!isUserQueryStore(userStore) || !isUserLockoutStore(userStore)) return;
        const tag = unique('listed-');
        const make = async (changes: Parameters<BackOfficeUserStore['updateProfile']>[1], lockoutEnd: Date | null = null) => {
          const user = await newUser(userStore);
          await userStore.updateProfile(user.id, { name: tag, lastLoginAt: at(0), ...changes }, at(0));
          if (lockoutEnd) await userStore.setLockoutEnd(user.id, lockoutEnd, at(0));
          return user.id;
        };
        await make({});
        await make({ isApproved: false });
        await make({ isApproved: false, disabledUntil: at(HOUR) });
        await make({ isApproved: false, disabledUntil: at(HOUR) }, at(3 * HOUR));
        await make({ isApproved: false, disabledUntil: at(HOUR), lastLoginAt: null });
        const states: BackOfficeUserState[] = ['active', 'inactive', 'disabled', 'invited', 'lockedOut'];
        for (const now of [at(1), at(2 * HOUR)]) {
          const all = (await userStore.list({ skip: 0, take: 100, filter: tag, now })).items;
          expect(all).toHaveLength(5);
          for (const state of states) {
            const listed = (await userStore.list({ skip: 0, take: 100, filter: tag, state, now })).items.map((u) => u.id).sort();
            expect([state, listed]).toEqual([state, all.filter((u) => deriveUserState(u, now) === state).map((u) => u.id).sort()]);
          }
        }
      });
    });

    describe('groups', () => {
      test('the last-admin rule holds under concurrency: of two admins removing each other at once, one stays', async ({ userStore, groupStore }) => {
        if (!isUserGroupStore(userStore)) return;
        const alias = unique('admins');
        await groupStore.create(alias, { name: 'Contract admins', permissions: [], requireTwoFactor: false }, at(0));
        const first = await newUser(userStore, [alias]);
        const second = await newUser(userStore, [alias]);
        const removeUnlessLast = (userId: string) =>
          userStore.withGroupLock(alias, async (store: BackOfficeUserStore & UserGroupStore) => {
            if ((await store.countApprovedInGroup(alias, { now: at(1), exceptUserId: userId })) < 1) return false;
            await store.setGroups(userId, []);
            return true;
          });
        const outcomes = await Promise.all([removeUnlessLast(first.id), removeUnlessLast(second.id)]);
        expect(outcomes.filter(Boolean)).toHaveLength(1);
        expect(await userStore.countApprovedInGroup(alias)).toBe(1);
        expect((await groupStore.find(alias))?.memberCount).toBe(1);
      });

      test('groups: aliases unique ignoring case under concurrency; a refused plan writes nothing; delete moves members', async ({ userStore, groupStore }) => {
        const alias = unique('Editors');
        const made = await Promise.allSettled(
          [alias, alias.toLowerCase(), alias.toUpperCase()].map((a) => groupStore.create(a, { name: 'Ed', permissions: ['users.read'], requireTwoFactor: false }, at(0))),
        );
        expect(made.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const refused = made.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        expect(refused.reason).toBeInstanceOf(BackOfficeDuplicateGroupError);
        const created = (made.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ alias: string }>).value.alias;

        await expect(
          groupStore.update(created, () => {
            throw new Error('refused by the caller');
          }, at(1)),
        ).rejects.toThrow('refused by the caller');
        expect((await groupStore.find(created))?.name).toBe('Ed');
        const updated = await groupStore.update(created, (g) => ({ ...g, name: 'Éditeurs', requireTwoFactor: true }), at(2));
        expect(updated?.after.name).toBe('Éditeurs');
        expect(updated?.before.name).toBe('Ed');
        expect(await groupStore.update(unique('missing'), () => null, at(2))).toBeNull();

        const target = unique('target');
        await groupStore.create(target, { name: 'Target', permissions: [], requireTwoFactor: false }, at(0));
        const member = await newUser(userStore, [created]);
        expect((await userStore.findById(member.id))?.twoFactorRequiredByGroup).toBe(true);
        const deleted = await groupStore.delete(created, target, (group, to) => {
          expect(group.memberCount).toBe(1);
          expect(to?.alias).toBe(target);
        });
        expect(deleted?.group.alias).toBe(created);
        expect(await groupStore.find(created)).toBeNull();
        expect((await userStore.findById(member.id))?.groups).toEqual([target]);
        expect((await groupStore.findMany([target, created])).map((g) => g.alias)).toEqual([target]);
      });
    });

    describe('a user\'s groups', () => {
      test('read with the user: aliases in code point order, permissions distinct and sorted, the 2FA rule of any group', async ({ userStore, groupStore, sessionStore }) => {
        const base = unique('g');
        // Code point order puts upper case first and "-" before "_" (a collation would not).
        const aliases = [`${base}_b`, `${base}-b`, `Z${base}`, `${base}a`];
        await groupStore.create(aliases[0], { name: 'One', permissions: ['users.read', 'audit.read'], requireTwoFactor: false }, at(0));
        await groupStore.create(aliases[1], { name: 'Two', permissions: ['audit.read'], requireTwoFactor: true }, at(0));
        await groupStore.create(aliases[2], { name: 'Three', permissions: [], requireTwoFactor: false }, at(0));
        await groupStore.create(aliases[3], { name: 'Four', permissions: ['groups.manage'], requireTwoFactor: false }, at(0));
        const member = await newUser(userStore, aliases);
        const sorted = [...aliases].sort();
        const read = await userStore.findById(member.id);
        expect(read?.groups).toEqual(sorted);
        expect(read?.permissions ?? []).toEqual(['audit.read', 'groups.manage', 'users.read']);
        expect(read?.twoFactorRequiredByGroup === true).toBe(true);
        const session = newSession(member.id, member.securityStamp);
        await sessionStore.create(session);
        const joined = await sessionStore.findByTokenHashWithUser?.(session.tokenHash);
        if (joined) {
          expect(joined.user?.groups).toEqual(sorted);
          expect(joined.user?.permissions ?? []).toEqual(['audit.read', 'groups.manage', 'users.read']);
          expect(joined.user?.twoFactorRequiredByGroup === true).toBe(true);
        }
        const loner = await newUser(userStore);
        const alone = await userStore.findById(loner.id);
        expect(alone?.groups).toEqual([]);
        expect(alone?.permissions ?? []).toEqual([]);
        expect(alone?.twoFactorRequiredByGroup === true).toBe(false);
      });
    });

    describe('sessions', () => {
      test('ending the others keeps the current session; revoke is per user; touch never goes back', async ({ userStore, sessionStore }) => {
        const user = await newUser(userStore);
        const current = newSession(user.id, user.securityStamp);
        const others = [newSession(user.id, user.securityStamp), newSession(user.id, user.securityStamp, { lastSeenAt: at(60_000) })];
        for (const s of [current, ...others]) await sessionStore.create(s);
        expect((await sessionStore.findByTokenHash(current.tokenHash))?.id).toBe(current.id);
        expect((await sessionStore.listLive(user.id, user.securityStamp, at(1), at(-HOUR)))[0]?.id).toBe(others[1].id);

        const stranger = await newUser(userStore);
        expect(await sessionStore.revoke(stranger.id, current.id, at(1))).toBe(false);
        const ended = await concurrently(3, () => sessionStore.revokeAll(user.id, at(2), current.id));
        expect(ended.reduce((a, b) => a + b, 0)).toBe(2);
        const live = await sessionStore.listLive(user.id, user.securityStamp, at(3), at(-HOUR));
        expect(live.map((s) => s.id)).toEqual([current.id]);
        expect((await sessionStore.findById(user.id, others[0].id))?.revokedAt?.getTime()).toBe(at(2).getTime());

        await sessionStore.touch(current.id, at(120_000));
        await sessionStore.touch(current.id, at(60_000));
        expect((await sessionStore.findById(user.id, current.id))?.lastSeenAt.getTime()).toBe(at(120_000).getTime());
        await sessionStore.update(current.id, { securityStamp: 'stamp-2' });
        expect(await sessionStore.listLive(user.id, user.securityStamp, at(3), at(-HOUR))).toHaveLength(0);
        expect(await sessionStore.revoke(user.id, current.id, at(4))).toBe(true);
        expect(await sessionStore.revoke(user.id, current.id, at(5))).toBe(false);
        await sessionStore.touch(current.id, at(HOUR));
        await sessionStore.update(current.id, { reauthenticatedAt: at(HOUR) }, { onlyIfLive: true });
        const revoked = await sessionStore.findById(user.id, current.id);
        expect(revoked?.lastSeenAt.getTime()).toBe(at(120_000).getTime());
        expect(revoked?.reauthenticatedAt?.getTime()).toBe(at(0).getTime());
      });

      test('touchMany (when the store has it) moves each session forward as touch does: never back, never a revoked session', async ({ userStore, sessionStore }) => {
        if (!sessionStore.touchMany) return;
        const user = await newUser(userStore);
        const [forward, ahead, revoked] = [
          newSession(user.id, user.securityStamp, { lastSeenAt: at(0) }),
          newSession(user.id, user.securityStamp, { lastSeenAt: at(2 * HOUR) }),
          newSession(user.id, user.securityStamp, { lastSeenAt: at(0) }),
        ];
        for (const s of [forward, ahead, revoked]) await sessionStore.create(s);
        expect(await sessionStore.revoke(user.id, revoked.id, at(1))).toBe(true);
        await sessionStore.touchMany([forward, ahead, revoked].map((s) => ({ sessionId: s.id, at: at(HOUR) })));
        expect((await sessionStore.findById(user.id, forward.id))?.lastSeenAt.getTime()).toBe(at(HOUR).getTime());
        expect((await sessionStore.findById(user.id, ahead.id))?.lastSeenAt.getTime()).toBe(at(2 * HOUR).getTime());
        expect((await sessionStore.findById(user.id, revoked.id))?.lastSeenAt.getTime()).toBe(at(0).getTime());
        await sessionStore.touchMany([]);
      });

      test('revokeAll with `live` ends every unrevoked session but counts only those that were live, the ones listLive lists (not past the absolute end, seen after `seenAfter`, under the stamp or an announced one)', async ({ userStore, sessionStore }) => {
        const user = await newUser(userStore);
        const live = newSession(user.id, user.securityStamp, { lastSeenAt: at(HOUR) });
        const announced = newSession(user.id, 'stamp-old', { lastSeenAt: at(HOUR) });
        const ended = [
          newSession(user.id, user.securityStamp, { lastSeenAt: at(HOUR), expiresAt: at(2 * HOUR) }), // absolute end passed
          newSession(user.id, user.securityStamp, { lastSeenAt: at(0) }), // idle
          newSession(user.id, 'stamp-old', { lastSeenAt: at(HOUR) }), // a stamp the user no longer has
        ];
        for (const s of [live, announced, ...ended]) await sessionStore.create(s);
        await sessionStore.update(announced.id, { nextSecurityStamps: [user.securityStamp] });
        // listLive (and its page) lists by the same rule revokeAll counts by: exactly the two live ones.
        const byRule = [live.id, announced.id].sort();
        expect((await sessionStore.listLive(user.id, user.securityStamp, at(3 * HOUR), at(30 * 60_000))).map((s) => s.id).sort()).toEqual(byRule);
        if (sessionStore.listLivePage) {
          expect((await sessionStore.listLivePage(user.id, user.securityStamp, at(3 * HOUR), at(30 * 60_000), { skip: 0, take: 10 })).map((s) => s.id).sort()).toEqual(byRule);
        }
        expect(await sessionStore.revokeAll(user.id, at(3 * HOUR), undefined, { securityStamp: user.securityStamp, seenAfter: at(30 * 60_000) })).toBe(2);
        for (const s of [live, announced, ...ended]) expect((await sessionStore.findById(user.id, s.id))?.revokedAt?.getTime()).toBe(at(3 * HOUR).getTime());
        expect(await sessionStore.revokeAll(user.id, at(4 * HOUR), undefined, { securityStamp: user.securityStamp, seenAfter: at(0) })).toBe(0);
      });

      test('a new token hash (a re-authentication): the old hash finds nothing, the new one the same session; replaceTokenHash (when offered) only from the current hash of an unrevoked session, of two at once exactly one', async ({ userStore, sessionStore }) => {
        const user = await newUser(userStore);
        const session = newSession(user.id, user.securityStamp);
        await sessionStore.create(session);
        const renewed = hash(randomUUID());
        await sessionStore.update(session.id, { tokenHash: renewed, reauthenticatedAt: at(HOUR) }, { onlyIfLive: true });
        expect(await sessionStore.findByTokenHash(session.tokenHash)).toBeNull();
        const found = await sessionStore.findByTokenHash(renewed);
        expect(found?.id).toBe(session.id);
        expect(found?.createdAt.getTime()).toBe(at(0).getTime());
        expect(found?.reauthenticatedAt?.getTime()).toBe(at(HOUR).getTime());
        if (!sessionStore.replaceTokenHash) return;
        // Only from the hash the session has now.
        expect(await sessionStore.replaceTokenHash(session.id, session.tokenHash, hash(randomUUID()), {})).toBe(false);
        expect((await sessionStore.findByTokenHash(renewed))?.id).toBe(session.id);
        // Two renewals of one hash at once: exactly one wins, and its hash is the one stored.
        const rivals = [hash(randomUUID()), hash(randomUUID())];
        const won = await concurrently(2, (i) => sessionStore.replaceTokenHash!(session.id, renewed, rivals[i], { reauthenticatedAt: at(2 * HOUR) }));
        expect(won.filter(Boolean)).toHaveLength(1);
        const winner = rivals[won.indexOf(true)];
        expect((await sessionStore.findByTokenHash(winner))?.reauthenticatedAt?.getTime()).toBe(at(2 * HOUR).getTime());
        expect(await sessionStore.findByTokenHash(rivals[won.indexOf(false)])).toBeNull();
        expect(await sessionStore.findByTokenHash(renewed)).toBeNull();
        // A revoked session gets no new token.
        expect(await sessionStore.revoke(user.id, session.id, at(3 * HOUR))).toBe(true);
        expect(await sessionStore.replaceTokenHash(session.id, winner, hash(randomUUID()), {})).toBe(false);
        expect((await sessionStore.findByTokenHash(winner))?.id).toBe(session.id);
      });

      test('revokeOthersIfLive (when the store offers it): ends the others only while the kept session is live; of two at once exactly one stays', async ({ userStore, sessionStore }) => {
        if (!sessionStore.revokeOthersIfLive) return;
        const user = await newUser(userStore);
        const [kept, ...others] = [0, 1, 2].map(() => newSession(user.id, user.securityStamp));
        for (const s of [kept, ...others]) await sessionStore.create(s);
        expect(await sessionStore.revokeOthersIfLive(user.id, kept.id, at(1))).toBe(2);
        expect((await sessionStore.listLive(user.id, user.securityStamp, at(2), at(-HOUR))).map((s) => s.id)).toEqual([kept.id]);
        // A kept session that is no longer live ends nobody.
        const later = newSession(user.id, user.securityStamp);
        await sessionStore.create(later);
        await sessionStore.revoke(user.id, kept.id, at(3));
        expect(await sessionStore.revokeOthersIfLive(user.id, kept.id, at(4))).toBe(0);
        expect((await sessionStore.findById(user.id, later.id))?.revokedAt).toBeNull();
        // Two sign-ins that each keep their own: exactly one of them stays live (never none).
        const rival = newSession(user.id, user.securityStamp);
        await sessionStore.create(rival);
        await concurrently(2, (i) => sessionStore.revokeOthersIfLive!(user.id, i === 0 ? later.id : rival.id, at(5)));
        const live = await sessionStore.listLive(user.id, user.securityStamp, at(6), at(-HOUR));
        expect(live).toHaveLength(1);
        expect([later.id, rival.id].includes(live[0].id)).toBe(true);
      });

      test('announced next security stamps: read back by every lookup, listed under each, ended by adopting (when the store keeps them)', async ({ userStore, sessionStore }) => {
        const user = await newUser(userStore);
        const session = newSession(user.id, user.securityStamp);
        await sessionStore.create(session);
        await sessionStore.update(session.id, { nextSecurityStamps: ['stamp-next', 'stamp-other'] }, { onlyIfLive: true });
        const announced = await sessionStore.findById(user.id, session.id);
        if (announced?.nextSecurityStamps === undefined) return; // an optional field: this store keeps no announcement
        expect(announced.nextSecurityStamps).toEqual(['stamp-next', 'stamp-other']);
        expect((await sessionStore.findByTokenHash(session.tokenHash))?.nextSecurityStamps).toEqual(['stamp-next', 'stamp-other']);
        if (sessionStore.findByTokenHashWithUser && sessionStore.readsUsersOf?.(userStore)) {
          expect((await sessionStore.findByTokenHashWithUser(session.tokenHash))?.session.nextSecurityStamps).toEqual(['stamp-next', 'stamp-other']);
        }
        expect((await sessionStore.listLive(user.id, 'stamp-next', at(1), at(-HOUR))).map((s) => s.id)).toEqual([session.id]);
        expect((await sessionStore.listLive(user.id, 'stamp-other', at(1), at(-HOUR))).map((s) => s.id)).toEqual([session.id]);
        expect((await sessionStore.listLive(user.id, 'stamp-none', at(1), at(-HOUR))).map((s) => s.id)).toEqual([]);
        expect((await sessionStore.listLive(user.id, user.securityStamp, at(1), at(-HOUR))).map((s) => s.id)).toEqual([session.id]);
        await sessionStore.update(session.id, { securityStamp: 'stamp-next', nextSecurityStamps: null });
        const adopted = await sessionStore.findById(user.id, session.id);
        expect([adopted?.securityStamp, adopted?.nextSecurityStamps ?? null]).toEqual(['stamp-next', null]);
        expect(await sessionStore.listLive(user.id, user.securityStamp, at(1), at(-HOUR))).toHaveLength(0);
        expect(await sessionStore.listLive(user.id, 'stamp-other', at(1), at(-HOUR))).toHaveLength(0);
        // A revoked session takes no announcement (onlyIfLive).
        await sessionStore.revoke(user.id, session.id, at(2));
        await sessionStore.update(session.id, { nextSecurityStamps: ['stamp-later'] }, { onlyIfLive: true });
        expect((await sessionStore.findById(user.id, session.id))?.nextSecurityStamps ?? null).toBeNull();
      });

      test('announcing security stamps: each change in flight keeps its own (also announced at once), one the user holds now becomes the session\'s, the newest few are kept; a revoked session announces nothing (when the store offers it)', async ({ userStore, sessionStore }) => {
        if (!sessionStore.announceSecurityStamp || !sessionStore.readsUsersOf?.(userStore) || !isUserSecurityStampStore(userStore)) return;
        const user = await newUser(userStore);
        const session = newSession(user.id, user.securityStamp);
        await sessionStore.create(session);
        const stamps = async () => {
          const found = await sessionStore.findById(user.id, session.id);
          return [found?.securityStamp, found?.nextSecurityStamps];
        };
        await sessionStore.announceSecurityStamp(session.id, 'stamp-a');
        expect(await stamps()).toEqual([user.securityStamp, ['stamp-a']]);
        // Not written yet: a new announcement joins it (whichever change writes first, the session holds its stamp).
        await sessionStore.announceSecurityStamp(session.id, 'stamp-b');
        expect(await stamps()).toEqual([user.securityStamp, ['stamp-a', 'stamp-b']]);
        // Written (the user holds it): it becomes the session's stamp, the others stay, the new one joins them.
        await userStore.setSecurityStamp(user.id, 'stamp-b', at(1));
        await sessionStore.announceSecurityStamp(session.id, 'stamp-c');
        expect(await stamps()).toEqual(['stamp-b', ['stamp-a', 'stamp-c']]);
        // Announcements sent at once: none is lost.
        await concurrently(4, (i) => sessionStore.announceSecurityStamp!(session.id, `stamp-at-once-${i}`));
        const atOnce = (await stamps())[1] as string[];
        expect([...atOnce].sort()).toEqual(['stamp-a', 'stamp-at-once-0', 'stamp-at-once-1', 'stamp-at-once-2', 'stamp-at-once-3', 'stamp-c']);
        // The newest MAX_ANNOUNCED_SECURITY_STAMPS stay (a change that failed before writing leaves its stamp behind).
        for (let i = 0; i < MAX_ANNOUNCED_SECURITY_STAMPS; i++) await sessionStore.announceSecurityStamp(session.id, `stamp-n${i}`);
        expect(await stamps()).toEqual(['stamp-b', Array.from({ length: MAX_ANNOUNCED_SECURITY_STAMPS }, (_, i) => `stamp-n${i}`)]);
        const revoked = newSession(user.id, 'stamp-b');
        await sessionStore.create(revoked);
        await sessionStore.revoke(user.id, revoked.id, at(2));
        await sessionStore.announceSecurityStamp(revoked.id, 'stamp-d');
        const still = await sessionStore.findById(user.id, revoked.id);
        expect([still?.securityStamp, still?.nextSecurityStamps ?? null]).toEqual(['stamp-b', null]);
      });

      test('announcing security stamps never hands a session a stamp it did not announce: one the user got from another change (a renewal that ended it), or one another session of the user announced (OWASP ASVS 4.0 3.3.1; when the store offers it)', async ({ userStore, sessionStore }) => {
        if (!sessionStore.announceSecurityStamp || !sessionStore.readsUsersOf?.(userStore) || !isUserSecurityStampStore(userStore)) return;
        const user = await newUser(userStore);
        const session = newSession(user.id, user.securityStamp);
        const other = newSession(user.id, user.securityStamp);
        await sessionStore.create(session);
        await sessionStore.create(other);
        const stampsOf = async (id: string) => {
          const found = await sessionStore.findById(user.id, id);
          return [found?.securityStamp, found?.nextSecurityStamps ?? null];
        };
        const liveIds = async (stamp: string) => (await sessionStore.listLive(user.id, stamp, at(0), at(-60))).map((s) => s.id).sort();
        // The user's stamp renewed by a change neither session made: both sessions are ended by it, announcing or not.
        await userStore.setSecurityStamp(user.id, 'stamp-foreign', at(1));
        await sessionStore.announceSecurityStamp(session.id, 'stamp-own');
        expect(await stampsOf(session.id)).toEqual([user.securityStamp, ['stamp-own']]);
        expect(await liveIds('stamp-foreign')).toEqual([]);
        // The first session's change writes its stamp; the second session announcing meanwhile does not get it.
        await userStore.setSecurityStamp(user.id, 'stamp-own', at(2));
        await sessionStore.announceSecurityStamp(other.id, 'stamp-other');
        expect(await stampsOf(other.id)).toEqual([user.securityStamp, ['stamp-other']]);
        expect(await liveIds('stamp-own')).toEqual([session.id]);
      });

      test('adopting a security stamp: only the one the user holds now, ending only its own announcement, never by a revoked session (when the store offers it)', async ({ userStore, sessionStore }) => {
        if (!sessionStore.adoptSecurityStamp || !sessionStore.readsUsersOf?.(userStore) || !isUserSecurityStampStore(userStore)) return;
        const user = await newUser(userStore);
        const session = newSession(user.id, user.securityStamp);
        await sessionStore.create(session);
        await sessionStore.update(session.id, { nextSecurityStamps: ['stamp-b'] }, { onlyIfLive: true });
        await userStore.setSecurityStamp(user.id, 'stamp-a', at(1));
        await userStore.setSecurityStamp(user.id, 'stamp-b', at(2));
        // A stamp the user had and no longer has (a later change wrote another): nothing changes.
        expect(await sessionStore.adoptSecurityStamp(session.id, 'stamp-a')).toBe(false);
        const unchanged = await sessionStore.findById(user.id, session.id);
        expect(unchanged?.securityStamp).toBe(user.securityStamp);
        if (unchanged?.nextSecurityStamps !== undefined) expect(unchanged.nextSecurityStamps).toEqual(['stamp-b']);
        // The user's stamp: adopted, and the announcement of it ends.
        expect(await sessionStore.adoptSecurityStamp(session.id, 'stamp-b')).toBe(true);
        const adopted = await sessionStore.findById(user.id, session.id);
        expect(adopted?.securityStamp).toBe('stamp-b');
        if (adopted?.nextSecurityStamps !== undefined) expect(adopted.nextSecurityStamps ?? []).toEqual([]);
        // Other changes of the session announced meanwhile: adopting one stamp leaves their announcements.
        await sessionStore.update(session.id, { nextSecurityStamps: ['stamp-c', 'stamp-d', 'stamp-e'] }, { onlyIfLive: true });
        await userStore.setSecurityStamp(user.id, 'stamp-c', at(3));
        expect(await sessionStore.adoptSecurityStamp(session.id, 'stamp-c')).toBe(true);
        const kept = await sessionStore.findById(user.id, session.id);
        expect(kept?.securityStamp).toBe('stamp-c');
        if (kept?.nextSecurityStamps !== undefined) expect(kept.nextSecurityStamps).toEqual(['stamp-d', 'stamp-e']);
        // A revoked session adopts nothing, not even the user's stamp.
        const revoked = newSession(user.id, user.securityStamp);
        await sessionStore.create(revoked);
        await sessionStore.revoke(user.id, revoked.id, at(4));
        expect(await sessionStore.adoptSecurityStamp(revoked.id, 'stamp-c')).toBe(false);
        const still = await sessionStore.findById(user.id, revoked.id);
        expect([still?.securityStamp, still?.revokedAt?.getTime()]).toEqual([user.securityStamp, at(4).getTime()]);
        expect(await sessionStore.adoptSecurityStamp(randomUUID(), 'stamp-c')).toBe(false);
      });

      test('the one-round-trip lookup reads the session with its user, when the store offers it', async ({ userStore, sessionStore }) => {
        if (!sessionStore.findByTokenHashWithUser || !sessionStore.readsUsersOf?.(userStore)) return;
        const user = await newUser(userStore);
        const session = newSession(user.id, user.securityStamp);
        await sessionStore.create(session);
        const found = await sessionStore.findByTokenHashWithUser(session.tokenHash);
        expect(found?.session.id).toBe(session.id);
        expect(found?.user?.email).toBe(user.email);
        expect(await sessionStore.findByTokenHashWithUser(hash('unknown'))).toBeNull();
      });

      test('a session with the writes of its sign-in (last login, audit entry), when the store offers it', async ({ userStore, sessionStore, auditStore }) => {
        const can = sessionStore.createWithSignIn && sessionStore.signInWritesFor?.(userStore, auditStore ?? null);
        if (!can || !(can.lastLogin || can.audit)) return;
        const user = await newUser(userStore);
        const session = newSession(user.id, user.securityStamp);
        const loginAt = at(5_000);
        const entry = { event: 'backoffice.user.login.success', performingUserId: user.id, affectedUserId: user.id, ipAddress: '203.0.113.9', createdAt: loginAt, details: {} };
        await sessionStore.createWithSignIn!(session, { lastLoginAt: can.lastLogin ? { userId: user.id, at: loginAt } : undefined, auditEntries: can.audit ? [entry] : [] });
        expect((await sessionStore.findByTokenHash(session.tokenHash))?.id).toBe(session.id);
        if (can.lastLogin) expect((await userStore.findById(user.id))?.lastLoginAt?.getTime()).toBe(loginAt.getTime());
        if (can.audit) {
          const page = await auditStore!.list({ userId: user.id, take: 10 });
          expect(page.items.map((e) => [e.event, e.ipAddress, e.createdAt.getTime()])).toEqual([[entry.event, entry.ipAddress, loginAt.getTime()]]);
        }
      });
    });

    describe('pending sign-ins', () => {
      test('of 20 parallel consumes of one pending sign-in exactly one wins (each kind)', async ({ userStore, pendingSignInStore }) => {
        const user = await newUser(userStore);
        for (const kind of ['two_factor', 'external_login', 'passkey'] as const) {
          const step = pending({
            kind,
            purpose: kind === 'two_factor' ? 'password' : kind === 'external_login' ? 'oidc' : 'authentication',
            browserHash: kind === 'external_login' ? hash('browser') : null,
            userId: kind === 'two_factor' ? user.id : null,
            payload: kind === 'passkey' ? null : 'payload ✓',
            securityStamp: kind === 'two_factor' ? 'stamp' : null,
          });
          await pendingSignInStore.create(step, at(0));
          const winners = (await concurrently(PARALLEL, () => pendingSignInStore.consume(kind, step.keyHash, at(1)))).filter((r) => r !== null);
          expect(winners).toHaveLength(1);
          expect(winners[0]!.payload).toBe(step.payload);
          expect(await pendingSignInStore.find(kind, step.keyHash, at(1))).toBeNull();
        }
      });

      test('a pending sign-in must match purpose, browser and user; a mismatch does not use it up; it expires', async ({ userStore, pendingSignInStore }) => {
        const user = await newUser(userStore);
        const twoFactor = pending({ kind: 'two_factor', purpose: 'passkey', userId: user.id, securityStamp: user.securityStamp, payload: null });
        await pendingSignInStore.create(twoFactor, at(0));
        const peeked = await pendingSignInStore.find('two_factor', twoFactor.keyHash, at(1));
        expect([peeked?.userId, peeked?.securityStamp, peeked?.purpose]).toEqual([user.id, user.securityStamp, 'passkey']);
        expect(await pendingSignInStore.find('passkey', twoFactor.keyHash, at(1))).toBeNull();

        const challenge = pending({ kind: 'passkey', purpose: 'reauthentication', userId: user.id });
        await pendingSignInStore.create(challenge, at(0));
        expect(await pendingSignInStore.consume('passkey', challenge.keyHash, at(1), { purpose: 'registration', userId: user.id })).toBeNull();
        expect(await pendingSignInStore.consume('passkey', challenge.keyHash, at(1), { purpose: 'reauthentication', userId: null })).toBeNull();
        expect(await pendingSignInStore.consume('passkey', challenge.keyHash, at(1), { purpose: 'reauthentication', userId: user.id })).not.toBeNull();

        const state = pending({ kind: 'external_login', purpose: 'oidc', browserHash: hash('browser-a'), payload: 'sealed' });
        await pendingSignInStore.create(state, at(0));
        expect(await pendingSignInStore.consume('external_login', state.keyHash, at(1), { purpose: 'oidc', browserHash: hash('browser-b') })).toBeNull();
        expect(await pendingSignInStore.consume('external_login', state.keyHash, at(10 * 60_000), { purpose: 'oidc', browserHash: hash('browser-a') })).toBeNull();
      });

      // Steps bound to a signed-in user are capped per user and purpose (OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1): passkey
      // challenges (purpose: the ceremony) and external login states of a link or step-up (purpose: the provider).
      const cappedKinds = [
        { kind: 'passkey', cap: BACKOFFICE_PASSKEY_CHALLENGES_PER_USER, named: 'BACKOFFICE_PASSKEY_CHALLENGES_PER_USER live passkey challenges', purposes: ['reauthentication', 'registration'], anonymousPurpose: 'authentication', fields: {} },
        {
          kind: 'external_login',
          cap: BACKOFFICE_EXTERNAL_LOGIN_STATES_PER_USER,
          named: 'BACKOFFICE_EXTERNAL_LOGIN_STATES_PER_USER live external login states (OIDC link, step-up)',
          purposes: ['oidc', 'corp'],
          anonymousPurpose: 'oidc',
          fields: { browserHash: hash('browser'), payload: 'sealed' },
        },
      ] as const;
      for (const { kind, cap, named, purposes, anonymousPurpose, fields } of cappedKinds) {
        test(`OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1 (anti-automation): a user keeps at most ${named} per purpose, also under 20 parallel creations; the newest stay`, async ({ userStore, pendingSignInStore }) => {
          const step = (purpose: string, userId: string | null) => pending({ kind, purpose, userId, ...fields });
          const live = async (steps: BackOfficePendingSignIn[], now: Date) =>
            (await Promise.all(steps.map((s) => pendingSignInStore.find(s.kind, s.keyHash, now)))).filter((found) => found !== null);
          const user = await newUser(userStore);
          const raced = Array.from({ length: PARALLEL }, () => step(purposes[0], user.id));
          await concurrently(PARALLEL, (i) => pendingSignInStore.create(raced[i], at(0)));
          const kept = await live(raced, at(1));
          expect(kept).toHaveLength(cap);
          expect(kept.map((found) => found.userId)).toEqual(Array(cap).fill(user.id));

          // One after another: the oldest go, the newest stay; another purpose, another user and anonymous steps are
          // counted apart (anonymous ones are bounded by the routes' per-IP limits instead).
          const other = await newUser(userStore);
          const otherPurpose = step(purposes[1], user.id);
          const othersStep = step(purposes[0], other.id);
          await pendingSignInStore.create(otherPurpose, at(1));
          await pendingSignInStore.create(othersStep, at(1));
          const inOrder = Array.from({ length: cap + 2 }, () => step(purposes[0], user.id));
          for (const [i, s] of inOrder.entries()) await pendingSignInStore.create(s, at(10 + i));
          expect(await live(raced, at(100))).toHaveLength(0);
          expect(await live(inOrder.slice(0, 2), at(100))).toHaveLength(0);
          expect(await live(inOrder.slice(2), at(100))).toHaveLength(cap);
          expect(await live([otherPurpose, othersStep], at(100))).toHaveLength(2);
          const anonymous = Array.from({ length: cap + 2 }, () => step(anonymousPurpose, null));
          for (const s of anonymous) await pendingSignInStore.create(s, at(2));
          expect(await live(anonymous, at(100))).toHaveLength(cap + 2);
        });
      }
      test('OWASP ASVS 5.0 2.4.1: second-factor passkey challenges are not capped per user (a pending sign-in asks for them: whoever holds the password only must not void the user\'s ceremony)', async ({ userStore, pendingSignInStore }) => {
        const user = await newUser(userStore);
        const steps = Array.from({ length: BACKOFFICE_PASSKEY_CHALLENGES_PER_USER + 2 }, () => pending({ kind: 'passkey', purpose: 'second_factor', userId: user.id }));
        for (const [i, s] of steps.entries()) await pendingSignInStore.create(s, at(i));
        const kept = await Promise.all(steps.map((s) => pendingSignInStore.find('passkey', s.keyHash, at(100))));
        expect(kept.filter((found) => found !== null)).toHaveLength(steps.length);
      });
      test('OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1: a passkey challenge with a slot replaces the previous one of that slot (used or not); another slot\'s stays', async ({ userStore, pendingSignInStore }) => {
        const user = await newUser(userStore);
        const challenge = (slot: string) => ({ ...pending({ kind: 'passkey', purpose: 'second_factor', userId: user.id }), slot });
        const [first, used, other, last] = [challenge('a'), challenge('a'), challenge('b'), challenge('a')];
        await pendingSignInStore.create(first, at(0));
        await pendingSignInStore.create(used, at(1));
        expect(await pendingSignInStore.find('passkey', first.keyHash, at(2))).toBeNull();
        expect(await pendingSignInStore.consume('passkey', used.keyHash, at(2))).not.toBeNull();
        await pendingSignInStore.create(other, at(3));
        await pendingSignInStore.create(last, at(4));
        expect(await pendingSignInStore.consume('passkey', used.keyHash, at(5))).toBeNull();
        expect(await pendingSignInStore.find('passkey', other.keyHash, at(5))).not.toBeNull();
        expect(await pendingSignInStore.consume('passkey', last.keyHash, at(5))).not.toBeNull();
      });
      test('OWASP ASVS 4.0 2.8.4 / 5.0 6.5.1: consume with match.slot uses only the passkey challenge created with that slot: another slot\'s, an unslotted one or a step of another kind is not used (and stays live)', async ({ userStore, pendingSignInStore }) => {
        const user = await newUser(userStore);
        const challenge = (slot?: string) => ({ ...pending({ kind: 'passkey', purpose: 'second_factor', userId: user.id }), ...(slot === undefined ? {} : { slot }) });
        const [slotA, slotB] = [unique('slot-a-'), unique('slot-b-')];
        const [a, b, unslotted] = [challenge(slotA), challenge(slotB), challenge()];
        const step = { ...pending({ kind: 'two_factor', purpose: 'password', userId: user.id, securityStamp: user.securityStamp }), slot: slotA };
        for (const [i, s] of [a, b, unslotted, step].entries()) await pendingSignInStore.create(s, at(i));
        const match = (slot: string) => ({ purpose: 'second_factor', userId: user.id, slot });
        expect(await pendingSignInStore.consume('passkey', a.keyHash, at(5), match(slotB))).toBeNull();
        expect(await pendingSignInStore.consume('passkey', unslotted.keyHash, at(5), match(slotA))).toBeNull();
        expect(await pendingSignInStore.consume('two_factor', step.keyHash, at(5), { slot: slotA })).toBeNull();
        expect(await pendingSignInStore.find('passkey', a.keyHash, at(5))).not.toBeNull();
        expect(await pendingSignInStore.find('passkey', unslotted.keyHash, at(5))).not.toBeNull();
        expect(await pendingSignInStore.find('two_factor', step.keyHash, at(5))).not.toBeNull();
        expect(await pendingSignInStore.consume('passkey', a.keyHash, at(5), match(slotA))).not.toBeNull();
        expect(await pendingSignInStore.consume('passkey', b.keyHash, at(5), match(slotB))).not.toBeNull();
        expect(await pendingSignInStore.consume('passkey', unslotted.keyHash, at(5), { purpose: 'second_factor', userId: user.id })).not.toBeNull();
      });
      test('a slot is a passkey challenge\'s: a step of another kind given one replaces nothing', async ({ userStore, pendingSignInStore }) => {
        const user = await newUser(userStore);
        const step = () => ({ ...pending({ kind: 'two_factor', purpose: 'second_factor', userId: user.id, securityStamp: user.securityStamp }), slot: 'not-a-passkey' });
        const [first, second] = [step(), step()];
        await pendingSignInStore.create(first, at(0));
        await pendingSignInStore.create(second, at(1));
        expect(await pendingSignInStore.find('two_factor', first.keyHash, at(2))).not.toBeNull();
        expect(await pendingSignInStore.find('two_factor', second.keyHash, at(2))).not.toBeNull();
      });
    });

    describe('API clients', () => {
      // Wrong secrets are no longer counted (BackOfficeApiUserService.issueToken), so the deprecated recordFailedAccess is
      // asked for no race-safe count: it only places a client lockout, which the module still honours.
      test('a client lockout the store holds reads back; a rotation keeps the previous secret and clears the lock', async ({ userStore, apiClientStore }) => {
        const user = await newUser(userStore);
        const clientId = unique('boc_');
        await apiClientStore.createClient(user.id, clientId, hash('secret-1'), at(0));
        expect((await apiClientStore.recordFailedAccess(user.id, { maxFailedAccessAttempts: 1, lockoutEnd: at(HOUR) }, at(1))).lockedNow).toBe(true);
        expect((await apiClientStore.findClient(clientId))?.lockoutEnd?.getTime()).toBe(at(HOUR).getTime());
        expect(await apiClientStore.rotateSecret(user.id, hash('secret-2'), at(2 * HOUR), at(2))).toBe(clientId);
        const rotated = await apiClientStore.findClient(clientId);
        expect([rotated?.secretHash, rotated?.previousSecretHash, rotated?.lockoutEnd]).toEqual([hash('secret-2'), hash('secret-1'), null]);
        expect((await apiClientStore.listClients()).some((c) => c.client.clientId === clientId && c.name === 'Zoë Ünïcode')).toBe(true);

        await apiClientStore.createAccessToken(user.id, hash('token-1'), at(0), at(HOUR));
        await apiClientStore.createAccessToken(user.id, hash('token-2'), at(0), at(HOUR));
        expect((await apiClientStore.findAccessToken(hash('token-1')))?.userId).toBe(user.id);
        expect(await apiClientStore.revokeAccessTokens(user.id, at(3))).toBe(2);
        expect((await apiClientStore.findAccessToken(hash('token-2')))?.revokedAt?.getTime()).toBe(at(3).getTime());

        // ASVS 4.0 3.3.1: a token is written only while the secret it was issued for holds and the user is enabled.
        const issue = (name: string, secret: string, now: Date) => apiClientStore.createAccessToken(user.id, hash(name), now, at(4 * HOUR), { secretHash: hash(secret) });
        // What a written token's write answers is the expiry it stored (`expires_in` is stated from it): a Date, or
        // true / nothing for the requested expiry.
        const storedEnd = (result: boolean | Date | void, requested: Date) => (result instanceof Date ? result.getTime() : requested.getTime());
        const token3 = await issue('token-3', 'secret-2', at(4));
        const token4 = await issue('token-4', 'secret-1', at(4));
        expect([token3 !== false, token4 !== false]).toEqual([true, true]);
        // A token of the previous secret ends with it (the caller may have checked that secret while it was current).
        expect((await apiClientStore.findAccessToken(hash('token-3')))?.expiresAt.getTime()).toBe(at(4 * HOUR).getTime());
        expect((await apiClientStore.findAccessToken(hash('token-4')))?.expiresAt.getTime()).toBe(at(2 * HOUR).getTime());
        expect(storedEnd(token3, at(4 * HOUR))).toBe(at(4 * HOUR).getTime());
        expect(storedEnd(token4, at(4 * HOUR))).toBe(at(2 * HOUR).getTime());
        // A write without issuedFor stores, and answers, the requested expiry.
        const plain = await apiClientStore.createAccessToken(user.id, hash('token-11'), at(4), at(3 * HOUR));
        expect(plain).not.toBe(false);
        expect(storedEnd(plain, at(3 * HOUR))).toBe(at(3 * HOUR).getTime());
        expect(await issue('token-5', 'secret-1', at(3 * HOUR))).toBe(false);
        expect(await issue('token-6', 'secret-0', at(4))).toBe(false);
        // ASVS 4.0 2.2.1: nor while the client is locked (a lockout that began after the secret was checked).
        await apiClientStore.recordFailedAccess(user.id, { maxFailedAccessAttempts: 1, lockoutEnd: at(HOUR) }, at(4));
        expect(await issue('token-8', 'secret-2', at(5))).toBe(false);
        expect(await issue('token-9', 'secret-2', at(HOUR + 1))).not.toBe(false);
        // An admin's unlock ends the lockout before its time.
        await apiClientStore.recordFailedAccess(user.id, { maxFailedAccessAttempts: 1, lockoutEnd: at(2 * HOUR) }, at(HOUR + 2));
        if (apiClientStore.clearLockout) {
          await apiClientStore.clearLockout(user.id);
          expect((await apiClientStore.findClient(clientId))?.lockoutEnd).toBeNull();
          expect(await issue('token-10', 'secret-2', at(HOUR + 3))).not.toBe(false);
        }
        await userStore.updateProfile(user.id, { isApproved: false }, at(5));
        expect(await issue('token-7', 'secret-2', at(5))).toBe(false);
        for (const [name, written] of [['token-3', true], ['token-4', true], ['token-5', false], ['token-6', false], ['token-7', false], ['token-8', false], ['token-9', true], ['token-10', !!apiClientStore.clearLockout]] as const) {
          expect([name, (await apiClientStore.findAccessToken(hash(name))) !== null]).toEqual([name, written]);
        }
      });
    });

    describe('prune', () => {
      test('OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1 (anti-automation): passkey challenges and external login states are pruned once they expire, not a day later; live ones are kept', async ({ pendingSignInStore }) => {
        const expired = [pending({ kind: 'passkey', expiresAt: at(HOUR) }), pending({ kind: 'external_login', purpose: 'oidc', browserHash: hash('browser'), payload: 'sealed', expiresAt: at(HOUR) })];
        const live = [pending({ kind: 'passkey', expiresAt: at(2 * HOUR) }), pending({ kind: 'external_login', purpose: 'oidc', browserHash: hash('browser'), payload: 'sealed', expiresAt: at(2 * HOUR) })];
        for (const step of [...expired, ...live]) await pendingSignInStore.create(step, at(0));
        const pruned = await pendingSignInStore.prune(at(HOUR + 1));
        expect([pruned.passkeyChallenges >= 1, pruned.externalLoginStates >= 1]).toEqual([true, true]);
        for (const step of live) expect((await pendingSignInStore.find(step.kind, step.keyHash, at(HOUR + 1)))?.keyHash).toBe(step.keyHash);
      });

      test('each store deletes what can no longer matter and keeps the rest', async ({ userStore, sessionStore, pendingSignInStore, apiClientStore }) => {
        const user = await newUser(userStore);
        const old = newSession(user.id, user.securityStamp, { expiresAt: at(HOUR) });
        const live = newSession(user.id, user.securityStamp, { expiresAt: at(30 * DAY) });
        await sessionStore.create(old);
        await sessionStore.create(live);
        const step = pending({ kind: 'passkey', expiresAt: at(HOUR) });
        await pendingSignInStore.create(step, at(0));
        await apiClientStore.createClient(user.id, unique('boc_'), hash('s'), at(0));
        await apiClientStore.createAccessToken(user.id, hash(unique('t')), at(0), at(HOUR));
        if (isUserTokenStore(userStore)) await userStore.replaceToken(user.id, 'invite', hash(unique('i')), at(HOUR), at(0));

        const later = at(20 * DAY);
        expect((await sessionStore.prune(later)).sessions).toBeGreaterThanOrEqual(1);
        expect(await sessionStore.findById(user.id, old.id)).toBeNull();
        expect((await sessionStore.findById(user.id, live.id))?.id).toBe(live.id);
        expect((await pendingSignInStore.prune(later)).passkeyChallenges).toBeGreaterThanOrEqual(1);
        expect((await apiClientStore.prune(later)).accessTokens).toBeGreaterThanOrEqual(1);
        if (isPrunableUserStore(userStore)) {
          expect((await userStore.prune(at(20 * DAY))).tokens).toBe(0);
          expect((await userStore.prune(at(40 * DAY))).tokens).toBeGreaterThanOrEqual(1);
        }
      });
    });

    describe('audit trail', () => {
      defineAuditStoreContract(
        async () => {
          const made = await factory();
          await made.clearAuditTrail?.();
          return { store: made.auditStore, dispose: made.dispose };
        },
        { describe, it, expect },
      );
    });
  });
}
