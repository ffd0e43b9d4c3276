import { Inject, Injectable, Optional } from '@nestjs/common';
import type { BackOfficeApiClientStore } from '../api-users/api-client-store.interface.js';
import type { BackOfficeClock } from '../common/clock.js';
import type { BackOfficeErrorDescriber } from '../common/error-describer.js';
import {
  BACKOFFICE_API_CLIENT_STORE,
  BACKOFFICE_CLOCK,
  BACKOFFICE_ERROR_DESCRIBER,
  BACKOFFICE_IDENTITY_OPTIONS,
  BACKOFFICE_PASSWORD_CHECKER,
  BACKOFFICE_PASSWORD_HASHER,
  BACKOFFICE_TWO_FACTOR_PROVIDERS,
  BACKOFFICE_USER_STORE,
} from '../constants.js';
import type { TwoFactorProvider } from '../two-factor/two-factor-provider.interface.js';
import { NotificationPublisher } from '../notifications/notification-publisher.service.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import type { BackOfficePasswordChecker } from './passwords/password-checker.js';
import type { BackOfficePasswordHasher } from './passwords/password-hasher.js';
import type { BackOfficeUserStore } from './stores/user-store.interface.js';

/**
 * Everything {@link BackOfficeUserManager} needs, in one injectable object, so a subclass needs no
 * constructor of its own (unlike Umbraco's 13-argument one). Each member resolves through its DI token.
 */
@Injectable()
export class BackOfficeUserManagerDependencies {
  constructor(
    @Inject(BACKOFFICE_USER_STORE) readonly store: BackOfficeUserStore,
    @Inject(BACKOFFICE_PASSWORD_HASHER) readonly passwordHasher: BackOfficePasswordHasher,
    @Inject(BACKOFFICE_PASSWORD_CHECKER) readonly passwordChecker: BackOfficePasswordChecker,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) readonly options: ResolvedBackOfficeIdentityOptions,
    @Inject(BACKOFFICE_ERROR_DESCRIBER) readonly errorDescriber: BackOfficeErrorDescriber,
    @Inject(BACKOFFICE_CLOCK) readonly clock: BackOfficeClock,
    @Inject(NotificationPublisher) readonly notifications: NotificationPublisher,
    @Inject(BACKOFFICE_TWO_FACTOR_PROVIDERS) readonly twoFactorProviders: TwoFactorProvider[],
    /** API users' bearer tokens: a disable revokes them ({@link BackOfficeUserManager.setApproved}). */
    @Optional() @Inject(BACKOFFICE_API_CLIENT_STORE) readonly apiClientStore: BackOfficeApiClientStore | null = null,
  ) {}
}
