/**
 * The single-use steps of a sign-in that is under way: `two_factor` (password passed, second factor due),
 * `external_login` (a round trip to an OpenID Connect provider: the `state`) and `passkey` (a WebAuthn
 * ceremony's challenge).
 */
export type BackOfficePendingSignInKind = 'two_factor' | 'external_login' | 'passkey';

/** A pending sign-in step as stored. Its secret (cookie token, OIDC state, WebAuthn challenge) is kept as SHA-256 only. */
export interface BackOfficePendingSignIn {
  kind: BackOfficePendingSignInKind;
  /** SHA-256 (hex) of the secret the browser holds; the lookup key, unique per kind. */
  keyHash: string;
  /**
   * What else the step is bound to and must match when it is used: the first factor (`password`, `passkey`) of
   * a two-factor step, the provider of an external login, the ceremony of a passkey challenge.
   */
  purpose: string;
  /** External logins: SHA-256 of the browser token that binds the flow to one browser. */
  browserHash: string | null;
  /**
   * The user the step belongs to (null: not known yet, e.g. a username-less passkey sign-in or an OIDC sign-in; an
   * OIDC link or step-up has the signed-in user).
   */
  userId: string | null;
  /** Two-factor steps: the user's security stamp at the first step. */
  securityStamp: string | null;
  /** Opaque data of the flow (e.g. an encrypted OIDC payload, a sealed external login). */
  payload: string | null;
  expiresAt: Date;
  /**
   * Passkey challenges: the step's slot. Creating a step with a slot replaces the step of that slot (used or not),
   * so a slot holds one at a time: a second-factor challenge's slot is its pending sign-in (`POST
   * /auth/2fa/passkey/options`), whose next options call replaces its previous challenge and never another pending
   * sign-in's (OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1). The store contract (`runBackOfficeStoreContract`) requires it:
   * stores should honour it. A store that ignores it still works at run time (it keeps every challenge until it
   * expires, unbounded but by the per-IP limit) but fails the contract. Steps of other kinds carry no slot.
   */
  slot?: string;
}

/** What must match, beside the key, for a step to be used. Undefined fields are not checked. */
export interface BackOfficePendingSignInMatch {
  purpose?: string;
  browserHash?: string;
  /** `null` matches only a step without a user. */
  userId?: string | null;
  /**
   * Passkey challenges: only the step created with this {@link BackOfficePendingSignIn.slot} (not one of another slot,
   * nor one without a slot; a step of another kind never matches). A second-factor challenge is consumed with its
   * pending sign-in's slot, so the assertion made for one pending sign-in cannot complete another of the same user
   * (OWASP ASVS 4.0 2.8.4 / 5.0 6.5.1). The store contract requires it: a store that ignores it lets one pending
   * sign-in use another's challenge.
   */
  slot?: string;
}

/**
 * How many live passkey challenges one user keeps per purpose (ceremony) of a signed-in session (registration,
 * step-up): creating another deletes that user's older live ones of the purpose past this many, so a session cookie
 * cannot pile up stored challenges (OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1). A person needs one at a time; a few spare ones
 * cover tabs and retries. Second-factor challenges are not counted ({@link livePerUserCap}).
 */
export const BACKOFFICE_PASSKEY_CHALLENGES_PER_USER = 5;

/**
 * How many live OpenID Connect states one signed-in user keeps per provider: the states of `POST
 * /auth/external/:name/link` and `/reauthenticate`, stored with the user. Creating another deletes that user's older
 * live ones of the provider past this many (OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1), as
 * {@link BACKOFFICE_PASSKEY_CHALLENGES_PER_USER} does for passkey challenges (a constant of its own: another kind of
 * step, counted apart, though the value is the same). Sign-in states have no user and stay bounded by the routes'
 * per-IP limits.
 */
export const BACKOFFICE_EXTERNAL_LOGIN_STATES_PER_USER = 5;

/**
 * How many live steps of this one's kind, user and purpose a store keeps when it creates it (this one among them), or
 * null when that kind is not capped per user: passkey challenges and external login states with a user. Two-factor
 * steps are not: a password or passkey sign-in (per-IP and lockout limits) creates them, not a session. Nor are
 * second-factor passkey challenges (`POST /auth/2fa/passkey/options`): a pending sign-in, not the user, asks for them,
 * so whoever holds the password only could otherwise void the user's own ceremony under way with a few more calls
 * (OWASP ASVS 5.0 2.4.1); each pending sign-in holds one at a time instead ({@link BackOfficePendingSignIn.slot}).
 */
export function livePerUserCap(pending: Pick<BackOfficePendingSignIn, 'kind' | 'userId' | 'purpose'>): number | null {
  if (pending.userId === null) return null;
  if (pending.kind === 'passkey') return pending.purpose === 'second_factor' ? null : BACKOFFICE_PASSKEY_CHALLENGES_PER_USER;
  if (pending.kind === 'external_login') return BACKOFFICE_EXTERNAL_LOGIN_STATES_PER_USER;
  return null;
}

/**
 * One port for every single-use pending sign-in step: create, peek, use up atomically (true for exactly one
 * of any number of concurrent callers), expire.
 */
export interface BackOfficePendingSignInStore {
  /**
   * Stores a step. A `passkey` (other than `second_factor`) or `external_login` step with a user also deletes,
   * atomically with the insert (concurrent creations included: the user never has more), that user's live steps of the
   * same kind and purpose beyond the newest {@link BACKOFFICE_PASSKEY_CHALLENGES_PER_USER} (passkey challenges, per ceremony) or
   * {@link BACKOFFICE_EXTERNAL_LOGIN_STATES_PER_USER} (external login states, per provider), this one among them,
   * the oldest first ({@link livePerUserCap}).
   */
  create(pending: BackOfficePendingSignIn, now: Date): Promise<void>;
  /** The live (unused, unexpired) step of `kind` with this key, without using it up. */
  find(kind: BackOfficePendingSignInKind, keyHash: string, now: Date): Promise<BackOfficePendingSignIn | null>;
  /**
   * Uses the live step up when it matches (`match`, a slot included): exactly one concurrent caller gets it, the
   * others null. A step that does not match stays live.
   */
  consume(kind: BackOfficePendingSignInKind, keyHash: string, now: Date, match?: BackOfficePendingSignInMatch): Promise<BackOfficePendingSignIn | null>;
  /** Deletes expired steps: passkey challenges and external login states once expired at `now`, two-factor steps a week after. */
  prune(now: Date): Promise<{ twoFactorChallenges: number; passkeyChallenges: number; externalLoginStates: number }>;
}
