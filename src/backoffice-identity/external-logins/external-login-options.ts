import type { BackOfficeUser } from '../users/backoffice-user.js';

/** What the provider says about the person: ID token claims merged with the userinfo response. */
export interface BackOfficeExternalLoginClaims {
  /** The stable subject identifier at the provider: the login's provider key. */
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  /** Authentication methods (RFC 8176), when the provider sends them (e.g. `['pwd', 'mfa']`). */
  amr?: string[];
  [claim: string]: unknown;
}

/** The user an auto-link is about to create; `onAutoLinking` may change it. */
export interface BackOfficeAutoLinkCandidate {
  email: string;
  name: string;
  /** Group aliases: `defaultGroups` plus the mapped groups claim. */
  groups: string[];
}

/** Changes `onExternalLogin` asks for on every external sign-in (e.g. keep the name in sync). */
export interface BackOfficeExternalLoginChanges {
  name?: string;
  /** Replaces the user's groups (refused by the last-admin rule like any other change). */
  groups?: string[];
}

/**
 * Creating users on their first external sign-in (Umbraco's `ExternalSignInAutoLinkOptions`). An email that
 * already belongs to a user is never linked automatically (no account take-over through a provider): that
 * user links the provider from their own session instead. The one exception is a user still invited (invited,
 * never signed in, no password, no external login): the first sign-in with that (verified) email links the
 * provider to them and accepts the invite, keeping the groups the admin chose; this is how an invite that the
 * host took over (`SendEmailNotification` + `handleEmail()`) and sent through the provider is completed.
 */
export interface ExternalSignInAutoLinkOptions {
  /** Create a user on the first sign-in of an unknown provider account. Default false. */
  enabled?: boolean;
  /** Group aliases every auto-linked user gets. Default `[]`. */
  defaultGroups?: string[];
  /**
   * Claim with the person's groups at the provider (ID token or userinfo), e.g. `groups`: a string or an array of
   * strings. It grants groups only through `groupMapping`.
   */
  groupsClaim?: string;
  /**
   * Provider group -> back-office group alias(es): the only way a provider group grants a back-office group, e.g.
   * `{ 'cms-editors': 'editor' }` (or `{ editor: 'editor' }` to keep the provider's names). Unmapped provider groups
   * grant nothing. Without a mapping the groups claim grants nothing at all (a warning at start-up); the back-office
   * aliases it names are audited (`backoffice.user.provider-groups.refused`, reason `not_mapped`).
   */
  groupMapping?: Record<string, string | string[]>;
  /**
   * The provider owns the groups of its users: on every sign-in they are set to `defaultGroups` plus the mapped
   * claim, and local edits answer 409 `groups_managed_by_provider`. Default false (groups set once, then local).
   * It needs a `groupsClaim` and a `groupMapping` (refused at start-up otherwise: every sign-in would reset the groups
   * to `defaultGroups`, or strip the groups).
   */
  groupsManagedByProvider?: boolean;
  /**
   * With `groupsManagedByProvider` and a `groupsClaim`: what a sign-in whose groups claim is absent (or `null`)
   * means. `'refuse'` (default): the groups cannot be read (a scope not granted, a claim not configured), so the
   * sign-in is refused (`?error=external_groups_unavailable`) and the user's groups stay as they are. `'noGroups'`:
   * the user has no groups at the provider, for providers that leave an empty claim out (Okta with a groups filter,
   * Entra ID for users in no group). An explicit empty array always means "no groups"; a groups overage (the
   * claim named in `_claim_names`, as Entra ID sends for users in too many groups) is always refused.
   */
  missingGroupsClaim?: 'refuse' | 'noGroups';
  /**
   * Only create a user when the provider says the email is verified (`email_verified: true`). Default true. Linking
   * an invitee (an email that belongs to a user) always needs `email_verified: true`, whatever this says: the
   * invitee holds the groups an admin chose.
   */
  requireVerifiedEmail?: boolean;
}

/** One OpenID Connect provider (Umbraco's `BackOfficeExternalLoginProviderOptions`). */
export interface BackOfficeExternalLoginProviderOptions {
  /** Route name: `/auth/external/<name>/...`. Letters, digits, `_` and `-`. */
  name: string;
  /** Shown on the sign-in page, e.g. `Single sign-on`. */
  displayName: string;
  /** Issuer URL; its `/.well-known/openid-configuration` is discovered at start-up. */
  issuer: string;
  clientId: string;
  /** Omit for a public client (PKCE only). */
  clientSecret?: string;
  /** Scopes; `openid` is always added. Default `['openid', 'email', 'profile']`. */
  scopes?: string[];
  /** Refuse password sign-in for everyone (as the module option `denyLocalLogin`). Default false. */
  denyLocalLogin?: boolean;
  /** The sign-in page sends people straight to this provider. Default false. */
  autoRedirect?: boolean;
  /** Auto-linking: off unless `autoLink.enabled`. */
  autoLink?: ExternalSignInAutoLinkOptions;
  /**
   * Runs before an auto-linked user is created: change `candidate`, or return false to refuse (`not_allowed`).
   * Not called when the sign-in accepts an invite (nobody is created); `onExternalLogin` runs then as always.
   */
  onAutoLinking?: (candidate: BackOfficeAutoLinkCandidate, claims: BackOfficeExternalLoginClaims) => boolean | void | Promise<boolean | void>;
  /** Runs on every external sign-in: return changes to apply, or false to refuse (`not_allowed`). */
  onExternalLogin?: (
    user: BackOfficeUser,
    claims: BackOfficeExternalLoginClaims,
  ) => boolean | void | BackOfficeExternalLoginChanges | Promise<boolean | void | BackOfficeExternalLoginChanges>;
  /**
   * Skip the local second factor when the ID token's `amr` says the provider did multi-factor authentication
   * (`mfa`, `otp`, `hwk`, `swk`, `sms`, `face`, `fpt`). Default false: local two-factor always applies.
   */
  trustProviderTwoFactor?: boolean;
  /**
   * Seconds all calls to the provider of one callback may take together (token, JWKS, userinfo; each call also has
   * its own 10 s timeout). When they run out the calls are cancelled and the callback ends as for an unreachable
   * provider (`?error=external_login_failed`). An integer from 1 to 30; default 15.
   */
  callbackTimeoutSeconds?: number;
  /** Where the provider sends people after RP-initiated logout. Default `<publicUrl>/<routePrefix>/`. */
  postLogoutRedirectUrl?: string;
}

/** A provider with every default filled in. */
export interface ResolvedExternalLoginProvider extends Required<Omit<BackOfficeExternalLoginProviderOptions, 'clientSecret' | 'onAutoLinking' | 'onExternalLogin' | 'autoLink'>> {
  clientSecret?: string;
  onAutoLinking?: BackOfficeExternalLoginProviderOptions['onAutoLinking'];
  onExternalLogin?: BackOfficeExternalLoginProviderOptions['onExternalLogin'];
  autoLink: Required<Omit<ExternalSignInAutoLinkOptions, 'groupsClaim'>> & { groupsClaim?: string; groupMapping: Record<string, string[]> };
  /** `<publicUrl>/<routePrefix>/auth/external/<name>/callback`: register it at the provider. */
  callbackUrl: string;
}
