/**
 * Whether `next` holds something `current` does not: a list of groups given to a user, of permissions given to a
 * group, of members moved into a group. What it adds is a lasting grant of access, the kind of change that needs a
 * recent sign-in (OWASP ASVS 5.0 7.5.3 / 4.0 3.7.1); one that only takes away does not.
 */
export function addsAny(next: readonly string[], current: readonly string[]): boolean {
  return next.some((item) => !current.includes(item));
}

/** What a user's groups say of two-factor: whether one of them requires it (`BackOfficeUser.twoFactorRequiredByGroup`). */
export interface TwoFactorByGroup {
  readonly twoFactorRequiredByGroup?: boolean;
}

/**
 * Whether a change of a user's groups weakens the two-factor rule for them (OWASP ASVS 4.0 2.2.x): given the user as
 * stored before the change, undefined when none of its groups requires two-factor (nothing to weaken, no need to read
 * the user again); else a test of the user as written, true when it is then in no group requiring two-factor (a
 * password alone signs in), the kind of change that needs a recent sign-in as {@link addsAny}'s do. `PUT
 * /users/:id/groups` and the import with `onConflict: 'update'` both ask it.
 */
export function twoFactorWeakening(before: TwoFactorByGroup): ((after: TwoFactorByGroup) => boolean) | undefined {
  if (before.twoFactorRequiredByGroup !== true) return undefined;
  return (after) => after.twoFactorRequiredByGroup !== true;
}
