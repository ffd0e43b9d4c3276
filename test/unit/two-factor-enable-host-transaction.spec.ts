import { InMemoryBackOfficeUserStore } from '../../src/backoffice-identity/persistence/in-memory/in-memory-user-store.js';
import { SystemClock } from '../../src/backoffice-identity/common/clock.js';
import { TotpTwoFactorProvider } from '../../src/backoffice-identity/two-factor/totp-two-factor.provider.js';
import type { BackOfficeUserStore } from '../../src/backoffice-identity/users/stores/user-store.interface.js';
import { managerOn } from '../support/minimal-user-store.js';

/**
 * A host store whose transaction hands its work another object bound to the transaction (as a store built on a
 * transaction's own connection is), not one derived from the store: the built-in TOTP provider cannot join it
 * (`inTransactionOf` answers null for it) though it answers itself for the store.
 */
class HostTransactionStore extends InMemoryBackOfficeUserStore {
  override transaction<T>(work: (store: InMemoryBackOfficeUserStore) => Promise<T>): Promise<T> {
    const bound = new Proxy({} as InMemoryBackOfficeUserStore, {
      get: (_, key) => {
        const value = (this as unknown as Record<PropertyKey, unknown>)[key];
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(this) : value;
      },
      has: (_, key) => key in this,
    });
    return work(bound);
  }
}

/**
 * `setTwoFactorEnabled(user, true, { whileSetUp })` (POST /auth/2fa/enable): a setup that replaced the confirmed key
 * between the enable's code check and its flag write must refuse the enable (OWASP ASVS 4.0 1.11.3). A provider that
 * cannot join the store's transaction is asked before it ("a read just before the write"), also the built-in TOTP
 * provider on a host store whose transaction hands over another object.
 */
describe('setTwoFactorEnabled whileSetUp on a host store whose transaction the provider cannot join', () => {
  it('refuses the enable when a new setup replaced the confirmed key (2FA stays off)', async () => {
    const store = new HostTransactionStore();
    const manager = managerOn(store as unknown as BackOfficeUserStore);
    const clock = new SystemClock();
    const totp = new TotpTwoFactorProvider(store, 'k'.repeat(32), clock, 'Test');
    expect(totp.inTransactionOf(store)).toBe(totp);
    const created = await manager.createUser({ email: 'host-tx@example.com', name: 'Host Tx', password: 'correct horse battery staple' });
    const user = created.value!;
    const first = await totp.generateSetup(user);
    expect(await totp.verify(user, totp.codeAt(first.secret, clock.now()), { enrolling: true })).toBe(true);
    // Another tab's setup lands before the flag is written: 2FA is still off, so it replaces the confirmed key.
    await totp.generateSetup(user);
    expect(await totp.isSetUp(user)).toBe(false);
    const enabled = await manager.setTwoFactorEnabled(user, true, { whileSetUp: totp });
    expect(enabled.errors.map((e) => e.code), 'turned 2FA on over a key the app does not have').toEqual(['invalid_code']);
    expect((await store.findById(user.id))!.twoFactorEnabled).toBe(false);
  });
});
