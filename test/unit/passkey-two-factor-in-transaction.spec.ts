import { PasskeyTwoFactorProvider } from '../../src/backoffice-identity/passkeys/passkey-two-factor.provider.js';
import type { BackOfficePasskeyCeremonies } from '../../src/backoffice-identity/passkeys/passkey-ceremonies.service.js';
import type { BackOfficeUser } from '../../src/backoffice-identity/users/backoffice-user.js';
import type { BackOfficeUserStore, UserPasskeyStore } from '../../src/backoffice-identity/users/stores/user-store.interface.js';

/** A passkey store answering `hasPasskeys` with `has`, recording that it was asked. */
function passkeyStore(has: boolean, asked: string[], name: string): UserPasskeyStore {
  return {
    hasPasskeys: async () => (asked.push(name), has),
    listPasskeys: async () => [],
    findPasskeyByCredentialId: async () => null,
    addPasskey: async () => undefined,
    renamePasskey: async () => false,
    removePasskey: async () => false,
    recordPasskeyUse: async () => undefined,
  } as unknown as UserPasskeyStore;
}

/**
 * `TwoFactorProvider.inTransactionOf`: the provider it returns reads (isSetUp) through the store it is given, the
 * transaction's, not on a second connection while the transaction is open (stale, or a hang on a one-connection pool).
 */
describe('PasskeyTwoFactorProvider.inTransactionOf', () => {
  it('reads through the transaction-bound store it is given', async () => {
    const asked: string[] = [];
    const provider = new PasskeyTwoFactorProvider(passkeyStore(true, asked, 'pool'), {} as BackOfficePasskeyCeremonies);
    const joined = provider.inTransactionOf(passkeyStore(false, asked, 'transaction') as unknown as BackOfficeUserStore);
    expect(await joined!.isSetUp({ id: 'u1' } as BackOfficeUser)).toBe(false);
    expect(asked, 'isSetUp read on the pool, not in the transaction').toEqual(['transaction']);
  });
});
