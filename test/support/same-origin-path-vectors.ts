/**
 * The cases every same-origin path check is tested against: the server's `toSameOriginPath`
 * (src/backoffice-identity/common/same-origin-path.ts) and each of its callers (external login returnUrl, the
 * sign-in pages' returnUrl, a logout listener's signOutRedirectUrl, the path options), and the copy of the rule in
 * the browser (ui/assets/pages.js). `path` is the final string (as the URL parser writes it) that may be sent or
 * used; `null` means refused.
 */
export interface SameOriginPathVector {
  input: string;
  path: string | null;
  why: string;
}

export const SAME_ORIGIN_PATH_VECTORS: readonly SameOriginPathVector[] = [
  // Taken.
  { input: '/backoffice/account', path: '/backoffice/account', why: 'a plain path' },
  { input: '/', path: '/', why: 'the root' },
  { input: '/backoffice/account?tab=logins#x', path: '/backoffice/account?tab=logins#x', why: 'query and fragment' },
  { input: '/backoffice/\u00fcber?q=\u2713', path: '/backoffice/%C3%BCber?q=%E2%9C%93', why: 'unicode, percent-encoded' },
  { input: '/\uff0f/evil.example', path: '/%EF%BC%8F/evil.example', why: 'a fullwidth solidus is no slash in a path' },
  { input: '/\u3000/x', path: '/%E3%80%80/x', why: 'an ideographic space is not dropped' },
  { input: '/%2F%2Fevil.example', path: '/%2F%2Fevil.example', why: 'encoded slashes stay encoded (a path segment)' },
  { input: '/%5C%5Cevil.example', path: '/%5C%5Cevil.example', why: 'encoded backslashes stay encoded' },
  { input: '/%5cevil.example', path: '/%5cevil.example', why: 'an encoded backslash, lower case' },
  { input: '/%09/evil.example', path: '/%09/evil.example', why: 'an encoded tab stays encoded (not dropped)' },
  { input: '/@evil.example', path: '/@evil.example', why: '"@" in a path is no userinfo' },
  { input: '/a/../b', path: '/b', why: 'dot segments resolved, still a path' },
  { input: '/x?next=//evil.example', path: '/x?next=//evil.example', why: '"//" in the query' },
  { input: '/x#//evil.example', path: '/x#//evil.example', why: '"//" in the fragment' },
  { input: '/"><script>alert(1)</script>', path: '/%22%3E%3Cscript%3Ealert(1)%3C/script%3E', why: 'markup, percent-encoded' },
  // Refused.
  { input: '//evil.example', path: null, why: 'protocol-relative' },
  { input: '/\\evil.example', path: null, why: 'backslash read as slash' },
  { input: '\\\\evil.example', path: null, why: 'two backslashes' },
  { input: '/\\/evil.example', path: null, why: 'slash, backslash, slash' },
  { input: '/.//evil.example', path: null, why: 'the parser resolves it into //evil.example' },
  { input: '/%2e%2e//evil.example', path: null, why: 'encoded dot-dot resolved into //evil.example' },
  { input: '/%2e//evil.example', path: null, why: 'encoded dot resolved into //evil.example' },
  { input: '/a/..//evil.example', path: null, why: 'dot-dot resolved into //evil.example' },
  { input: '/backoffice/../..//evil.example/x?y#z', path: null, why: 'dot-dot above the root' },
  { input: '/\t/evil.example', path: null, why: 'a tab is dropped: //evil.example' },
  { input: '/\n/evil.example', path: null, why: 'a newline is dropped: //evil.example' },
  { input: '/\r\n/evil.example', path: null, why: 'CR LF dropped: //evil.example' },
  { input: '/back\toffice', path: null, why: 'a tab inside' },
  { input: '/\u0000x', path: null, why: 'NUL' },
  { input: '/\u007fx', path: null, why: 'DEL' },
  { input: '/\u0085x', path: null, why: 'a C1 control (NEL)' },
  { input: '/\u2028x', path: null, why: 'U+2028 line separator' },
  { input: '/ /x', path: null, why: 'a space' },
  { input: ' /backoffice/', path: null, why: 'a leading space' },
  { input: `/${'a'.repeat(3000)}`, path: null, why: 'longer than 2048 characters' },
  { input: `/${'\u4e00'.repeat(1000)}`, path: null, why: 'longer than 2048 characters once percent-encoded (1001 in, 9001 out)' },
  { input: 'javascript:alert(1)', path: null, why: 'javascript: scheme' },
  { input: 'JavaScript:alert(1)//', path: null, why: 'javascript: scheme, mixed case' },
  { input: 'data:text/html,<script>alert(1)</script>', path: null, why: 'data: scheme' },
  { input: 'https://evil.example/', path: null, why: 'an absolute URL' },
  { input: 'http:/evil.example', path: null, why: 'a scheme with one slash' },
  { input: 'backoffice/', path: null, why: 'a relative path' },
  { input: '@evil.example', path: null, why: 'no leading slash' },
];

/** The origin of the page a browser is on when it follows a path (for {@link landsOn}). */
export const PAGE_URL = 'https://app.example/backoffice/account';

/**
 * Where a browser on {@link PAGE_URL} lands with `url` (`window.location.assign(url)`), or null for null (nowhere:
 * the page's own default). Two strings that land on the same URL are the same answer to a browser.
 */
export function landsOn(url: string | null | undefined): string | null {
  return url === null || url === undefined ? null : new URL(url, PAGE_URL).href;
}
