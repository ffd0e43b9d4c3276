import { InMemoryBackOfficeStores } from '../../src/backoffice-identity/testing/index.js';
import { failingContractTests } from '../support/store-contract-failures.js';
import { InMemoryBackOfficeUserStore } from '../../src/backoffice-identity/index.js';

type Options = Parameters<InMemoryBackOfficeUserStore['setPasswordHash']>[4];

/** A store that keeps `passwordResetForcedAt` (reads it back null) but drops `forcedReset`, as a wrapper forwarding the older options would. */
class IgnoresForcedReset extends InMemoryBackOfficeUserStore {
  override setPasswordHash(userId: string, passwordHash: string | null, securityStamp: string, now: Date, options: Options = {}) {
    const { forcedReset: _dropped, ...rest } = options;
    return super.setPasswordHash(userId, passwordHash, securityStamp, now, rest);
  }
}

/** A store that sets the mark but never clears it when a new password is written. */
class NeverClearsTheMark extends InMemoryBackOfficeUserStore {
  override async setPasswordHash(userId: string, passwordHash: string | null, securityStamp: string, now: Date, options: Options = {}) {
    const before = this.state.users.get(userId)?.passwordResetForcedAt ?? null;
    const written = await super.setPasswordHash(userId, passwordHash, securityStamp, now, options);
    const stored = this.state.users.get(userId);
    if (stored && before !== null && stored.passwordResetForcedAt === null) stored.passwordResetForcedAt = before;
    return written;
  }
}

const withUserStore = (Store: typeof InMemoryBackOfficeUserStore) => () => {
  const stores = InMemoryBackOfficeStores.create();
  const { state } = stores.userStore as InMemoryBackOfficeUserStore;
  return { ...stores, userStore: new Store(state) };
};

describe('The store contract and the forced-reset mark (OWASP ASVS 5.0 6.4.x / 4.0 2.5.x)', () => {
  it('passes the in-memory stores', async () => {
    expect(await failingContractTests(withUserStore(InMemoryBackOfficeUserStore))).toEqual([]);
  });

  it('fails a user store that reads passwordResetForcedAt back null after a forced reset (it dropped forcedReset): a passkey would sign in while the reset is pending', async () => {
    expect((await failingContractTests(withUserStore(IgnoresForcedReset))).filter((title) => /forced reset/iu.test(title))).toHaveLength(1);
  });

  it('fails a user store that keeps the mark after a new password is written (the user would look reset-pending again once a checker retires the hash)', async () => {
    expect((await failingContractTests(withUserStore(NeverClearsTheMark))).filter((title) => /forced reset/iu.test(title))).toHaveLength(1);
  });
});
