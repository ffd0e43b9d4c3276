import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import * as oidc from 'openid-client';
import { BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_USER_MANAGER } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import type { ResolvedExternalLoginProvider } from './external-login-options.js';
import { fetchFromProvider } from './provider-fetch.js';

/** First retry after a failed discovery; doubled on each failure up to {@link MAX_RETRY_MS}. */
const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 5 * 60_000;
/** Seconds an HTTP call to the provider may take (discovery, token, userinfo); answers are read up to 1 MiB (provider-fetch.ts). */
const PROVIDER_TIMEOUT_SECONDS = 10;

/** A configured provider and, once discovery succeeded, its openid-client configuration. */
export interface BackOfficeExternalLoginProvider {
  options: ResolvedExternalLoginProvider;
  /** Null while the provider is unavailable (discovery failed or not done yet). */
  configuration: oidc.Configuration | null;
}

/** What `GET /auth/external/providers` lists. */
export interface BackOfficeExternalLoginProviderDto {
  name: string;
  displayName: string;
  autoRedirect: boolean;
  /** False while discovery has not succeeded (its challenge answers 503 `provider_unavailable`). */
  available: boolean;
}

/**
 * The configured OpenID Connect providers. Discovery runs at start-up without blocking it: a provider that
 * cannot be reached is logged, marked unavailable and retried with exponential back-off (1 s doubling to 5 min).
 * External logins are off, with a start-up message, when the user store has no `UserLoginStore`.
 */
@Injectable()
export class BackOfficeExternalLoginProviders implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('BackOfficeExternalLogins');
  private readonly providers = new Map<string, BackOfficeExternalLoginProvider>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
  ) {}

  onApplicationBootstrap(): void {
    const configured = this.options.externalLogins;
    if (configured.length === 0) return;
    if (!this.userManager.supportsUserLogin) {
      this.logger.error(
        `External logins are OFF: the user store does not implement UserLoginStore (addLogin, removeLogin, getLogins, ` +
          `findUserIdByLogin), so the providers ${configured.map((p) => `"${p.name}"`).join(', ')} cannot be used.`,
      );
      return;
    }
    for (const provider of configured) {
      const { groupsClaim, groupMapping } = provider.autoLink;
      if (groupsClaim !== undefined && Object.keys(groupMapping).length === 0) {
        this.logger.warn(
          `Provider "${provider.name}": autoLink.groupsClaim "${groupsClaim}" is set without autoLink.groupMapping, so the claim grants nothing ` +
            `(provider groups are granted only through an explicit mapping, e.g. groupMapping: { 'cms-editors': 'editor' }); ` +
            `the back-office groups it names are audited as backoffice.user.provider-groups.refused.`,
        );
      }
      this.providers.set(provider.name, { options: provider, configuration: null });
      void this.discover(provider, FIRST_RETRY_MS);
    }
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  /** True when external logins are usable at all (providers configured and a store that keeps logins). */
  get enabled(): boolean {
    return this.providers.size > 0;
  }

  get(name: string): BackOfficeExternalLoginProvider | undefined {
    return typeof name === 'string' ? this.providers.get(name) : undefined;
  }

  list(): BackOfficeExternalLoginProviderDto[] {
    return [...this.providers.values()].map(({ options, configuration }) => ({
      name: options.name,
      displayName: options.displayName,
      autoRedirect: options.autoRedirect,
      available: configuration !== null,
    }));
  }

  /** Display name of a provider, or the name itself for a provider no longer configured. */
  displayName(name: string): string {
    return this.options.externalLogins.find((p) => p.name === name)?.displayName ?? name;
  }

  private async discover(provider: ResolvedExternalLoginProvider, nextDelayMs: number): Promise<void> {
    if (this.stopped) return;
    try {
      const configuration = await oidc.discovery(
        new URL(provider.issuer),
        provider.clientId,
        { redirect_uris: [provider.callbackUrl], response_types: ['code'] },
        provider.clientSecret ? oidc.ClientSecretPost(provider.clientSecret) : oidc.None(),
        {
          timeout: PROVIDER_TIMEOUT_SECONDS,
          // Every later call (JWKS, token, userinfo) goes through it too: the configuration keeps it.
          [oidc.customFetch]: fetchFromProvider,
          ...(new URL(provider.issuer).protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}),
        },
      );
      configuration.timeout = PROVIDER_TIMEOUT_SECONDS;
      // Also check the ID token's signature against the provider's JWKS (openid-client skips it by default for
      // tokens from the token endpoint): a tampered ID token is refused even behind a broken TLS setup.
      oidc.enableNonRepudiationChecks(configuration);
      if (this.stopped) return;
      this.providers.get(provider.name)!.configuration = configuration;
      this.logger.log(`Provider "${provider.name}" ready (${provider.issuer}).`);
    } catch (error) {
      if (this.stopped) return;
      this.logger.warn(
        `Provider "${provider.name}" is unavailable: discovery of ${provider.issuer} failed (${describeError(error)}); ` +
          `retrying in ${Math.round(nextDelayMs / 1000)} s.`,
      );
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        void this.discover(provider, Math.min(nextDelayMs * 2, MAX_RETRY_MS));
      }, nextDelayMs);
      timer.unref();
      this.timers.add(timer);
    }
  }
}

/** A short, secret-free description of an openid-client / network error. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  const code = (error as { code?: string }).code;
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return `${code ? `${code} ` : ''}${error.message}${detail}`.slice(0, 300);
}
