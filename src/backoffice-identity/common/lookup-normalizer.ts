/** Normalises usernames and emails for lookup and uniqueness: NFKC, trimmed, lower case. */
export function normalizeLookupKey(value: string): string {
  return value.normalize('NFKC').trim().toLowerCase();
}

/**
 * Whether two stored forms (NFC, trimmed) differ beyond the letter case of ASCII letters: stricter than
 * {@link normalizeLookupKey}, which takes a look-alike (full-width letters) for the same key although a mail server
 * or a directory would not.
 */
export function differsBeyondAsciiCase(a: string, b: string): boolean {
  const asciiLowerCase = (text: string) => text.replace(/[A-Z]/g, (c) => c.toLowerCase());
  return asciiLowerCase(a) !== asciiLowerCase(b);
}

/**
 * Whether writing `username` (as stored: NFC, trimmed) gives a user marked directory-managed (`directoryManagedAt`)
 * another username beyond ASCII letter case ({@link differsBeyondAsciiCase}): the username is the key a password
 * checker keyed by it (LDAP `uid={username}`, a mail filter) signs them in with, so the new one's directory password
 * would sign in to this user (OWASP ASVS 5.0 7.5.1, 4.0 V2.5). The import's refusal, the lifecycle's refusal of an
 * email move and the manager's email-change write decide with this one rule.
 */
export function renamesDirectoryManagedUser(user: { directoryManagedAt?: Date | null; username: string }, username: string): boolean {
  return user.directoryManagedAt != null && differsBeyondAsciiCase(username, user.username);
}

/** Any C0/C1 control character or a lone surrogate. */
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
