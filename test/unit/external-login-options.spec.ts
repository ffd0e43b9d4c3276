import { BackOfficeIdentityOptionsError, resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/options/resolve-options.js';
import type { BackOfficeIdentityOptions } from '../../src/backoffice-identity/options/backoffice-identity-options.interface.js';

const valid = { name: 'oidc', displayName: 'Single sign-on', issuer: 'https://login.example.com/realms/acme', clientId: 'backoffice', clientSecret: 's3cret' };

function messageOf(externalLogins: unknown, extra: Record<string, unknown> = {}): string {
  try {
    resolveBackOfficeIdentityOptions({ externalLogins, ...extra } as BackOfficeIdentityOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(BackOfficeIdentityOptionsError);
    return (error as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(externalLogins)} to be refused`);
}

describe('externalLogins options (contract section 6)', () => {
  it('fills in the defaults and the callback URL from publicUrl and routePrefix', () => {
    const [provider] = resolveBackOfficeIdentityOptions({ publicUrl: 'https://cms.example.com/', routePrefix: 'admin', externalLogins: [valid] }).externalLogins;
    expect(provider).toMatchObject({
      ...valid,
      scopes: ['openid', 'email', 'profile'],
      denyLocalLogin: false,
      autoRedirect: false,
      trustProviderTwoFactor: false,
      callbackTimeoutSeconds: 15,
      autoLink: { enabled: false, defaultGroups: [], groupMapping: {}, groupsManagedByProvider: false, missingGroupsClaim: 'refuse', requireVerifiedEmail: true },
      callbackUrl: 'https://cms.example.com/admin/auth/external/oidc/callback',
      postLogoutRedirectUrl: 'https://cms.example.com/admin/',
    });
  });

  it('callbackTimeoutSeconds: one budget for the provider calls of a callback, an integer from 1 to 30 (default 15)', () => {
    expect(resolveBackOfficeIdentityOptions({ externalLogins: [{ ...valid, callbackTimeoutSeconds: 5 }] }).externalLogins[0].callbackTimeoutSeconds).toBe(5);
    for (const bad of [0, -1, 2.5, 31, Number.NaN, Number.POSITIVE_INFINITY, '15', true]) {
      expect(messageOf([{ ...valid, callbackTimeoutSeconds: bad }])).toMatch(/option "externalLogins\[0\]\.callbackTimeoutSeconds" must be an integer from 1 to 30/);
    }
  });

  it('always asks for openid, keeps given scopes, and turns group mappings into arrays', () => {
    const [provider] = resolveBackOfficeIdentityOptions({
      externalLogins: [{ ...valid, scopes: ['email', 'groups'], autoLink: { enabled: true, groupsClaim: 'groups', groupMapping: { admins: 'admin', staff: ['editor', 'writer'] } } }],
    }).externalLogins;
    expect(provider.scopes).toEqual(['openid', 'email', 'groups']);
    expect(provider.autoLink.groupMapping).toEqual({ admins: ['admin'], staff: ['editor', 'writer'] });
  });

  it('a provider with denyLocalLogin turns password sign-in off for everyone', () => {
    expect(resolveBackOfficeIdentityOptions({ externalLogins: [valid] }).denyLocalLogin).toBe(false);
    expect(resolveBackOfficeIdentityOptions({ externalLogins: [{ ...valid, denyLocalLogin: true }] }).denyLocalLogin).toBe(true);
  });

  it('allows plain http only for loopback issuers (local development)', () => {
    expect(resolveBackOfficeIdentityOptions({ externalLogins: [{ ...valid, issuer: 'http://127.0.0.1:8080' }] }).externalLogins[0].issuer).toBe('http://127.0.0.1:8080');
    expect(messageOf([{ ...valid, issuer: 'http://login.example.com' }])).toMatch(/option "externalLogins\[0\]\.issuer" must be an https:\/\/ URL/);
  });

  it.each([
    ['not an array', { oidc: valid }, /option "externalLogins" must be an array/],
    ['an item that is not an object', ['oidc'], /option "externalLogins\[0\]" must be an object/],
    ['a missing name', [{ ...valid, name: undefined }], /option "externalLogins\[0\]\.name"/],
    ['a name with a slash', [{ ...valid, name: 'a/b' }], /option "externalLogins\[0\]\.name"/],
    ['two providers with one name', [valid, valid], /option "externalLogins\[1\]\.name" must be unique/],
    ['a missing issuer', [{ ...valid, issuer: undefined }], /option "externalLogins\[0\]\.issuer" must be a URL/],
    ['an issuer that is no URL', [{ ...valid, issuer: 'login.example.com' }], /option "externalLogins\[0\]\.issuer"/],
    ['a missing clientId', [{ ...valid, clientId: '' }], /option "externalLogins\[0\]\.clientId"/],
    ['a missing displayName', [{ ...valid, displayName: undefined }], /option "externalLogins\[0\]\.displayName"/],
    ['an unknown key', [{ ...valid, clientSecrt: 'x' }], /option "externalLogins\[0\]\.clientSecrt" is not a known option/],
    ['a scope with a space', [{ ...valid, scopes: ['openid email'] }], /option "externalLogins\[0\]\.scopes"/],
    ['an unknown missingGroupsClaim', [{ ...valid, autoLink: { missingGroupsClaim: 'keep' } }], /option "externalLogins\[0\]\.autoLink\.missingGroupsClaim" must be "refuse" or "noGroups"/],
    ['autoLink not an object', [{ ...valid, autoLink: true }], /option "externalLogins\[0\]\.autoLink" must be an object/],
    ['an unknown autoLink key', [{ ...valid, autoLink: { enable: true } }], /option "externalLogins\[0\]\.autoLink\.enable" is not a known option/],
    ['defaultGroups not strings', [{ ...valid, autoLink: { defaultGroups: [1] } }], /option "externalLogins\[0\]\.autoLink\.defaultGroups"/],
    ['a bad groupMapping', [{ ...valid, autoLink: { groupMapping: { a: 1 } } }], /option "externalLogins\[0\]\.autoLink\.groupMapping"/],
    [
      'OWASP ASVS 4.0 4.1.3: groupsManagedByProvider with a groupsClaim and no groupMapping (every sign-in would strip the groups)',
      [{ ...valid, autoLink: { groupsClaim: 'groups', groupsManagedByProvider: true } }],
      /option "externalLogins\[0\]\.autoLink\.groupMapping" must map the provider's groups to back-office groups .*groupMapping: \{ 'cms-editors': 'editor' \}/,
    ],
    [
      'OWASP ASVS 4.0 4.1.3: groupsManagedByProvider with a groupsClaim and an empty groupMapping',
      [{ ...valid, autoLink: { groupsClaim: 'groups', groupMapping: {}, groupsManagedByProvider: true } }],
      /option "externalLogins\[0\]\.autoLink\.groupMapping" must map/,
    ],
    [
      'groupsManagedByProvider without a groupsClaim (every sign-in would reset the groups to defaultGroups)',
      [{ ...valid, autoLink: { groupMapping: { editors: 'editor' }, groupsManagedByProvider: true } }],
      /option "externalLogins\[0\]\.autoLink\.groupsClaim" must name the provider's groups claim when groupsManagedByProvider is on .*defaultGroups.*groupsClaim: 'groups'/,
    ],
    ['requireVerifiedEmail not a boolean', [{ ...valid, autoLink: { requireVerifiedEmail: 'no' } }], /option "externalLogins\[0\]\.autoLink\.requireVerifiedEmail" must be true or false/],
    ['onAutoLinking not a function', [{ ...valid, onAutoLinking: 'x' }], /option "externalLogins\[0\]\.onAutoLinking" must be a function/],
    ['a bad postLogoutRedirectUrl', [{ ...valid, postLogoutRedirectUrl: 'nope' }], /option "externalLogins\[0\]\.postLogoutRedirectUrl"/],
  ])('refuses %s, naming the option', (_name, externalLogins, message) => {
    expect(messageOf(externalLogins)).toMatch(message);
  });
});
