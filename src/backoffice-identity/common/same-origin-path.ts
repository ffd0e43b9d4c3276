/** The longest same-origin path (`returnUrl`, a listener's sign-out path, a path option) taken, in characters. */
export const MAX_SAME_ORIGIN_PATH_LENGTH = 2048;

/**
 * Characters a same-origin path may not hold as given: a backslash (browsers read it as "/"), tabs and newlines
 * (the URL parser drops them, so "/\t/evil" is "//evil"), other C0 and C1 controls, space, DEL and U+2028/9.
 */
const REFUSED_CHARACTERS = /[\\\u0000-\u0020\u007f-\u009f\u2028\u2029]/;

const BASE = 'http://same-origin-path.invalid';

/**
 * `value` as the same-origin path a browser lands on, or `undefined` when it is none. The one rule for every
 * path the module hands to a browser: an external login's `returnUrl` (sent in `Location`), the sign-in pages'
 * `returnUrl` (used by the page's script), a logout listener's `signOutRedirectUrl` and the path options.
 *
 * The decision is made on the FINAL string, as the URL parser writes it: dot segments resolved (`/.//evil`,
 * `/%2e%2e//evil` and `/a/..//evil` become `//evil`, a host), characters outside ASCII percent-encoded (a
 * `Location` header must be Latin-1). Callers send the returned string, never `value`. Refused: no leading "/",
 * a leading "//" or "/\" (before or after parsing), the characters above, more than
 * {@link MAX_SAME_ORIGIN_PATH_LENGTH} characters (as given or as written: one character outside ASCII is up to 12
 * once percent-encoded, and a page puts the path in a query again, where the URL outgrew what a server reads),
 * anything the parser reads as another origin.
 *
 * `ui/assets/pages.js` applies the same rules in the browser; both are tested against
 * `test/support/same-origin-path-vectors.ts`.
 */
export function toSameOriginPath(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > MAX_SAME_ORIGIN_PATH_LENGTH || !isRootedPath(value) || REFUSED_CHARACTERS.test(value)) {
    return undefined;
  }
  let parsed: URL;
  try {
    parsed = new URL(value, BASE);
  } catch {
    return undefined;
  }
  if (parsed.origin !== BASE) return undefined;
  const path = `${parsed.pathname}${parsed.search}${parsed.hash}`;
  return isRootedPath(path) && path.length <= MAX_SAME_ORIGIN_PATH_LENGTH ? path : undefined;
}

/** `/...`, but not `//host` or `/\host`. */
function isRootedPath(value: string): boolean {
  return value.startsWith('/') && !value.startsWith('//') && !value.startsWith('/\\');
}
