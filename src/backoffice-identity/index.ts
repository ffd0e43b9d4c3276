// Public API of backoffice-identity. Everything a host app may use is exported here, and nothing else.
export * from './constants.js';
export { BackOfficeIdentityModule } from './backoffice-identity.module.js';
export type {
  BackOfficeIdentityModuleAsyncOptions,
  BackOfficeIdentityModuleOptions,
  BackOfficeIdentitySwaps,
  BackOfficeProviderSpec,
} from './backoffice-identity-module-options.interface.js';
export type {
  BackOfficeDatabaseOptions,
  BackOfficeEmailOptions,
  BackOfficeNotificationOptions,
  BackOfficeIdentityOptions,
  BackOfficeLockoutOptions,
  BackOfficePasskeyOptions,
  BackOfficePasswordOptions,
  BackOfficeRateLimitOptions,
  BackOfficeSessionOptions,
  BackOfficeTokenOptions,
  BackOfficeTwoFactorOptions,
  BackOfficeUiBranding,
  BackOfficeUiOptions,
  BackOfficeApiUserOptions,
  ResolvedBackOfficeIdentityOptions,
  ResolvedBackOfficeUiOptions,
} from './options/backoffice-identity-options.interface.js';
export { BackOfficeIdentityOptionsError, resolveBackOfficeIdentityOptions } from './options/resolve-options.js';
export { backOfficeIdentityMigrations } from './persistence/typeorm/migrations/index.js';
export {
  backOfficeIdentityDataSourceFactory,
  BackOfficeMigrationLockTimeoutError,
  DEFAULT_MIGRATION_LOCK_WAIT_MS,
  runMigrationsUnderLock,
  type RunMigrationsUnderLockOptions,
} from './persistence/typeorm/migrations/backoffice-data-source-factory.js';
export { backOfficeIdentityEntities } from './persistence/typeorm/entities.js';

export { IdentityResult, type IdentityError } from './common/identity-result.js';
export { BackOfficeErrorDescriber } from './common/error-describer.js';
export { SystemClock, type BackOfficeClock } from './common/clock.js';
export { DefaultIpResolver, type BackOfficeIpResolver } from './common/ip-resolver.js';
export { BackOfficeRequestContextStore, type BackOfficeRequestContext } from './common/request-context.js';

export { BackOfficeUserManager, LOCKED_UNTIL_UNLOCKED, type BackOfficePasswordCheckOutcome, type CreateBackOfficeUserInput } from './users/backoffice-user-manager.js';
export { BackOfficeUserManagerDependencies } from './users/backoffice-user-manager-dependencies.js';
export {
  BACKOFFICE_USER_SECRET_FIELDS,
  deriveUserState,
  redactSecretsWhenLogged,
  toBackOfficeUserDto,
  type BackOfficeAuthorizedWriteOptions,
  type BackOfficeUser,
  type BackOfficeUserDto,
  type BackOfficeUserState,
  type BackOfficeUserKind,
  type BackOfficeWriteAuthorizer,
} from './users/backoffice-user.js';
export * from './users/stores/user-store.interface.js';
export { TypeOrmBackOfficeUserStore } from './persistence/typeorm/typeorm-user-store.js';
export type { BackOfficeSession, BackOfficeSessionChanges, BackOfficeSessionStore } from './sessions/session-store.interface.js';
export type { BackOfficeListPage } from './common/list-page.js';
export { MAX_ANNOUNCED_SECURITY_STAMPS } from './sessions/session-store.interface.js';
export type {
  BackOfficePendingSignIn,
  BackOfficePendingSignInKind,
  BackOfficePendingSignInMatch,
  BackOfficePendingSignInStore,
} from './sign-in/pending-sign-in-store.interface.js';
export { BACKOFFICE_EXTERNAL_LOGIN_STATES_PER_USER, BACKOFFICE_PASSKEY_CHALLENGES_PER_USER } from './sign-in/pending-sign-in-store.interface.js';
export { BackOfficeDuplicateGroupError, type BackOfficeGroupFields, type BackOfficeGroupRecord, type BackOfficeGroupStore } from './groups/group-store.interface.js';
export type {
  BackOfficeAccessTokenRecord,
  BackOfficeApiClient,
  BackOfficeApiClientListing,
  BackOfficeApiClientStore,
} from './api-users/api-client-store.interface.js';
export type { BackOfficeExternalLoginSessionRecord, BackOfficeExternalLoginSessionStore } from './external-logins/external-login-session-store.interface.js';
export { BACKOFFICE_STORE_KEYS, type BackOfficeStores } from './persistence/backoffice-stores.interface.js';
export { TypeOrmBackOfficeSessionStore } from './persistence/typeorm/typeorm-session-store.js';
export { TypeOrmBackOfficePendingSignInStore } from './persistence/typeorm/typeorm-pending-sign-in-store.js';
export { TypeOrmBackOfficeGroupStore } from './persistence/typeorm/typeorm-group-store.js';
export { TypeOrmBackOfficeApiClientStore } from './persistence/typeorm/typeorm-api-client-store.js';
export { TypeOrmBackOfficeExternalLoginSessionStore } from './persistence/typeorm/typeorm-external-login-session-store.js';
export { InMemoryBackOfficeStores, type InMemoryBackOfficeStoreSet } from './persistence/in-memory/in-memory-backoffice-stores.js';
export { InMemoryBackOfficeState } from './persistence/in-memory/in-memory-state.js';
export { InMemoryBackOfficeUserStore } from './persistence/in-memory/in-memory-user-store.js';
export { InMemoryBackOfficeSessionStore } from './persistence/in-memory/in-memory-session-store.js';
export { InMemoryBackOfficePendingSignInStore } from './persistence/in-memory/in-memory-pending-sign-in-store.js';
export { InMemoryBackOfficeGroupStore } from './persistence/in-memory/in-memory-group-store.js';
export { InMemoryBackOfficeApiClientStore } from './persistence/in-memory/in-memory-api-client-store.js';
export { InMemoryBackOfficeExternalLoginSessionStore } from './persistence/in-memory/in-memory-external-login-session-store.js';
export { BackOfficeUserEntity } from './persistence/typeorm/entities/backoffice-user.entity.js';
export { BackOfficeGroupEntity } from './persistence/typeorm/entities/backoffice-group.entity.js';
export { BackOfficeUserTokenEntity } from './persistence/typeorm/entities/backoffice-user-token.entity.js';
export { BackOfficeLoginAttemptEntity } from './persistence/typeorm/entities/backoffice-login-attempt.entity.js';
export { BackOfficeSessionEntity } from './persistence/typeorm/entities/backoffice-session.entity.js';
export { BackOfficeAuditEntryEntity } from './persistence/typeorm/entities/backoffice-audit-entry.entity.js';
export * from './audit/backoffice-audit-store.interface.js';
export { encodeAuditCursor, decodeAuditCursor, compareAuditPositions } from './audit/audit-cursor.js';
export { EXACT_COUNT_CAP } from './persistence/typeorm/capped-count.js';
export { TypeOrmBackOfficeAuditStore } from './persistence/typeorm/typeorm-audit-store.js';
export { InMemoryBackOfficeAuditStore } from './persistence/in-memory/in-memory-audit-store.js';
export { defineAuditStoreContract, type ContractTestApi, type ContractMatchers, type AuditStoreFactory } from './testing/audit-store.contract.js';
export {
  BcryptPasswordHasher,
  BCRYPT_SHA256_PREFIX,
  type BackOfficePasswordHasher,
  type PasswordVerificationResult,
} from './users/passwords/password-hasher.js';
export {
  FallbackPasswordChecker,
  type BackOfficeExternalUserProfile,
  type BackOfficePasswordChecker,
  type BackOfficePasswordCheckerResult,
  type BackOfficeUnknownUserCheckResult,
} from './users/passwords/password-checker.js';
export {
  IMPORTED_HASH_PREFIX,
  IMPORTED_PASSWORD_FORMATS,
  MAX_IMPORTED_PBKDF2_ITERATIONS,
  toStoredImportedHash,
  verifyImportedHash,
  type ImportedHashError,
  type ImportedPasswordFormat,
} from './users/passwords/foreign-password-hashes.js';
export { BackOfficeUserImporter, type ResolvedImportOptions } from './users/import/backoffice-user-importer.js';
export {
  importUpdateTarget,
  isUserImportStore,
  MAX_IMPORT_BATCH,
  summarizeImport,
  type ImportConflictMode,
  type ImportedUserRow,
  type ImportRowOutcome,
  type ImportUserOutcome,
  type ImportUserRecord,
  type ImportUserResult,
  type ImportUsersOptions,
  type ImportUsersSummary,
  type ImportWrittenAuthorizer,
  type UserImportStore,
} from './users/import/user-import.js';
export { LdapPasswordChecker, type LdapPasswordCheckerOptions } from './ldap/ldap-password-checker.js';
export { escapeLdapDnValue, escapeLdapFilterValue } from './ldap/ldap-escape.js';
export { CommonPasswordValidator, PolicyPasswordValidator } from './users/passwords/password-validators.js';
export { DefaultUserValidator } from './users/user-validators.js';
export type { BackOfficeUserCandidate, PasswordValidator, UserValidator } from './users/validators.interface.js';

export {
  BackOfficeSignInManager,
  type SignInContext,
  type SignInResult,
  type SignInStatus,
} from './sign-in/backoffice-sign-in-manager.js';
export { BackOfficeAccountService, type BackOfficeAccountSession } from './account/backoffice-account.service.js';
export { BackOfficeNotSupportedError } from './users/not-supported.error.js';
export { BackOfficeMigrationRequiredError } from './common/migration-required.error.js';

export * from './notifications/notifications.js';
export { NotificationPublisher, type BackOfficeAnyListener } from './notifications/notification-publisher.service.js';
export { NodemailerEmailSender, BackOfficeEmailDeliveryError, BackOfficeEmailTakeOverError, BackOfficeEmailTimeoutError, type BackOfficeEmailSender } from './email/email-sender.js';
export * from './decorators.js';

export { BackOfficeHttpError, type BackOfficeErrorBody } from './http/backoffice-http-error.js';
export { BACKOFFICE_ERROR_CODES, backOfficeErrorCode, renderBackOfficeErrorCodeTable, type BackOfficeErrorCode, type BackOfficeErrorCodeInfo } from './http/error-codes.js';
export { BackOfficeExceptionFilter } from './http/backoffice-exception.filter.js';
export { BackOfficeAuthorize, CurrentBackOfficeUser, RequiresRecentSignIn } from './sessions/backoffice-authorize.decorator.js';
export {
  ADMIN_GROUP_ALIAS,
  BUILT_IN_PERMISSIONS,
  BackOfficePermissionRegistry,
  type BackOfficePermissionDefinition,
} from './permissions/backoffice-permissions.js';
export { BackOfficeGroupService, type BackOfficeGroupView } from './groups/backoffice-group.service.js';
export {
  BackOfficeApiUserService,
  type BackOfficeAccessTokenResponse,
  type BackOfficeApiUserView,
} from './api-users/backoffice-api-user.service.js';
export {
  BackOfficeAuthGuard,
  SESSION_PEEK_HEADER,
  type BackOfficeAuthenticatedRequest,
  type BackOfficeAuthorizeOptions,
  type RequiresRecentSignInOptions,
  type BackOfficeRequestAuthentication,
} from './sessions/backoffice-auth.guard.js';
export { isDatabaseUnavailableError } from './common/database-errors.js';
export {
  BackOfficeSessionService,
  type BackOfficeAuthentication,
  type BackOfficeSessionDeadlines,
  type BackOfficeSessionDto,
} from './sessions/backoffice-session.service.js';
export { BackOfficeSessionCookies, XSRF_COOKIE, XSRF_HEADER } from './sessions/session-cookies.js';
export { RedisThrottlerStorage } from './rate-limit/redis-throttler-storage.js';
export { setupBackOfficeOpenApi, type BackOfficeOpenApiOptions } from './openapi/setup-openapi.js';
export { BackOfficeSessionIssuer } from './sessions/backoffice-session-issuer.js';
export { BackOfficeBackgroundTasks } from './common/background-tasks.js';
export { BackOfficeEmailTemplates } from './email/email-templates.js';
export { BackOfficeEmailDispatcher, type EmailDispatchResult } from './email/email-dispatcher.service.js';
export { BackOfficeInviteService, type BackOfficeInviteInput, type BackOfficeInviteOutcome } from './invites/backoffice-invite.service.js';
export { BackOfficePasswordResetService } from './auth/backoffice-password-reset.service.js';
export { BackOfficeAuditListener } from './audit/backoffice-audit.listener.js';
export type { TwoFactorProvider, TwoFactorSetup, TwoFactorVerifyOptions, TwoFactorVerifyOutcome } from './two-factor/two-factor-provider.interface.js';
export { TwoFactorAlreadySetUpError } from './two-factor/two-factor-provider.interface.js';
export { TotpTwoFactorProvider, DEFAULT_TOTP, type TotpParameters } from './two-factor/totp-two-factor.provider.js';
export { SecretCipher } from './two-factor/secret-cipher.js';
export { RECOVERY_PROVIDER } from './two-factor/recovery-codes.js';
export { BackOfficeTwoFactorChallengeService, type PendingTwoFactorSignIn } from './two-factor/two-factor-challenge.service.js';
export { BackOfficeMaintenanceService, type PruneResult } from './maintenance/backoffice-maintenance.service.js';
export { BACKOFFICE_UI_MESSAGES, type BackOfficeUiMessages } from './ui/ui-messages.js';
export { BackOfficeUiAssets } from './ui/ui-assets.service.js';
export {
  BackOfficePasskeyCeremonies,
  passkeyUserHandle,
  type PasskeyAssertionResult,
} from './passkeys/passkey-ceremonies.service.js';
export { PasskeyTwoFactorProvider, PASSKEY_PROVIDER } from './passkeys/passkey-two-factor.provider.js';

export type {
  BackOfficeAutoLinkCandidate,
  BackOfficeExternalLoginChanges,
  BackOfficeExternalLoginClaims,
  BackOfficeExternalLoginProviderOptions,
  ExternalSignInAutoLinkOptions,
  ResolvedExternalLoginProvider,
} from './external-logins/external-login-options.js';
export {
  BackOfficeExternalLoginProviders,
  type BackOfficeExternalLoginProvider,
  type BackOfficeExternalLoginProviderDto,
} from './external-logins/external-login-providers.service.js';
export { BackOfficeExternalLoginService, ExternalLoginError, type ExternalLoginErrorCode } from './external-logins/external-login.service.js';
export { BackOfficeExternalLoginSessions, type SealedExternalLogin } from './external-logins/external-login-sessions.service.js';
export { BackOfficeExternalLoginStateService, type PendingExternalLogin } from './external-logins/external-login-state.service.js';
