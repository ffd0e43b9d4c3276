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

describe('a TOTP code reported as reused (OWASP ASVS 4.0 2.8.5) only when its step was used before', () => {
  type Key = { encryptedSecret: string; confirmed: boolean; lastUsedStep: number | null };
  /** One user's key in memory; `onUse` runs before a step is recorded (another request changing the key meanwhile). */
  function keyStore(onUse: (keys: Map<string, Key>) => void = () => undefined): UserAuthenticatorKeyStore {
    const keys = new Map<string, Key>();
    return {
      getAuthenticatorKey: async (userId) => (keys.get(userId) ? { ...keys.get(userId)! } : null),
      setAuthenticatorKey: async (userId, _provider, encryptedSecret) => void keys.set(userId, { encryptedSecret, confirmed: false, lastUsedStep: null }),
      useAuthenticatorStep: async (userId, _provider, step, confirm, _now, checkedSecret) => {
        onUse(keys);
        const key = keys.get(userId);
        if (!key || key.confirmed === confirm || (checkedSecret && key.encryptedSecret !== checkedSecret)) return false;
        if (key.lastUsedStep !== null && key.lastUsedStep >= step) return false;
        Object.assign(key, { lastUsedStep: step, confirmed: key.confirmed || confirm });
        return true;
      },
      removeAuthenticatorKey: async (userId) => void keys.delete(userId),
    };
  }
  const user = { id: 'u1', email: 'jane@example.com' } as Parameters<TotpTwoFactorProvider['verify']>[0];

  async function enrolled(store: UserAuthenticatorKeyStore) {
    const totp = new TotpTwoFactorProvider(store, KEY, clock, 'Acme');
    const { secret } = await totp.generateSetup(user);
    const code = totp.codeAt(secret, clock.now());
    expect(await totp.verify(user, code, { enrolling: true })).toBe(true);
    return { totp, secret };
  }

  it('a code whose step was used is a reuse; a wrong code is not', async () => {
    const { totp, secret } = await enrolled(keyStore());
    const next = totp.codeAt(secret, new Date(clock.now().getTime() + 30_000));
    expect(await totp.verify(user, next)).toBe(true);
    const again = {};
    expect(await totp.verify(user, next, { outcome: again })).toBe(false);
    expect(again).toEqual({ reused: true });
  });

  it('a right code refused because the key was removed or replaced meanwhile is no reuse (no false alarm)', async () => {
    let interfere: ((keys: Map<string, Key>) => void) | null = null;
    const { totp, secret } = await enrolled(keyStore((keys) => interfere?.(keys)));
    const next = totp.codeAt(secret, new Date(clock.now().getTime() + 30_000));
    interfere = (keys) => keys.clear(); // 2FA reset by an admin at that moment
    const removed = {};
    expect(await totp.verify(user, next, { outcome: removed })).toBe(false);
    expect(removed).toEqual({});
  });
});
