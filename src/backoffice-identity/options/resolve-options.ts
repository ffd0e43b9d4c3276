import { Logger } from '@nestjs/common';
import { BUILT_IN_PERMISSIONS, PERMISSION_KEY_PATTERN, type BackOfficePermissionDefinition } from '../permissions/backoffice-permissions.js';
import type { ResolvedExternalLoginProvider } from '../external-logins/external-login-options.js';
import { BACKOFFICE_UI_MESSAGES, type BackOfficeUiMessages } from '../ui/ui-messages.js';
import { BACKOFFICE_SWAP_KEYS } from '../constants.js';
import { MAX_SAME_ORIGIN_PATH_LENGTH, toSameOriginPath } from '../common/same-origin-path.js';
import type {
  BackOfficeIdentityOptions,
  ResolvedBackOfficeIdentityOptions,
  ResolvedBackOfficeUiOptions,
} from './backoffice-identity-options.interface.js';

/**
 * `notifications.listenerTimeoutMs` when the host sets none, and the publisher's when it is made without the module's
 * options (module-internal: not in the public index).
 */
export const DEFAULT_NOTIFICATION_LISTENER_TIMEOUT_MS = 10_000;

/** Thrown at start-up when an option is wrong; the message names the option. */
export class BackOfficeIdentityOptionsError extends Error {
  /**
   * @param option the path of the wrong option, e.g. `"lockout.maxFailedAccessAttempts"` or `"externalLogins[0].issuer"`
   *   (kept as {@link option}, so a host that builds the options from its own settings can name its setting).
   */
  constructor(
    readonly option: string,
    expectation: string,
    value: unknown,
  ) {
    super(`BackOfficeIdentityModule: option "${option}" ${expectation} (got ${describe(value)})`);
    this.name = 'BackOfficeIdentityOptionsError';
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (value === undefined) return 'undefined';
  // A class instance (a swap passed as an instance instead of { useValue }) may hold credentials: name its class only.
  const prototype = typeof value === 'object' && value !== null ? Object.getPrototypeOf(value) : null;
  if (prototype !== null && prototype !== Object.prototype && !Array.isArray(value)) {
    return `an instance of ${(value as object).constructor?.name || 'a class'}`;
  }
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Fewest different characters of a secret option: fewer (`'a'.repeat(32)`, spaces, other stand-ins) is warned about. */
const MIN_SECRET_DISTINCT_CHARACTERS = 8;

const KNOWN_KEYS: Record<string, readonly string[]> = {
  '': [
    'routePrefix', 'usernameIsEmail', 'password', 'lockout', 'session', 'tokens', 'rateLimits', 'allowPasswordReset',
    'denyLocalLogin', 'publicUrl', 'audit', 'email', 'notifications', 'twoFactor', 'database', 'maintenanceIntervalMinutes', 'passwordValidators', 'userValidators',
    'permissions', 'apiUsers', 'externalLogins', 'passkeys',
    'ui',
    // swaps, validated by the module itself
    ...BACKOFFICE_SWAP_KEYS,
  ],
  password: ['requiredLength', 'maxLength', 'rejectCommon', 'requireDigit', 'requireLowercase', 'requireUppercase', 'requireNonLetterOrDigit', 'hashCost'],
  lockout: ['maxFailedAccessAttempts', 'durationMinutes'],
  session: ['idleTimeoutMinutes', 'absoluteTimeoutHours', 'cookieName', 'secureCookies', 'allowConcurrentLogins', 'reauthenticationMinutes'],
  database: ['statementTimeoutMs', 'connectionTimeoutMs'],
  tokens: ['inviteLifespanHours', 'passwordResetLifespanHours'],
  email: ['from', 'smtpUrl', 'pickupDirectory', 'sendTimeoutMs', 'listenerTimeoutMs'],
  notifications: ['listenerTimeoutMs'],
  twoFactor: ['encryptionKey', 'issuer', 'providers', 'pendingMinutes', 'enforcementGraceHours'],
  apiUsers: ['tokenLifetimeMinutes', 'maxSecretOverlapMinutes'],
  audit: ['enabled', 'retentionDays'],
  ui: ['enabled', 'messages', 'branding', 'defaultReturnUrl', 'idleWarningSeconds'],
  'ui.branding': ['productName', 'logoUrl', 'accentColor', 'backgroundImageUrl'],
  'ui.messages': Object.keys(BACKOFFICE_UI_MESSAGES),
  passkeys: ['rpId', 'rpName', 'origins', 'challengeMinutes'],
  rateLimits: ['enabled', 'loginPerIpAndUsername', 'loginPerIp', 'forgotPasswordPerEmail', 'forgotPasswordPerIp', 'tokenPerIpAndClient', 'emailChangePerUser', 'profileChangePerUser', 'inviteResendPerUser', 'passwordCheckPerIp', 'challengePerIp', 'ipv6Subnet', 'ipv6AggregateSubnet', 'ipv6AggregateMultiplier', 'redisUrl', 'redisKeyPrefix'],
  externalLogin: [
    'name', 'displayName', 'issuer', 'clientId', 'clientSecret', 'scopes', 'denyLocalLogin', 'autoRedirect', 'autoLink',
    'onAutoLinking', 'onExternalLogin', 'trustProviderTwoFactor', 'postLogoutRedirectUrl', 'callbackTimeoutSeconds',
  ],
  autoLink: ['enabled', 'defaultGroups', 'groupsClaim', 'groupMapping', 'groupsManagedByProvider', 'missingGroupsClaim', 'requireVerifiedEmail'],
};

/** Edit distance of two short strings (case-insensitive). */
function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let previous = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const current = [i];
    for (let j = 1; j <= y.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[y.length]!;
}

/** True when every character of `short` appears in `long` in order (`maxFailedAttempts` in `maxFailedAccessAttempts`). */
function isSubsequence(short: string, long: string): boolean {
  let i = 0;
  for (const c of long.toLowerCase()) if (c === short[i]?.toLowerCase()) i++;
  return i === short.length;
}

/**
 * `rateLimits.ipv6AggregateSubnet`: the wider IPv6 prefix that per-IP limits also count, never narrower than the
 * per-IP prefix `ipv6Subnet` (it counts several of those together; equal: no second count). Default 56 (one
 * customer's allocation, as express-rate-limit's `ipv6Subnet` default), or `ipv6Subnet` when that is 56 or less.
 */
function ipv6AggregateSubnet(rateLimits: OptionReader, ipv6Subnet: number): number {
  const bits = rateLimits.int('ipv6AggregateSubnet', Math.min(56, ipv6Subnet), 16, 128);
  if (bits > ipv6Subnet) {
    throw new BackOfficeIdentityOptionsError(
      'rateLimits.ipv6AggregateSubnet',
      `must be from 16 to rateLimits.ipv6Subnet (${ipv6Subnet}): it is the wider prefix that holds several per-IP prefixes, so it has fewer bits (${ipv6Subnet}: no second count)`,
      bits,
    );
  }
  return bits;
}

/** The known key an unknown one is probably a typo of: at most 2 edits away, or a shortening of it; else undefined. */
function closestKey(key: string, known: readonly string[]): string | undefined {
  const scored = known
    .map((candidate) => ({ candidate, distance: editDistance(key, candidate) }))
    .filter(({ candidate, distance }) => distance <= 2 || (key.length >= 5 && (isSubsequence(key, candidate) || isSubsequence(candidate, key))))
    .sort((a, b) => a.distance - b.distance);
  return scored[0]?.candidate;
}

class OptionReader {
  constructor(
    private readonly source: Record<string, unknown>,
    private readonly path: string,
    known: readonly string[] = KNOWN_KEYS[path] ?? [],
  ) {
    for (const key of Object.keys(source)) {
      if (!known.includes(key)) {
        const meant = closestKey(key, known);
        const hint = meant === undefined ? '' : `: did you mean "${meant}"?`;
        throw new BackOfficeIdentityOptionsError(this.name(key), `is not a known option${hint} (known: ${known.join(', ')})`, source[key]);
      }
    }
  }

  private name(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  int(key: string, fallback: number, min: number, max: number): number {
    const value = this.source[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new BackOfficeIdentityOptionsError(this.name(key), `must be an integer from ${min} to ${max}`, value);
    }
    return value;
  }

  number(key: string, fallback: number, min: number, max: number): number {
    const value = this.source[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      throw new BackOfficeIdentityOptionsError(this.name(key), `must be a number from ${min} to ${max}`, value);
    }
    return value;
  }

  bool(key: string, fallback: boolean): boolean {
    const value = this.source[key] ?? fallback;
    if (typeof value !== 'boolean') throw new BackOfficeIdentityOptionsError(this.name(key), 'must be true or false', value);
    return value;
  }

  string(key: string, fallback: string, pattern: RegExp, expectation: string): string {
    const value = this.source[key] ?? fallback;
    if (typeof value !== 'string' || !pattern.test(value)) {
      throw new BackOfficeIdentityOptionsError(this.name(key), expectation, value);
    }
    return value;
  }

  optionalUrl(key: string, protocols: string[]): string | undefined {
    const value = this.source[key];
    if (value === undefined || value === null || value === '') return undefined;
    return this.url(key, '', protocols);
  }

  url(key: string, fallback: string, protocols: string[]): string {
    const value = this.source[key] ?? fallback;
    let ok = false;
    if (typeof value === 'string') {
      try {
        ok = protocols.includes(new URL(value).protocol);
      } catch {
        ok = false;
      }
    }
    if (!ok) throw new BackOfficeIdentityOptionsError(this.name(key), `must be a URL (${protocols.join(' or ')})`, value);
    return (value as string).replace(/\/+$/, '');
  }

  /**
   * An optional secret string: never printed (a refused one is described by its type or length). A key of fewer
   * than {@link MIN_SECRET_DISTINCT_CHARACTERS} different characters (`'a'.repeat(32)`, spaces) is taken with a
   * warning, not refused: data is encrypted and keyed with it already (TOTP secrets, recovery-code hashes), and a new
   * key would void every enrolment, so an existing deployment must be able to start and plan the move.
   */
  optionalSecret(key: string, minLength: number): string | undefined {
    const value = this.source[key];
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string') {
      const binary = value instanceof Uint8Array || value instanceof ArrayBuffer;
      throw new BackOfficeIdentityOptionsError(
        this.name(key),
        `must be a string${binary ? " (a Buffer of random bytes: pass key.toString('base64'))" : ''} of at least ${minLength} characters`,
        binary ? `${value.constructor.name} of ${(value as Uint8Array).byteLength} bytes` : typeof value,
      );
    }
    if (value.length < minLength) {
      throw new BackOfficeIdentityOptionsError(this.name(key), `must be a secret of at least ${minLength} characters (e.g. openssl rand -base64 32)`, `${value.length} characters`);
    }
    const distinct = new Set(value.trim()).size;
    if (distinct < MIN_SECRET_DISTINCT_CHARACTERS) {
      new Logger('BackOfficeIdentity').warn(
        `Option "${this.name(key)}" is no random secret (${value.length} characters, ${distinct} different; at least ` +
          `${MIN_SECRET_DISTINCT_CHARACTERS} expected): anyone who guesses it can read the TOTP secrets it encrypts. A new key (openssl rand -base64 32) ` +
          'voids what the old one encrypted: every user then sets up two-factor again.',
      );
    }
    return value;
  }

  /** An optional `https:` URL or same-origin path (for images the pages load). No quotes, brackets or spaces. */
  optionalAssetUrl(key: string): string | undefined {
    const value = this.source[key];
    if (value === undefined || value === null || value === '') return undefined;
    const expectation = 'must be an https: URL or a same-origin path such as "/static/logo.svg" (no quotes, spaces, brackets or backslashes)';
    if (typeof value !== 'string' || value.length > MAX_SAME_ORIGIN_PATH_LENGTH || !SAFE_URL_CHARS.test(value)) throw new BackOfficeIdentityOptionsError(this.name(key), expectation, value);
    const path = toSameOriginPath(value);
    if (path !== undefined) return path;
    try {
      if (new URL(value).protocol === 'https:') return value;
    } catch {
      // reported below
    }
    throw new BackOfficeIdentityOptionsError(this.name(key), expectation, value);
  }

  /** An optional same-origin path (`/...`, not `//host`), as {@link toSameOriginPath} writes it. */
  optionalPath(key: string): string | undefined {
    const value = this.source[key];
    if (value === undefined || value === null || value === '') return undefined;
    const path = toSameOriginPath(value);
    if (path === undefined) {
      throw new BackOfficeIdentityOptionsError(this.name(key), 'must be a same-origin path such as "/admin" (starting with one "/", no "//", backslashes, spaces or control characters, also once dot segments are resolved)', value);
    }
    return path;
  }

  /** Every entry a plain-text string of at most `maxLength` characters. */
  strings(maxLength: number): Record<string, string> {
    const result: Record<string, string> = {};
    for (const [key, value] of Object.entries(this.source)) {
      if (typeof value !== 'string' || value.length > maxLength || /[\0-\x08\x0b\x0c\x0e-\x1f]/.test(value)) {
        throw new BackOfficeIdentityOptionsError(this.name(key), `must be a string of at most ${maxLength} characters without control characters`, value);
      }
      result[key] = value;
    }
    return result;
  }

  array<T>(key: string, check: (item: unknown) => boolean, expectation: string): T[] {
    const value = this.source[key] ?? [];
    if (!Array.isArray(value) || !value.every(check)) {
      throw new BackOfficeIdentityOptionsError(this.name(key), expectation, value);
    }
    return [...value] as T[];
  }

  /** True when the option is present (not undefined or null). */
  has(key: string): boolean {
    return this.source[key] !== undefined && this.source[key] !== null;
  }

  section(key: string, known?: readonly string[]): OptionReader {
    const value = this.source[key] ?? {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new BackOfficeIdentityOptionsError(this.name(key), 'must be an object', value);
    }
    return new OptionReader(value as Record<string, unknown>, this.name(key), known);
  }

  optionalString(key: string, pattern: RegExp, expectation: string): string | undefined {
    const value = this.source[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string' || !pattern.test(value)) throw new BackOfficeIdentityOptionsError(this.name(key), expectation, value);
    return value;
  }

  optionalFunction<F>(key: string): F | undefined {
    const value = this.source[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'function') throw new BackOfficeIdentityOptionsError(this.name(key), 'must be a function', value);
    return value as F;
  }

  /** A `Record<string, string | string[]>` with non-empty strings, values as arrays. */
  stringMap(key: string): Record<string, string[]> {
    const value = this.source[key] ?? {};
    const ok =
      typeof value === 'object' && value !== null && !Array.isArray(value) &&
      Object.entries(value).every(([k, v]) => k.length > 0 && (isName(v) || (Array.isArray(v) && v.every(isName))));
    if (!ok) throw new BackOfficeIdentityOptionsError(this.name(key), 'must map provider group names to group aliases (string or string[])', value);
    return Object.fromEntries(Object.entries(value as Record<string, string | string[]>).map(([k, v]) => [k, Array.isArray(v) ? [...v] : [v]]));
  }
}

/**
 * A session cookie name a browser keeps: not the XSRF cookie's (`XSRF-TOKEN`: the readable cookie set beside it
 * would overwrite it), and a `__Host-` / `__Secure-` prefix (any case, as browsers match it) only with Secure cookies.
 */
function checkCookieName({ cookieName, secureCookies }: ResolvedBackOfficeIdentityOptions['session']): void {
  if (cookieName === 'XSRF-TOKEN') throw new BackOfficeIdentityOptionsError('session.cookieName', 'must differ from the XSRF cookie\'s name "XSRF-TOKEN"', cookieName);
  if (!secureCookies && /^__(host|secure)-/i.test(cookieName)) {
    throw new BackOfficeIdentityOptionsError('session.cookieName', 'must not start with "__Host-" or "__Secure-" while session.secureCookies is false (browsers refuse such cookies without Secure)', cookieName);
  }
}

/** Characters allowed in branding URLs: nothing that could end a CSS `url()` or an HTML attribute. */
const SAFE_URL_CHARS = /^[A-Za-z0-9\-._~:/?#@!$&*+,;=%]+$/;

function resolveUi(root: OptionReader, raw: unknown, idleTimeoutMinutes: number): ResolvedBackOfficeUiOptions {
  if (raw !== undefined && raw !== false && (typeof raw !== 'object' || raw === null || Array.isArray(raw))) {
    throw new BackOfficeIdentityOptionsError('ui', 'must be false or an object', raw);
  }
  const ui = raw === false ? new OptionReader({ enabled: false }, 'ui') : root.section('ui');
  const branding = ui.section('branding');
  const messages = { ...BACKOFFICE_UI_MESSAGES, ...ui.section('messages').strings(2000) } as BackOfficeUiMessages;
  return {
    enabled: ui.bool('enabled', true),
    messages,
    branding: {
      productName: branding.string('productName', 'Back office', /^[^\0-\x1f<>]{1,80}$/, 'must be 1 to 80 characters of plain text (no "<", ">" or control characters)'),
      logoUrl: branding.optionalAssetUrl('logoUrl'),
      accentColor: branding.string('accentColor', '#1b6ac9', /^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/, 'must be a colour such as "#1b6ac9" or "#36c"'),
      backgroundImageUrl: branding.optionalAssetUrl('backgroundImageUrl'),
    },
    defaultReturnUrl: ui.optionalPath('defaultReturnUrl'),
    idleWarningSeconds: ui.int('idleWarningSeconds', Math.min(120, Math.floor(idleTimeoutMinutes * 30)), 5, Math.max(5, Math.floor(idleTimeoutMinutes * 30))),
  };
}

const isTwoFactorProvider = (item: unknown) =>
  typeof item === 'object' &&
  item !== null &&
  typeof (item as { name?: unknown }).name === 'string' &&
  ['isSetUp', 'generateSetup', 'verify', 'reset'].every((m) => typeof (item as Record<string, unknown>)[m] === 'function');

/** A DNS name usable as a WebAuthn relying-party id: letters, digits and hyphens in dot-separated labels, not an IP. */
const RP_ID = /^(?=.{1,253}$)(?!\d+(\.\d+){3}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** An origin allowed for WebAuthn under `rpId`: https (http only on localhost), host equal to or inside `rpId`, nothing after the port. */
function isPasskeyOrigin(value: unknown, rpId: string): boolean {
  if (typeof value !== 'string') return false;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.origin !== value) return false;
  const host = url.hostname;
  const local = host === 'localhost' || host.endsWith('.localhost');
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && local)) return false;
  return host === rpId || host.endsWith(`.${rpId}`);
}

function resolvePasskeys(root: OptionReader): ResolvedBackOfficeIdentityOptions['passkeys'] {
  if (!root.has('passkeys')) return null;
  const passkeys = root.section('passkeys');
  const rpId = passkeys.string('rpId', '', RP_ID, 'must be a lower-case domain name such as "example.com" or "localhost" (not an IP address, no port)');
  return {
    rpId,
    rpName: passkeys.string('rpName', 'Back office', /^[^\r\n\0]{1,64}$/, 'must be 1 to 64 characters on one line'),
    origins: passkeys.array<string>('origins', (o) => isPasskeyOrigin(o, rpId), `must be origins such as "https://admin.${rpId}" (https, or http on localhost; no path or trailing slash) inside rpId "${rpId}"`),
    challengeMinutes: passkeys.number('challengeMinutes', 5, 1, 60),
  };
}

const isName = (item: unknown): item is string => typeof item === 'string' && item.length > 0 && item.length <= 256;

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** `issuer` must be https://, except on loopback hosts (local development and tests). */
function checkIssuer(reader: OptionReader, path: string, value: unknown): string {
  const issuer = reader.url('issuer', '', ['http:', 'https:']);
  const url = new URL(issuer);
  if (url.protocol === 'http:' && !LOOPBACK_HOSTS.has(url.hostname)) {
    throw new BackOfficeIdentityOptionsError(`${path}.issuer`, 'must be an https:// URL (plain http only on localhost)', value);
  }
  return issuer;
}

/** `clientSecret`: optional, one line of at most 1024 characters; never printed. */
function optionalClientSecret(reader: OptionReader, path: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !/^[^\r\n]{1,1024}$/.test(value)) {
    const shown = typeof value === 'string' ? `${value.length} characters${/[\r\n]/.test(value) ? ' with a line break' : ''}` : typeof value;
    throw new BackOfficeIdentityOptionsError(`${path}.clientSecret`, 'must be the client secret on one line, at most 1024 characters (omit it for a public client)', shown);
  }
  return reader.optionalString('clientSecret', /^/, '');
}

/** Default of `externalLogins[].callbackTimeoutSeconds`: the budget of all provider calls of one callback. */
const DEFAULT_CALLBACK_TIMEOUT_SECONDS = 15;
/** Largest `callbackTimeoutSeconds`: three calls at the per-call timeout (10 s each). */
const MAX_CALLBACK_TIMEOUT_SECONDS = 30;

/** Validates `externalLogins` (contract section 6). */
function resolveExternalLogins(raw: unknown, publicUrl: string, routePrefix: string): ResolvedExternalLoginProvider[] {
  const list = raw ?? [];
  if (!Array.isArray(list)) throw new BackOfficeIdentityOptionsError('externalLogins', 'must be an array of providers', list);
  const names = new Set<string>();
  return list.map((item, index) => {
    const path = `externalLogins[${index}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new BackOfficeIdentityOptionsError(path, 'must be an object', item);
    const p = new OptionReader(item as Record<string, unknown>, path, KNOWN_KEYS.externalLogin);
    const name = p.string('name', '', /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'must be 1 to 64 letters, digits, "_" or "-" (it is part of the callback URL)');
    if (names.has(name)) throw new BackOfficeIdentityOptionsError(`${path}.name`, 'must be unique among externalLogins', name);
    names.add(name);
    const autoLink = p.section('autoLink', KNOWN_KEYS.autoLink);
    const scopes = p.array<string>('scopes', (s) => typeof s === 'string' && /^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/.test(s), 'must be an array of scope names (no spaces)');
    const groupsClaim = autoLink.optionalString('groupsClaim', /^[^\s]{1,128}$/, 'must be a claim name such as "groups"');
    const groupMapping = autoLink.stringMap('groupMapping');
    const groupsManagedByProvider = autoLink.bool('groupsManagedByProvider', false);
    // A provider group is granted only through groupMapping (OWASP ASVS 4.0 4.1.3): a groups claim without one grants
    // nothing, so with groupsManagedByProvider every sign-in would strip the user's groups. Logged at start-up otherwise.
    // Without a groups claim the provider says nothing about groups: every sign-in would reset them to defaultGroups.
    if (groupsManagedByProvider && groupsClaim === undefined) {
      throw new BackOfficeIdentityOptionsError(
        `${path}.autoLink.groupsClaim`,
        `must name the provider's groups claim when groupsManagedByProvider is on (without one every sign-in would reset the ` +
          `user's groups to defaultGroups): e.g. groupsClaim: 'groups' with a groupMapping, or turn groupsManagedByProvider off`,
        (item as { autoLink?: { groupsClaim?: unknown } }).autoLink?.groupsClaim,
      );
    }
    if (groupsManagedByProvider && groupsClaim !== undefined && Object.keys(groupMapping).length === 0) {
      throw new BackOfficeIdentityOptionsError(
        `${path}.autoLink.groupMapping`,
        `must map the provider's groups to back-office groups when groupsManagedByProvider is on with a groupsClaim (without a mapping the ` +
          `claim grants nothing and every sign-in would strip the user's groups): e.g. groupMapping: { 'cms-editors': 'editor' }, or ` +
          `{ editor: 'editor' } to keep the provider's names`,
        (item as { autoLink?: { groupMapping?: unknown } }).autoLink?.groupMapping,
      );
    }
    return {
      name,
      displayName: p.string('displayName', '', /^[^\r\n]{1,64}$/, 'must be 1 to 64 characters'),
      issuer: checkIssuer(p, path, (item as Record<string, unknown>).issuer),
      clientId: p.string('clientId', '', /^[^\s]{1,256}$/, 'must be the client id registered at the provider'),
      clientSecret: optionalClientSecret(p, path, (item as Record<string, unknown>).clientSecret),
      scopes: [...new Set(['openid', ...(scopes.length ? scopes : ['email', 'profile'])])],
      denyLocalLogin: p.bool('denyLocalLogin', false),
      autoRedirect: p.bool('autoRedirect', false),
      autoLink: {
        enabled: autoLink.bool('enabled', false),
        defaultGroups: autoLink.array<string>('defaultGroups', isName, 'must be an array of group aliases'),
        groupsClaim,
        groupMapping,
        groupsManagedByProvider,
        missingGroupsClaim: autoLink.string('missingGroupsClaim', 'refuse', /^(refuse|noGroups)$/, 'must be "refuse" or "noGroups"') as 'refuse' | 'noGroups',
        requireVerifiedEmail: autoLink.bool('requireVerifiedEmail', true),
      },
      onAutoLinking: p.optionalFunction('onAutoLinking'),
      onExternalLogin: p.optionalFunction('onExternalLogin'),
      trustProviderTwoFactor: p.bool('trustProviderTwoFactor', false),
      callbackTimeoutSeconds: p.int('callbackTimeoutSeconds', DEFAULT_CALLBACK_TIMEOUT_SECONDS, 1, MAX_CALLBACK_TIMEOUT_SECONDS),
      // Kept exactly as given: it must equal the URL registered at the provider.
      postLogoutRedirectUrl: p.optionalUrl('postLogoutRedirectUrl', ['http:', 'https:']) ? String((item as Record<string, unknown>).postLogoutRedirectUrl) : `${publicUrl}/${routePrefix}/`,
      callbackUrl: `${publicUrl}/${routePrefix}/auth/external/${name}/callback`,
    };
  });
}

/** `audit`: a boolean (on or off, kept forever) or `{ enabled, retentionDays }`. */
function resolveAudit(root: OptionReader, value: unknown): ResolvedBackOfficeIdentityOptions['audit'] {
  if (value === undefined || value === null || typeof value === 'boolean') return { enabled: root.bool('audit', true), retentionDays: 0 };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BackOfficeIdentityOptionsError('audit', 'must be true, false or { enabled, retentionDays }', value);
  }
  const audit = root.section('audit');
  return { enabled: audit.bool('enabled', true), retentionDays: audit.int('retentionDays', 0, 0, 36_500) };
}

const hasValidate = (item: unknown) =>
  typeof item === 'object' && item !== null && typeof (item as { validate?: unknown }).validate === 'function';

/** Validates the host's permission keys: shape, description, no duplicates, no clash with a built-in key. */
function resolvePermissions(value: unknown): BackOfficePermissionDefinition[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new BackOfficeIdentityOptionsError('permissions', 'must be an array of { key, description }', value);
  const seen = new Set(BUILT_IN_PERMISSIONS.map((p) => p.key));
  return value.map((item: unknown, index) => {
    const name = `permissions[${index}]`;
    if (typeof item !== 'object' || item === null) throw new BackOfficeIdentityOptionsError(name, 'must be { key, description }', item);
    const { key, description } = item as Record<string, unknown>;
    if (typeof key !== 'string' || !PERMISSION_KEY_PATTERN.test(key)) {
      throw new BackOfficeIdentityOptionsError(`${name}.key`, 'must be a dotted lower-case key such as "reports.export"', key);
    }
    if (seen.has(key)) throw new BackOfficeIdentityOptionsError(`${name}.key`, 'is already registered (built-in or listed twice)', key);
    if (typeof description !== 'string' || description.trim().length === 0 || description.length > 256) {
      throw new BackOfficeIdentityOptionsError(`${name}.description`, 'must be text of 1 to 256 characters', description);
    }
    seen.add(key);
    return Object.freeze({ key, description });
  });
}

/**
 * `publicUrl` is the base of every email link and callback URL (`<publicUrl>/<routePrefix>/...`): a query or fragment
 * would end up in the middle of them, and a user name or password would be mailed to every user. A path is kept.
 */
function checkPublicUrl(publicUrl: string): string {
  const url = new URL(publicUrl);
  if (url.search !== '' || url.hash !== '' || /[?#]/.test(publicUrl) || url.username !== '' || url.password !== '') {
    const shown = url.username || url.password ? publicUrl.replace(/\/\/[^@/]*@/, '//***@') : publicUrl;
    throw new BackOfficeIdentityOptionsError(
      'publicUrl',
      'must be the base URL of your app, such as "https://cms.example.com" or "https://example.com/cms", without a query, fragment or user name',
      shown,
    );
  }
  return publicUrl;
}

/** The keys `forRootAsync` takes beside the swaps. */
const ASYNC_KEYS = ['routePrefix', 'useFactory', 'inject', 'imports'];

/**
 * Checks the argument of `forRootAsync` itself (module-internal): a module option beside `useFactory` would be read
 * nowhere (its default would apply in silence), and Nest's `useClass` / `useExisting` are not taken.
 * @throws BackOfficeIdentityOptionsError naming the first wrong key.
 */
export function checkForRootAsyncKeys(options: Record<string, unknown>): void {
  const known = [...ASYNC_KEYS, ...BACKOFFICE_SWAP_KEYS];
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    if (KNOWN_KEYS['']!.includes(key)) {
      throw new BackOfficeIdentityOptionsError(key, 'is a module option, not an option of forRootAsync: return it from useFactory (only routePrefix and the swaps go beside useFactory)', options[key]);
    }
    if (key === 'useClass' || key === 'useExisting' || key === 'useValue') {
      throw new BackOfficeIdentityOptionsError(key, 'is not supported by forRootAsync: pass useFactory (with inject, e.g. inject: [MyConfig], useFactory: (config: MyConfig) => config.backOffice()), or forRoot({ ... }) for fixed options', options[key]);
    }
    throw new BackOfficeIdentityOptionsError(key, `is not a known option of forRootAsync (known: ${known.join(', ')})`, options[key]);
  }
  const inject = options.inject;
  if (inject === undefined) return;
  if (!Array.isArray(inject)) throw new BackOfficeIdentityOptionsError('inject', 'must be an array of DI tokens', inject);
  inject.forEach((token, index) => {
    const ok = ['string', 'symbol', 'function'].includes(typeof token) || (typeof token === 'object' && token !== null && 'token' in token && token.token !== undefined);
    if (!ok) {
      throw new BackOfficeIdentityOptionsError(`inject[${index}]`, 'must be a DI token (a class, string or symbol; undefined is usually a circular import of the token\'s file)', token);
    }
  });
}

/**
 * Validates the options and fills in the documented defaults.
 * @throws BackOfficeIdentityOptionsError naming the first wrong option.
 */
export function resolveBackOfficeIdentityOptions(options: BackOfficeIdentityOptions = {}): ResolvedBackOfficeIdentityOptions {
  if (typeof options !== 'object' || options === null) {
    throw new BackOfficeIdentityOptionsError('(options)', 'must be an object', options);
  }
  const root = new OptionReader(options as Record<string, unknown>, '');
  const password = root.section('password');
  const lockout = root.section('lockout');
  const session = root.section('session');
  const tokens = root.section('tokens');
  const rateLimits = root.section('rateLimits');
  const email = root.section('email');
  const notifications = root.section('notifications');
  const twoFactor = root.section('twoFactor');
  const database = root.section('database');
  const apiUsers = root.section('apiUsers');

  const passkeys = resolvePasskeys(root);
  if (passkeys && passkeys.origins.length === 0) {
    throw new BackOfficeIdentityOptionsError('passkeys.origins', 'must list at least one origin', []);
  }
  const requiredLength = password.int('requiredLength', 12, 1, 1024);
  const ipv6Subnet = rateLimits.int('ipv6Subnet', 64, 16, 128);
  const idleTimeoutMinutes = session.number('idleTimeoutMinutes', 20, 1, 60 * 24 * 30);
  const resolved: ResolvedBackOfficeIdentityOptions = {
    routePrefix: root.string('routePrefix', 'backoffice', /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, 'must be a path such as "backoffice" or "admin/api": ASCII letters, digits, "_" or "-" in segments separated by one "/" (no leading or trailing slash, no spaces)'),
    usernameIsEmail: root.bool('usernameIsEmail', true),
    password: {
      requiredLength,
      maxLength: password.int('maxLength', 256, requiredLength, 4096),
      rejectCommon: password.bool('rejectCommon', true),
      requireDigit: password.bool('requireDigit', false),
      requireLowercase: password.bool('requireLowercase', false),
      requireUppercase: password.bool('requireUppercase', false),
      requireNonLetterOrDigit: password.bool('requireNonLetterOrDigit', false),
      hashCost: password.int('hashCost', 12, 4, 20),
    },
    lockout: {
      maxFailedAccessAttempts: lockout.int('maxFailedAccessAttempts', 5, 1, 1000),
      durationMinutes: lockout.number('durationMinutes', 5, 0, 60 * 24 * 365),
    },
    session: {
      idleTimeoutMinutes,
      absoluteTimeoutHours: session.number('absoluteTimeoutHours', 12, 0.1, 24 * 365),
      cookieName: session.string('cookieName', 'backoffice_session', /^[A-Za-z0-9_.-]{1,64}$/, 'must be a cookie name of letters, digits, "_", "-" or "."'),
      secureCookies: session.bool('secureCookies', true),
      allowConcurrentLogins: session.bool('allowConcurrentLogins', true),
      reauthenticationMinutes: session.number('reauthenticationMinutes', 5, 0.1, 60 * 24),
    },
    database: {
      statementTimeoutMs: database.int('statementTimeoutMs', 5000, 0, 3_600_000),
      connectionTimeoutMs: database.int('connectionTimeoutMs', 5000, 0, 600_000),
    },
    tokens: {
      inviteLifespanHours: tokens.number('inviteLifespanHours', 72, 0.01, 24 * 365),
      passwordResetLifespanHours: tokens.number('passwordResetLifespanHours', 1, 0.01, 24 * 30),
    },
    rateLimits: {
      enabled: rateLimits.bool('enabled', true),
      loginPerIpAndUsername: rateLimits.int('loginPerIpAndUsername', 10, 1, 1_000_000),
      loginPerIp: rateLimits.int('loginPerIp', 100, 1, 1_000_000),
      forgotPasswordPerEmail: rateLimits.int('forgotPasswordPerEmail', 5, 1, 1_000_000),
      forgotPasswordPerIp: rateLimits.int('forgotPasswordPerIp', 20, 1, 1_000_000),
      tokenPerIpAndClient: rateLimits.int('tokenPerIpAndClient', 60, 1, 1_000_000),
      emailChangePerUser: rateLimits.int('emailChangePerUser', 5, 1, 1_000_000),
      profileChangePerUser: rateLimits.int('profileChangePerUser', 30, 1, 1_000_000),
      inviteResendPerUser: rateLimits.int('inviteResendPerUser', 5, 1, 1_000_000),
      passwordCheckPerIp: rateLimits.int('passwordCheckPerIp', 30, 1, 1_000_000),
      challengePerIp: rateLimits.int('challengePerIp', 30, 1, 1_000_000),
      ipv6Subnet,
      ipv6AggregateSubnet: ipv6AggregateSubnet(rateLimits, ipv6Subnet),
      ipv6AggregateMultiplier: rateLimits.int('ipv6AggregateMultiplier', 16, 1, 65_536),
      redisUrl: rateLimits.optionalUrl('redisUrl', ['redis:', 'rediss:']),
      redisKeyPrefix: rateLimits.string('redisKeyPrefix', 'backoffice:rl:', /^\S{1,64}$/u, 'must be 1 to 64 characters without spaces, such as "shop-admin:rl:"'),
    },
    email: {
      from: email.string('from', 'Back office <noreply@localhost>', /^[^\r\n]{3,256}$/, 'must be an address such as "Back office <noreply@example.com>"'),
      smtpUrl: email.optionalUrl('smtpUrl', ['smtp:', 'smtps:']),
      pickupDirectory: email.string('pickupDirectory', '.data/mail', /^[^\0]{1,1024}$/, 'must be a folder path'),
      sendTimeoutMs: email.int('sendTimeoutMs', 20_000, 100, 600_000),
      listenerTimeoutMs: email.int('listenerTimeoutMs', 10_000, 100, 600_000),
    },
    notifications: {
      listenerTimeoutMs: notifications.int('listenerTimeoutMs', DEFAULT_NOTIFICATION_LISTENER_TIMEOUT_MS, 100, 600_000),
    },
    twoFactor: {
      encryptionKey: twoFactor.optionalSecret('encryptionKey', 32),
      issuer: twoFactor.string('issuer', 'Back office', /^[^:\r\n]{1,64}$/, 'must be 1 to 64 characters without ":"'),
      providers: twoFactor.array('providers', isTwoFactorProvider, 'must be an array of two-factor providers ({ name, isSetUp, generateSetup, verify, reset })'),
      pendingMinutes: twoFactor.number('pendingMinutes', 5, 1, 60),
      enforcementGraceHours: twoFactor.number('enforcementGraceHours', 0, 0, 24 * 90),
    },
    apiUsers: {
      tokenLifetimeMinutes: apiUsers.number('tokenLifetimeMinutes', 10, 1, 24 * 60),
      maxSecretOverlapMinutes: apiUsers.number('maxSecretOverlapMinutes', 7 * 24 * 60, 0, 90 * 24 * 60),
    },
    passkeys,
    allowPasswordReset: root.bool('allowPasswordReset', true),
    denyLocalLogin: root.bool('denyLocalLogin', false),
    publicUrl: checkPublicUrl(root.url('publicUrl', 'http://localhost:3000', ['http:', 'https:'])),
    externalLogins: [],
    audit: resolveAudit(root, options.audit),
    maintenanceIntervalMinutes: root.number('maintenanceIntervalMinutes', 60, 0, 60 * 24 * 7),
    passwordValidators: root.array('passwordValidators', hasValidate, 'must be an array of objects with a validate() method'),
    userValidators: root.array('userValidators', hasValidate, 'must be an array of objects with a validate() method'),
    ui: resolveUi(root, options.ui, idleTimeoutMinutes),
    permissions: resolvePermissions(options.permissions),
  };
  checkCookieName(resolved.session);
  // Secure off is for plain-HTTP development only: an app its users reach over https has no reason to let the
  // session cookie travel on a plain-HTTP request (OWASP ASVS 4.0 3.4.1).
  // Secure cookies over plain http: browsers drop them (sign-in fails at the first request) except on loopback, and
  // every email link would carry its token in clear (OWASP ASVS 4.0 9.1.1).
  // The parsed URL, not the text: `HTTPS://` is https too, and 127.0.0.0/8 is all loopback.
  const { hostname: publicHost, protocol: publicProtocol } = new URL(resolved.publicUrl);
  const loopback = LOOPBACK_HOSTS.has(publicHost) || publicHost.endsWith('.localhost') || /^127(\.\d{1,3}){3}$/.test(publicHost);
  if (resolved.session.secureCookies && publicProtocol === 'http:' && !loopback) {
    throw new BackOfficeIdentityOptionsError(
      'publicUrl',
      'must be https:// while session.secureCookies is on (browsers drop Secure cookies over plain http off localhost, and email links would carry ' +
        'their tokens in clear): give the https:// URL your users reach (TLS may end at your proxy), or for plain-HTTP development turn session.secureCookies off',
      resolved.publicUrl,
    );
  }
  if (!resolved.session.secureCookies && publicProtocol === 'https:') {
    throw new BackOfficeIdentityOptionsError(
      'session.secureCookies',
      `must stay true while publicUrl is https ("${resolved.publicUrl}"): turn it off only for plain-HTTP development, with an http:// publicUrl`,
      false,
    );
  }
  resolved.externalLogins = resolveExternalLogins((options as Record<string, unknown>).externalLogins, resolved.publicUrl, resolved.routePrefix);
  // A provider with `denyLocalLogin` turns password sign-in off for everyone, as in Umbraco.
  if (resolved.externalLogins.some((p) => p.denyLocalLogin)) resolved.denyLocalLogin = true;
  return resolved;
}
