import { inspect } from 'node:util';

/**
 * A back-office user as the managers see it. Hashes and stamps stay on the server.
 *
 * Secrets ({@link BACKOFFICE_USER_SECRET_FIELDS}: the password hash and the security stamp) are read as usual
 * (`user.passwordHash`), but a user logged or serialized by the host (`JSON.stringify(user)`, `console.log(user)`,
 * Nest's `Logger`, pino, `util.inspect`) shows them as `"[redacted]"` (OWASP ASVS 5.0 16.2.5). The one place that
 * marks users so is {@link redactSecretsWhenLogged}, applied where users enter the module: by the built-in stores to
 * every user they read or create, and by `BackOfficeUserManager` to what any store, a host's own included, hands
 * back to `createUser`, `findById`, `findByName`, `findByEmail` and `findByLogin`; the session service applies it to
 * the signed-in user too. The mark is two own non-enumerable methods (`toJSON`, `util.inspect.custom`) that read the
 * object as it is when logged, so later changes stay redacted; keys, spreading, `structuredClone` and equality
 * see the plain fields. A copy (`{ ...user }`) carries the secrets but not the mark: pass it through
 * {@link redactSecretsWhenLogged} before it may be logged.
 */
export interface BackOfficeUser {
  id: string;
  username: string;
  normalizedUsername: string;
  email: string;
  normalizedEmail: string;
  name: string;
  passwordHash: string | null;
  securityStamp: string;
  accessFailedCount: number;
  lockoutEnabled: boolean;
  lockoutEnd: Date | null;
  isApproved: boolean;
  twoFactorEnabled: boolean;
  phoneNumber: string | null;
  phoneNumberConfirmed: boolean;
  invitedAt: Date | null;
  lastLoginAt: Date | null;
  lastPasswordChangeAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  /** Group aliases. */
  groups: string[];
  /**
   * The stored permissions of the user's groups (union), as the built-in store reads them with the user. Members
   * of `admin` hold every permission whatever is stored; a custom store may leave this out (no permissions).
   */
  permissions?: string[];
  /**
   * `person` (default when absent) or `api`: an API user (machine) signs in only with client credentials, never
   * with a password, and is not counted as a person (last-admin rule, user counts, `GET /users`).
   */
  kind?: BackOfficeUserKind;
  /** True when one of the user's groups has `requireTwoFactor` (read with the user by the built-in store). */
  twoFactorRequiredByGroup?: boolean;
  /** End of the grace period for enrolling in 2FA (`twoFactor.enforcementGraceHours`), once it started. */
  twoFactorSetupDeadline?: Date | null;
  /** Why an admin disabled the user. */
  disabledReason?: string | null;
  /** When a disable ends by itself. */
  disabledUntil?: Date | null;
  /**
   * When a password checker that is the authority for the passwords of the users it vouches for (LDAP: see
   * `BackOfficePasswordChecker.marksDirectoryManaged`) first accepted this user's password; null or absent: never.
   * Such a user gets no password-reset link by email (forgot-password, an admin's forced reset), and a link issued
   * before is refused, so a user removed from the directory cannot set a local password through their mailbox.
   */
  directoryManagedAt?: Date | null;
  /**
   * When the password was removed by `BackOfficeUserManager.removePassword` (an admin's forced reset), while
   * no password has been set since; null: no forced reset pending. Not set when a password checker retires the local
   * hash (`retiresLocalPasswords`). Absent (a store that does not keep it): the manager falls back to "no password,
   * `lastPasswordChangeAt` set".
   */
  passwordResetForcedAt?: Date | null;
}

/**
 * Re-checks a caller's right to act on a user, given the user as stored when the write takes the admin group's
 * lock (throw to refuse; nothing is written then). Passed as `authorize` to the manager's and lifecycle service's
 * writes on other users, so a check made on a copy read before a concurrent promotion cannot let the write through.
 */
export type BackOfficeWriteAuthorizer = (current: BackOfficeUser) => void;

/** Options of a write on another user that can be re-checked against the user as stored ({@link BackOfficeWriteAuthorizer}). */
export interface BackOfficeAuthorizedWriteOptions {
  /** Called with the user as stored, under the admin group's lock, before anything is written. */
  authorize?: BackOfficeWriteAuthorizer;
}

/** What kind of user: a person, or a machine using client credentials. */
export type BackOfficeUserKind = 'person' | 'api';

/** States as clients see them, derived as Umbraco does. */
export type BackOfficeUserState = 'active' | 'inactive' | 'disabled' | 'invited' | 'lockedOut';

/** What clients get: never hashes, stamps or tokens. */
export interface BackOfficeUserDto {
  id: string;
  username: string;
  email: string;
  name: string;
  state: BackOfficeUserState;
  groups: string[];
  twoFactorEnabled: boolean;
  lastLoginAt: string | null;
  createdAt: string;
  /** Only for disabled users: the admin's reason and when the disable ends (null: until enabled). */
  disabledReason?: string | null;
  disabledUntil?: string | null;
}

/**
 * A pending invitee: invited, and the invite not accepted in any way (no password set, never signed in), whatever
 * the user's lockout or disable. The one definition: the `invited` state ({@link deriveUserState}, which shows a
 * lockout or disable first), the invite service, the sign-in refusal, the external-login invitee link and the
 * stores' filters ({@link PENDING_INVITEE_SQL}) all use it.
 */
export function isPendingInvitee(user: Pick<BackOfficeUser, 'invitedAt' | 'passwordHash' | 'lastLoginAt'>): boolean {
  return user.invitedAt !== null && user.passwordHash === null && user.lastLoginAt === null;
}

/** {@link isPendingInvitee} in SQL, for the user table under alias `u` (column names). */
export const PENDING_INVITEE_SQL = (u: string): string => `(${u}.invited_at IS NOT NULL AND ${u}.password_hash IS NULL AND ${u}.last_login_at IS NULL)`;

/** Derives the client-visible state of a user at `now`. */
export function deriveUserState(user: BackOfficeUser, now: Date): BackOfficeUserState {
  if (!user.isApproved && !(user.disabledUntil && user.disabledUntil.getTime() <= now.getTime())) return 'disabled';
  if (user.lockoutEnd && user.lockoutEnd.getTime() > now.getTime()) return 'lockedOut';
  if (isPendingInvitee(user)) return 'invited';
  if (user.lastLoginAt === null) return 'inactive';
  return 'active';
}

/** The aliases in code point order, as a new array (the stores' lists are usually sorted already: then no sort). */
function sortedAliases(groups: readonly string[]): string[] {
  const copy = groups.slice();
  for (let i = 1; i < copy.length; i++) if (copy[i - 1] > copy[i]) return copy.sort();
  return copy;
}

/**
 * Maps a user to its public shape. Built by assignment, not with a conditional spread of the disable fields (it
 * runs on every `GET /auth/me`; the spread cost more than the rest of the mapping): the same keys in the same order.
 */
export function toBackOfficeUserDto(user: BackOfficeUser, now: Date): BackOfficeUserDto {
  const dto: BackOfficeUserDto = {
    id: user.id,
    username: user.username,
    email: user.email,
    name: user.name,
    state: deriveUserState(user, now),
    groups: sortedAliases(user.groups),
    twoFactorEnabled: user.twoFactorEnabled,
    lastLoginAt: user.lastLoginAt ? user.lastLoginAt.toISOString() : null,
    createdAt: user.createdAt.toISOString(),
  };
  if (!user.isApproved) {
    dto.disabledReason = user.disabledReason ?? null;
    dto.disabledUntil = user.disabledUntil?.toISOString() ?? null;
  }
  return dto;
}

/** The fields of a {@link BackOfficeUser} that {@link redactSecretsWhenLogged} hides from logs and JSON. */
export const BACKOFFICE_USER_SECRET_FIELDS = ['passwordHash', 'securityStamp'] as const satisfies ReadonlyArray<keyof BackOfficeUser>;

/** What a redacted secret reads as in logs and JSON. */
const REDACTED = '[redacted]';

/** A plain copy of the user, secrets (when set) replaced by {@link REDACTED}: what logs and JSON get. */
function redactedView(user: BackOfficeUser): Record<string, unknown> {
  const view: Record<string, unknown> = { ...user };
  for (const field of BACKOFFICE_USER_SECRET_FIELDS) if (view[field] !== null && view[field] !== undefined) view[field] = REDACTED;
  return view;
}

/** What logs and JSON get of a marked user (`util.inspect` formats it in turn with the caller's depth and colours). */
function logSafeView(this: BackOfficeUser): Record<string, unknown> {
  return redactedView(this);
}

/** The mark: non-enumerable, so keys, spreading, `structuredClone` and equality do not see it. */
const LOG_SAFE_METHODS: PropertyDescriptorMap = {
  toJSON: { value: logSafeView, enumerable: false, configurable: true, writable: true },
  [inspect.custom]: { value: logSafeView, enumerable: false, configurable: true, writable: true },
};

/**
 * Marks `user` so that `JSON.stringify` and `util.inspect` (hence `console.log` and Nest's `Logger`) show its
 * {@link BACKOFFICE_USER_SECRET_FIELDS} as `"[redacted]"`; property access is unchanged. Returns the same object
 * (idempotent; a copy only for an object that cannot be extended, e.g. frozen); null stays null. The mark is own
 * properties, not a shared prototype: a plain object must stay one (`Object.getPrototypeOf(user) === Object.prototype`,
 * lodash `isPlainObject`, `node:assert` `deepStrictEqual` against a literal).
 */
export function redactSecretsWhenLogged<T extends BackOfficeUser | null | undefined>(user: T): T {
  if (!user || (user as unknown as Record<PropertyKey, unknown>)[inspect.custom] === logSafeView) return user;
  const target = Object.isExtensible(user) ? user : { ...user };
  return Object.defineProperties(target, LOG_SAFE_METHODS) as T;
}
