import { toSameOriginPath } from '../../src/backoffice-identity/common/same-origin-path.js';
import { BackOfficeIdentityOptionsError, resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/index.js';
import { landsOn, SAME_ORIGIN_PATH_VECTORS } from '../support/same-origin-path-vectors.js';

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
