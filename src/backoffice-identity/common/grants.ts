/**
 * Whether `next` holds something `current` does not: a list of groups given to a user, of permissions given to a
 * group, of members moved into a group. What it adds is a lasting grant of access, the kind of change that needs a
 * recent sign-in (OWASP ASVS 5.0 7.5.3 / 4.0 3.7.1); one that only takes away does not.
 */
export function addsAny(next: readonly string[], current: readonly string[]): boolean {
  return next.some((item) => !current.includes(item));
}
