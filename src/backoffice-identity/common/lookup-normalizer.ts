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

/** Any C0/C1 control character or a lone surrogate. */
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
