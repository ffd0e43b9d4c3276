/** A back-office user as the managers see it. Hashes and stamps stay on the server. */
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
}

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
}

/** Derives the client-visible state of a user at `now`. */
export function deriveUserState(user: BackOfficeUser, now: Date): BackOfficeUserState {
  if (!user.isApproved) return 'disabled';
  if (user.lockoutEnd && user.lockoutEnd.getTime() > now.getTime()) return 'lockedOut';
  if (user.lastLoginAt === null && user.invitedAt !== null && user.passwordHash === null) return 'invited';
  if (user.lastLoginAt === null) return 'inactive';
  return 'active';
}

/** Maps a user to its public shape. */
export function toBackOfficeUserDto(user: BackOfficeUser, now: Date): BackOfficeUserDto {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    name: user.name,
    state: deriveUserState(user, now),
    groups: [...user.groups].sort(),
    twoFactorEnabled: user.twoFactorEnabled,
    lastLoginAt: user.lastLoginAt ? user.lastLoginAt.toISOString() : null,
    createdAt: user.createdAt.toISOString(),
  };
}
