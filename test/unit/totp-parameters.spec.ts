import { DEFAULT_TOTP, TotpTwoFactorProvider, type TotpParameters, type UserAuthenticatorKeyStore } from '../../src/backoffice-identity/index.js';

const KEY = 'test-encryption-key-0123456789abcdef';
const store: UserAuthenticatorKeyStore = {
  getAuthenticatorKey: async () => null,
  setAuthenticatorKey: async () => undefined,
  useAuthenticatorStep: async () => false,
  removeAuthenticatorKey: async () => undefined,
};
const clock = { now: () => new Date() };
const provider = (parameters: Partial<TotpParameters>) => new TotpTwoFactorProvider(store, KEY, clock, 'Acme', { ...DEFAULT_TOTP, ...parameters });

describe('TOTP parameters are bounded', () => {
  it('RFC 6238 5.2 / ASVS 5.0 6.5.5: the drift window is at most one step each side; a wider one fails at construction, naming it', () => {
    expect(() => provider({ window: 0 })).not.toThrow();
    expect(() => provider({ window: 1 })).not.toThrow();
    for (const window of [2, 10, -1, 0.5, Number.NaN, Infinity]) expect(() => provider({ window }), String(window)).toThrow(/window/);
  });

  it('ASVS 5.0 6.5.5: a code lives at most 30 s (period), and has 6 to 10 digits; other values fail at construction, naming them', () => {
    expect(() => provider({ period: 30, digits: 8 })).not.toThrow();
    for (const period of [60, 0, -30, 29.5]) expect(() => provider({ period }), String(period)).toThrow(/period/);
    for (const digits of [4, 5, 11, 6.5]) expect(() => provider({ digits }), String(digits)).toThrow(/digits/);
    expect(() => provider({ algorithm: 'MD5' as TotpParameters['algorithm'] })).toThrow(/algorithm/);
  });
});
