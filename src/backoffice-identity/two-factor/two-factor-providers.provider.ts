import type { Provider } from '@nestjs/common';
import type { BackOfficeClock } from '../common/clock.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_TWO_FACTOR_PROVIDERS, BACKOFFICE_USER_STORE } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { isUserAuthenticatorKeyStore, isUserPasskeyStore, type BackOfficeUserStore } from '../users/stores/user-store.interface.js';
import { BackOfficePasskeyCeremonies } from '../passkeys/passkey-ceremonies.service.js';
import { PasskeyTwoFactorProvider } from '../passkeys/passkey-two-factor.provider.js';
import { TotpTwoFactorProvider } from './totp-two-factor.provider.js';
import type { TwoFactorProvider } from './two-factor-provider.interface.js';
import { RECOVERY_PROVIDER } from './recovery-codes.js';

/**
 * The registered providers: built-in TOTP (with an encryption key and a capable store), passkeys (when
 * configured and the store keeps them), then the configured ones.
 */
export const twoFactorProvidersProvider: Provider = {
  provide: BACKOFFICE_TWO_FACTOR_PROVIDERS,
  inject: [BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_USER_STORE, BACKOFFICE_CLOCK, BackOfficePasskeyCeremonies],
  useFactory: (options: ResolvedBackOfficeIdentityOptions, store: BackOfficeUserStore, clock: BackOfficeClock, ceremonies: BackOfficePasskeyCeremonies): TwoFactorProvider[] => {
    const providers: TwoFactorProvider[] = [];
    const { encryptionKey, issuer } = options.twoFactor;
    if (encryptionKey && isUserAuthenticatorKeyStore(store)) providers.push(new TotpTwoFactorProvider(store, encryptionKey, clock, issuer));
    if (ceremonies.enabled && isUserPasskeyStore(store)) providers.push(new PasskeyTwoFactorProvider(store, ceremonies));
    for (const provider of options.twoFactor.providers) {
      if (provider.name === RECOVERY_PROVIDER || providers.some((p) => p.name === provider.name)) {
        throw new Error(`BackOfficeIdentityModule: option "twoFactor.providers" has a provider named "${provider.name}" twice or reserved`);
      }
      providers.push(provider);
    }
    return providers;
  },
};
