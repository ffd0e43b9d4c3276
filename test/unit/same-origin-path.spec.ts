import { runInNewContext } from 'node:vm';
import { MAX_SAME_ORIGIN_PATH_LENGTH, toSameOriginPath } from '../../src/backoffice-identity/common/same-origin-path.js';
import { BackOfficeIdentityOptionsError, resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/index.js';
import { UI_ASSET_FILES } from '../../src/backoffice-identity/ui/ui-assets.generated.js';
import { landsOn, PAGE_URL, SAME_ORIGIN_PATH_VECTORS } from '../support/same-origin-path-vectors.js';

// The one same-origin path rule and its callers that do not need an app (the HTTP callers: external-logins,
// ui-pages and logout-and-host-guard specs), against the shared vectors.
describe('same-origin paths (returnUrl, signOutRedirectUrl, path options)', () => {
  it.each(SAME_ORIGIN_PATH_VECTORS)('toSameOriginPath($input): $why', ({ input, path }) => {
    expect(toSameOriginPath(input)).toBe(path ?? undefined);
    // The final string is final: checked again, it stays as it is.
    if (path !== null) expect(toSameOriginPath(path)).toBe(path);
  });

  it('refuses what is no string or empty', () => {
    for (const value of [undefined, null, 42, ['/a'], { toString: () => '/a' }, '']) expect(toSameOriginPath(value)).toBeUndefined();
  });

  it.each(SAME_ORIGIN_PATH_VECTORS)('ui.defaultReturnUrl $input ($why): taken as the final path, or refused at start-up', ({ input, path }) => {
    const resolve = () => resolveBackOfficeIdentityOptions({ ui: { defaultReturnUrl: input } } as never).ui.defaultReturnUrl;
    if (path === null) {
      expect(resolve).toThrow(BackOfficeIdentityOptionsError);
      expect(resolve).toThrow(/"ui\.defaultReturnUrl"/);
    } else {
      expect(landsOn(resolve())).toBe(landsOn(path));
    }
  });
});

/**
 * Runs the shipped pages.js (no page function: `page: 'none'`) in a bare context with `window.location` on
 * {@link PAGE_URL}, and returns its `BackOfficePages.returnUrl()` for a page config `returnUrl` of `value`.
 */
function pagesJsReturnUrl(value: unknown): string {
  const window: Record<string, unknown> = {
    location: new URL(PAGE_URL),
    BackOfficeSession: { t: (key: string) => key, el: () => ({}) },
    addEventListener: () => undefined,
  };
  // As the server renders it (ui-pages.ts), with the server's path limit.
  const config = JSON.stringify({ page: 'none', returnUrl: value, defaultReturnUrl: '/backoffice/default', maxPathLength: MAX_SAME_ORIGIN_PATH_LENGTH });
  const document = {
    getElementById: (id: string) => (id === 'bo-config' ? { textContent: config } : null),
    querySelectorAll: () => [],
  };
  runInNewContext(UI_ASSET_FILES['pages.js'].body, { window, document, URL, URLSearchParams });
  return (window.BackOfficePages as { returnUrl(): string }).returnUrl();
}

describe('the copy of the rule in the browser (ui/assets/pages.js)', () => {
  it.each(SAME_ORIGIN_PATH_VECTORS)('returnUrl $input ($why): the page goes to the same place as the server rule says, else to the default', ({ input, path }) => {
    expect(landsOn(pagesJsReturnUrl(input))).toBe(landsOn(path ?? '/backoffice/default'));
  });

  it('keeps a path of MAX_SAME_ORIGIN_PATH_LENGTH characters and refuses a longer one, as the server rule does', () => {
    const longest = `/${'a'.repeat(MAX_SAME_ORIGIN_PATH_LENGTH - 1)}`;
    expect(toSameOriginPath(longest)).toBe(longest);
    expect(pagesJsReturnUrl(longest)).toBe(longest);
    expect(toSameOriginPath(`${longest}a`)).toBeUndefined();
    expect(pagesJsReturnUrl(`${longest}a`)).toBe('/backoffice/default');
  });

  it('goes to the default for no returnUrl or one that is no string', () => {
    for (const value of [null, '', 42, ['/a']]) expect(pagesJsReturnUrl(value)).toBe('/backoffice/default');
  });
});
