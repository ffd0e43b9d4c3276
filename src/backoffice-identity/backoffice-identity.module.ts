import { type DynamicModule, Global, Inject, type MiddlewareConsumer, Module, type NestModule, type Provider } from '@nestjs/common';
import { APP_FILTER, DiscoveryModule, RouterModule } from '@nestjs/core';
import { ThrottlerStorageService } from '@nestjs/throttler';
import { backOfficeLocalStrategyProvider } from './auth/backoffice-local.strategy.js';
import { BackOfficeIdentityHttpModule } from './backoffice-identity-http.module.js';
import { BackOfficeExceptionFilter } from './http/backoffice-exception.filter.js';
import { BackOfficeHttpPlatform } from './http/http-platform.js';
import { BackOfficeFastifyRouteFallback } from './http/fastify-route-fallback.js';
import { BackOfficeExpressUtf8Label } from './http/express-utf8-label.js';
import { BackOfficeFastifyEmptyBody } from './http/fastify-empty-body.js';
import { BackOfficeModulePaths } from './http/module-paths.js';
import { BackOfficeRateLimiter } from './rate-limit/backoffice-rate-limiter.js';
import { RedisThrottlerStorage } from './rate-limit/redis-throttler-storage.js';
import { BackOfficeAuthGuard } from './sessions/backoffice-auth.guard.js';
import { BackOfficeSessionService } from './sessions/backoffice-session.service.js';
import { BackOfficeSessionCookies } from './sessions/session-cookies.js';
import { BackOfficeTossedCookieCleaner } from './sessions/tossed-cookie-cleaner.js';
import { BackOfficeSessionIssuer } from './sessions/backoffice-session-issuer.js';
import { BackOfficeBackgroundTasks } from './common/background-tasks.js';
import { BackOfficeEmailTemplates } from './email/email-templates.js';
import { BackOfficeEmailDispatcher } from './email/email-dispatcher.service.js';
import { BackOfficeInviteService } from './invites/backoffice-invite.service.js';
import { BackOfficePasswordResetService } from './auth/backoffice-password-reset.service.js';
import { BackOfficeAuditListener } from './audit/backoffice-audit.listener.js';
import { BackOfficeMaintenanceService } from './maintenance/backoffice-maintenance.service.js';
import { createSwappableProviders, usesTypeOrmStores } from './backoffice-identity.providers.js';
import { BackOfficeModuleRequestMiddleware } from './http/module-request.middleware.js';
import { BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_RATE_LIMIT_STORAGE, BACKOFFICE_SWAP_KEYS, type BackOfficeSwapKey } from './constants.js';
import { BackOfficeUiAssets } from './ui/ui-assets.service.js';
import { BackOfficeUiTrailingSlash } from './ui/ui-trailing-slash.js';
import { BackOfficeGlobalPrefixCheck } from './http/global-prefix-check.js';
import { BackOfficeTrustProxyCheck } from './http/trust-proxy-check.js';
import { BackOfficeTwoFactorChallengeService } from './two-factor/two-factor-challenge.service.js';
import { BackOfficePasskeyCeremonies } from './passkeys/passkey-ceremonies.service.js';
import { twoFactorProvidersProvider } from './two-factor/two-factor-providers.provider.js';
import { typeOrmPersistence } from './persistence/typeorm/typeorm-persistence.js';
import { NotificationPublisher } from './notifications/notification-publisher.service.js';
import { backOfficeEventEmitterProvider } from './notifications/backoffice-event-emitter.provider.js';
import { BackOfficeExternalLoginProviders } from './external-logins/external-login-providers.service.js';
import { BackOfficeExternalLoginService } from './external-logins/external-login.service.js';
import { BackOfficeExternalLoginSessions } from './external-logins/external-login-sessions.service.js';
import { BackOfficeExternalLoginStateService } from './external-logins/external-login-state.service.js';
import type { BackOfficeIdentityOptions, ResolvedBackOfficeIdentityOptions } from './options/backoffice-identity-options.interface.js';
import type { BackOfficeIdentityModuleAsyncOptions, BackOfficeIdentityModuleOptions, BackOfficeIdentitySwaps } from './backoffice-identity-module-options.interface.js';
import { BackOfficeIdentityOptionsError, checkForRootAsyncKeys, resolveBackOfficeIdentityOptions } from './options/resolve-options.js';
import { BackOfficePermissionRegistry } from './permissions/backoffice-permissions.js';
import { BackOfficePermissionsStartupCheck } from './permissions/permissions-startup-check.js';
import { BackOfficeTakeOverListenerGuard } from './notifications/take-over-listener-guard.js';
import { BackOfficeAccessDenials } from './permissions/backoffice-access-denials.service.js';
import { BackOfficeGroupService } from './groups/backoffice-group.service.js';
import { BackOfficeApiUserService } from './api-users/backoffice-api-user.service.js';
import { BackOfficeUserLifecycleService } from './users/backoffice-user-lifecycle.service.js';
import { BackOfficeUserManagerDependencies } from './users/backoffice-user-manager-dependencies.js';
import { BackOfficeAccountService } from './account/backoffice-account.service.js';

/** The module's own services, shared with the host app. */
const SHARED_SERVICES = [
  BackOfficeHttpPlatform,
  BackOfficeModulePaths,
  BackOfficeUserManagerDependencies,
  NotificationPublisher,
  BackOfficeSessionService,
  BackOfficeSessionCookies,
  BackOfficeTossedCookieCleaner,
  BackOfficeAuthGuard,
  BackOfficeRateLimiter,
  BackOfficeSessionIssuer,
  BackOfficeBackgroundTasks,
  BackOfficeEmailTemplates,
  BackOfficeEmailDispatcher,
  BackOfficeInviteService,
  BackOfficePasswordResetService,
  BackOfficeTwoFactorChallengeService,
  BackOfficeUiAssets,
  BackOfficePermissionRegistry,
  BackOfficeAccessDenials,
  BackOfficeGroupService,
  BackOfficeApiUserService,
  BackOfficeUserLifecycleService,
  BackOfficePasskeyCeremonies,
  BackOfficeExternalLoginProviders,
  BackOfficeExternalLoginStateService,
  BackOfficeExternalLoginSessions,
  BackOfficeExternalLoginService,
  BackOfficeAccountService,
];

/** Splits module options into the swaps (`BACKOFFICE_SWAP_KEYS`) and the plain options. */
function splitSwaps<T extends object>(options: T): { swaps: BackOfficeIdentitySwaps; rest: Omit<T, BackOfficeSwapKey> } {
  const swaps: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options ?? {})) {
    if ((BACKOFFICE_SWAP_KEYS as readonly string[]).includes(key)) swaps[key] = value;
    else rest[key] = value;
  }
  return { swaps, rest } as never;
}

/**
 * The back-office identity module: user manager, sign-in manager, user store, sessions, REST routes and
 * notifications. Global: its tokens can be injected anywhere in the app.
 */
@Global()
@Module({})
export class BackOfficeIdentityModule implements NestModule {
  constructor(@Inject(BackOfficeFastifyRouteFallback) private readonly routeFallback: BackOfficeFastifyRouteFallback) {}

  /** Registers the module with static options. */
  static forRoot(options: BackOfficeIdentityModuleOptions = {}): DynamicModule {
    const { swaps, rest } = splitSwaps(options);
    const resolved = resolveBackOfficeIdentityOptions(rest);
    return this.create([{ provide: BACKOFFICE_IDENTITY_OPTIONS, useValue: resolved }], swaps, [], resolved.routePrefix);
  }

  /** Registers the module with options from a factory (e.g. from `ConfigService`). Swaps stay static. */
  static forRootAsync(options: BackOfficeIdentityModuleAsyncOptions): DynamicModule {
    if (typeof options === 'object' && options !== null) checkForRootAsyncKeys(options as unknown as Record<string, unknown>);
    if (typeof options?.useFactory !== 'function') {
      throw new Error('BackOfficeIdentityModule.forRootAsync: option "useFactory" must be a function');
    }
    const { swaps } = splitSwaps(options);
    // Routes are mounted before the factory runs, so the prefix is static: the factory may repeat it, not change it.
    const routePrefix = resolveBackOfficeIdentityOptions({ routePrefix: options.routePrefix }).routePrefix;
    const optionsProvider: Provider = {
      provide: BACKOFFICE_IDENTITY_OPTIONS,
      inject: options.inject ?? [],
      useFactory: async (...args: unknown[]) => {
        const produced: unknown = await options.useFactory(...args);
        // A factory with a block body and no `return` gives undefined: refused, not read as "every default".
        if (typeof produced !== 'object' || produced === null || Array.isArray(produced)) {
          throw new BackOfficeIdentityOptionsError(
            'useFactory',
            'must return (or resolve to) the options object; return {} for the defaults',
            produced,
          );
        }
        const { routePrefix: producedPrefix } = produced as BackOfficeIdentityOptions;
        if (producedPrefix !== undefined && resolveBackOfficeIdentityOptions({ routePrefix: producedPrefix }).routePrefix !== routePrefix) {
          throw new BackOfficeIdentityOptionsError(
            'routePrefix',
            `is mounted at "/${routePrefix}" before useFactory runs; pass it beside useFactory (forRootAsync({ routePrefix, useFactory })) instead of returning it`,
            producedPrefix,
          );
        }
        return resolveBackOfficeIdentityOptions({ ...(produced as BackOfficeIdentityOptions), routePrefix });
      },
    };
    return this.create([optionsProvider], swaps, options.imports ?? [], routePrefix);
  }

  private static create(
    optionsProviders: Provider[],
    swaps: BackOfficeIdentitySwaps,
    imports: NonNullable<DynamicModule['imports']>,
    routePrefix: string,
  ): DynamicModule {
    const rateLimitStorage: Provider = {
      provide: BACKOFFICE_RATE_LIMIT_STORAGE,
      inject: [BACKOFFICE_IDENTITY_OPTIONS],
      useFactory: (resolved: ResolvedBackOfficeIdentityOptions) =>
        resolved.rateLimits.redisUrl ? new RedisThrottlerStorage(resolved.rateLimits.redisUrl, resolved.rateLimits.redisKeyPrefix) : new ThrottlerStorageService(),
    };
    // Everything here is exported (the module is global), so host apps and their guards can inject it.
    const shared: Provider[] = [
      ...optionsProviders,
      ...createSwappableProviders(swaps),
      ...SHARED_SERVICES,
      twoFactorProvidersProvider,
      backOfficeLocalStrategyProvider,
      rateLimitStorage,
    ];
    // The host's data source, start-up check and database timeouts only while a TypeORM store is in use.
    const persistence = usesTypeOrmStores(swaps) ? typeOrmPersistence() : [];
    return {
      module: BackOfficeIdentityModule,
      global: true,
      imports: [
        ...imports,
        DiscoveryModule,
        BackOfficeIdentityHttpModule,
        RouterModule.register([{ path: routePrefix, module: BackOfficeIdentityHttpModule }]),
      ],
      providers: [
        ...shared,
        ...persistence,
        backOfficeEventEmitterProvider,
        BackOfficePermissionsStartupCheck,
        BackOfficeTakeOverListenerGuard,
        BackOfficeUiTrailingSlash,
        BackOfficeGlobalPrefixCheck,
        BackOfficeTrustProxyCheck,
        BackOfficeFastifyRouteFallback,
        BackOfficeExpressUtf8Label,
        BackOfficeFastifyEmptyBody,
        BackOfficeAuditListener,
        BackOfficeMaintenanceService,
        { provide: APP_FILTER, useClass: BackOfficeExceptionFilter },
      ],
      exports: shared.map((provider) => (typeof provider === 'function' ? provider : provider.provide)),
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    // One middleware that checks the path itself: the security headers and the request context under the module's
    // prefix (the headers also cover the prefix's 404s); every other request is kept from a context an earlier
    // request on its connection entered (see BackOfficeRequestContextStore.isolate). One path pattern, not the
    // controllers: Nest adds a matcher per route for those (some 100), and every request of the host, to any path,
    // was tested against each of them (measured: /health on Fastify 12% faster). One middleware, not two: each costs
    // every host request a step. `{*path}`, path-to-regexp 8's spelling of "every path": Nest writes a bare `*` under
    // a host's global prefix as `/api/*` and warns about that route, which the host never wrote.
    consumer.apply(BackOfficeModuleRequestMiddleware).forRoutes('{*path}');
    // Nest configures middleware before it registers routes: the route fallback learns the module's paths.
    this.routeFallback.watchRoutes();
  }
}
