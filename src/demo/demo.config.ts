import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  BackOfficeIdentityOptionsError,
  type BackOfficeExternalLoginProviderOptions,
  type BackOfficeIdentityOptions,
  type BackOfficePasswordChecker,
  FallbackPasswordChecker,
  LdapPasswordChecker,
  type LdapPasswordCheckerOptions,
  resolveBackOfficeIdentityOptions,
} from '../backoffice-identity/index.js';

/** Where the demo keeps its data. */
export type DemoDatabaseConfig =
  | { kind: 'embedded'; dataDir: string }
  | { kind: 'memory' }
  | { kind: 'postgres'; url: string };

/** Every setting of the demo app, read from the environment once at start (see `.env.example`). */
export interface DemoConfig {
  port: number;
  /** The Nest HTTP platform: Express (default) or Fastify. */
  httpPlatform: 'express' | 'fastify';
  production: boolean;
  /** Folder for the embedded database and the mail pickup folder. */
  dataDir: string;
  database: DemoDatabaseConfig;
  publicUrl: string;
  smtpUrl?: string;
  mailPickupDir: string;
  redisUrl?: string;
  adminEmail: string;
  /** Unset: a strong password is generated and printed once. */
  adminPassword?: string;
  bcryptCost: number;
  lockoutMaxAttempts: number;
  rateLimitsEnabled: boolean;
  secureCookies: boolean;
  /** Encrypts 2FA secrets and kept ID tokens at rest. */
  encryptionKey?: string;
  /** LDAP sign-in through the password checker, when `LDAP_URL` is set (section 9 of the contract). */
  ldap?: LdapPasswordCheckerOptions;
  /** The OpenID Connect provider `oidc` (contract section 6), when `OIDC_ISSUER` is set. */
  oidc?: DemoOidcConfig;
}

/** `OIDC_*`: one OpenID Connect provider, named `oidc`. */
export interface DemoOidcConfig {
  issuer: string;
  clientId: string;
  clientSecret?: string;
  displayName: string;
  autoLink: boolean;
  defaultGroups: string[];
  groupsClaim?: string;
  /** `OIDC_GROUP_MAPPING`: provider group -> back-office aliases; the only way the groups claim grants a group. */
  groupMapping: Record<string, string[]>;
  denyLocalLogin: boolean;
  autoRedirect: boolean;
}

/** A bad environment: one message per wrong variable, each naming the variable. */
export class DemoConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'DemoConfigError';
  }
}

export const DEFAULT_ADMIN_EMAIL = 'admin@example.com';

/** Values that are clearly meant to be replaced: refused when `NODE_ENV=production`. */
const PLACEHOLDER_SECRET = /^(?:<.*>|\$\{.*\}|x+|\*+)$|change.?me|replace.?me|placeholder|your.?(?:password|secret|key)|^(?:password|secret|admin|example|default|todo|test|demo)\d*$/i;

export function isPlaceholderSecret(value: string): boolean {
  return PLACEHOLDER_SECRET.test(value.trim());
}

/** `postgres://user:secret@host` -> `postgres://user:***@host`. */
export function maskPassword(url: string): string {
  return url.replace(/:[^:@/]*@/, ':***@');
}

function quote(value: string): string {
  return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
}

/** `cp .env.example .env`: reads `.env` from the working directory, if there is one. Variables already set win. */
export function readDotEnvFile(path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path);
}

/** Reads and validates the environment. @throws DemoConfigError listing every wrong variable. */
export function loadDemoConfig(env: NodeJS.ProcessEnv = process.env): DemoConfig {
  const problems: string[] = [];
  /** Empty counts as unset, so `VAR=` lines in `.env` files and compose `${VAR:-}` mean "default". */
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value ? value : undefined;
  };
  const fail = <T>(name: string, expectation: string, value: string, fallback: T): T => {
    problems.push(`${name} ${expectation} (got ${quote(value)})`);
    return fallback;
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
    return value >= min && value <= max ? value : fail(name, `must be an integer from ${min} to ${max}`, raw, fallback);
  };
  const onOff = (name: string, fallback: boolean): boolean => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const value = raw.toLowerCase();
    if (['on', 'true', '1', 'yes'].includes(value)) return true;
    if (['off', 'false', '0', 'no'].includes(value)) return false;
    return fail(name, 'must be "on" or "off"', raw, fallback);
  };
  const url = (name: string, protocols: string[], alternative = ''): string | undefined => {
    const raw = read(name);
    if (raw === undefined) return undefined;
    try {
      if (protocols.includes(new URL(raw).protocol)) return raw;
    } catch {
      // reported below
    }
    const expectation = `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}${alternative}`;
    return fail(name, expectation, maskPassword(raw), undefined);
  };

  const nodeEnv = read('NODE_ENV') ?? 'development';
  if (!['development', 'production', 'test'].includes(nodeEnv)) {
    fail('NODE_ENV', 'must be "development", "production" or "test"', nodeEnv, undefined);
  }
  const production = nodeEnv === 'production';
  const port = int('PORT', 3000, 0, 65535);
  const platform = (read('HTTP_PLATFORM') ?? 'express').toLowerCase();
  const httpPlatform = platform === 'express' || platform === 'fastify' ? platform : fail('HTTP_PLATFORM', 'must be "express" or "fastify"', platform, 'express' as const);
  const dataDir = read('BACKOFFICE_DATA_DIR') ?? '.data';

  let database: DemoDatabaseConfig = { kind: 'embedded', dataDir: join(dataDir, 'pglite') };
  if (read('DATABASE_URL') === 'memory://') database = { kind: 'memory' };
  else {
    const pgUrl = url('DATABASE_URL', ['postgres:', 'postgresql:'], ', or "memory://"');
    if (pgUrl) database = { kind: 'postgres', url: pgUrl };
  }

  const publicUrl = (url('PUBLIC_URL', ['http:', 'https:']) ?? `http://localhost:${port || 3000}`).replace(/\/+$/, '');
  // Not trimmed: the password is used exactly as given (empty still means unset).
  const adminPassword = env.BACKOFFICE_ADMIN_PASSWORD || undefined;
  const encryptionKey = read('BACKOFFICE_ENCRYPTION_KEY');
  if (encryptionKey !== undefined && encryptionKey.length < 32) {
    fail('BACKOFFICE_ENCRYPTION_KEY', 'must be at least 32 characters (e.g. `openssl rand -base64 32`)', '***', undefined);
  }

  let oidc: DemoOidcConfig | undefined;
  const oidcIssuer = url('OIDC_ISSUER', ['http:', 'https:']);
  if (oidcIssuer) {
    const clientId = read('OIDC_CLIENT_ID');
    if (!clientId) fail('OIDC_CLIENT_ID', 'must be set when OIDC_ISSUER is set (the client id registered at the provider)', '', undefined);
    const groups = read('OIDC_DEFAULT_GROUPS') ?? 'editor';
    oidc = {
      issuer: oidcIssuer,
      clientId: clientId ?? '',
      clientSecret: env.OIDC_CLIENT_SECRET || undefined,
      displayName: read('OIDC_DISPLAY_NAME') ?? 'Single sign-on',
      autoLink: onOff('OIDC_AUTO_LINK', true),
      defaultGroups: groups.split(',').map((g) => g.trim()).filter(Boolean),
      groupsClaim: read('OIDC_GROUPS_CLAIM'),
      groupMapping: readGroupMapping(read('OIDC_GROUP_MAPPING'), fail),
      denyLocalLogin: onOff('OIDC_DENY_LOCAL_LOGIN', false),
      autoRedirect: onOff('OIDC_AUTO_REDIRECT', false),
    };
    // The mapping only maps the groups claim: without one it does nothing (docker compose sets both by default).
    if (oidc.groupsClaim === undefined && Object.keys(oidc.groupMapping).length > 0) {
      problems.push(
        'OIDC_GROUP_MAPPING is set without OIDC_GROUPS_CLAIM (the mapping maps the provider\'s groups claim and does nothing without one): ' +
          'set the claim too, e.g. OIDC_GROUPS_CLAIM=groups, or unset OIDC_GROUP_MAPPING',
      );
    }
  }

  const config: DemoConfig = {
    port,
    httpPlatform,
    production,
    dataDir,
    database,
    publicUrl,
    smtpUrl: url('SMTP_URL', ['smtp:', 'smtps:']),
    mailPickupDir: read('MAIL_PICKUP_DIR') ?? join(dataDir, 'mail'),
    redisUrl: url('REDIS_URL', ['redis:', 'rediss:']),
    adminEmail: read('BACKOFFICE_ADMIN_EMAIL') ?? DEFAULT_ADMIN_EMAIL,
    adminPassword,
    bcryptCost: int('BACKOFFICE_BCRYPT_COST', 12, 4, 20),
    lockoutMaxAttempts: int('BACKOFFICE_LOCKOUT_MAX_ATTEMPTS', 5, 1, 1000),
    rateLimitsEnabled: onOff('BACKOFFICE_RATE_LIMITS', true),
    // Off only for plain-HTTP development: on in production and whenever PUBLIC_URL is https.
    secureCookies: onOff('BACKOFFICE_SECURE_COOKIES', production || isHttps(publicUrl)),
    encryptionKey,
    oidc,
  };

  config.ldap = readLdapConfig(read, url, onOff, fail);

  if (production) {
    if (oidc?.clientSecret !== undefined && isPlaceholderSecret(oidc.clientSecret)) {
      problems.push('OIDC_CLIENT_SECRET is a placeholder: NODE_ENV=production refuses it');
    }
    if (adminPassword !== undefined && isPlaceholderSecret(adminPassword)) {
      problems.push('BACKOFFICE_ADMIN_PASSWORD is a placeholder: NODE_ENV=production refuses it (unset it to get a generated password printed once)');
    }
    if (encryptionKey === undefined) {
      problems.push('BACKOFFICE_ENCRYPTION_KEY is not set: NODE_ENV=production refuses to start without it (it encrypts 2FA secrets at rest)');
    } else if (isPlaceholderSecret(encryptionKey)) {
      problems.push('BACKOFFICE_ENCRYPTION_KEY is a placeholder: NODE_ENV=production refuses it');
    }
    if (!config.secureCookies) {
      problems.push('BACKOFFICE_SECURE_COOKIES is off: NODE_ENV=production refuses cookies without the Secure flag');
    }
    if (!isHttps(publicUrl)) {
      problems.push(`PUBLIC_URL must be an https:// URL when NODE_ENV=production (got ${quote(publicUrl)})`);
    }
  }

  if (problems.length === 0) checkModuleOptions(config, problems);
  if (problems.length > 0) throw new DemoConfigError(problems);
  return config;
}

/** An https URL, whatever the case of its scheme (`HTTPS://` is https too). */
function isHttps(url: string): boolean {
  try {
    return new URL(url).protocol === 'https:';
  } catch {
    return false;
  }
}

/**
 * The variable each module option comes from (longest matching prefix wins), so that a value the module refuses is
 * reported by the variable the operator set, not by an option name of the code.
 */
const VARIABLE_OF_OPTION: Array<[option: string, variable: string]> = [
  ['publicUrl', 'PUBLIC_URL'],
  ['passkeys', 'PUBLIC_URL'],
  ['password.hashCost', 'BACKOFFICE_BCRYPT_COST'],
  ['lockout.maxFailedAccessAttempts', 'BACKOFFICE_LOCKOUT_MAX_ATTEMPTS'],
  ['session.secureCookies', 'BACKOFFICE_SECURE_COOKIES'],
  ['email.smtpUrl', 'SMTP_URL'],
  ['email.pickupDirectory', 'MAIL_PICKUP_DIR'],
  ['rateLimits.redisUrl', 'REDIS_URL'],
  ['rateLimits', 'BACKOFFICE_RATE_LIMITS'],
  ['twoFactor.encryptionKey', 'BACKOFFICE_ENCRYPTION_KEY'],
  ['externalLogins[0].issuer', 'OIDC_ISSUER'],
  ['externalLogins[0].clientId', 'OIDC_CLIENT_ID'],
  ['externalLogins[0].clientSecret', 'OIDC_CLIENT_SECRET'],
  ['externalLogins[0].displayName', 'OIDC_DISPLAY_NAME'],
  ['externalLogins[0].scopes', 'OIDC_GROUPS_CLAIM'],
  ['externalLogins[0].autoLink.groupsClaim', 'OIDC_GROUPS_CLAIM'],
  ['externalLogins[0].autoLink.groupMapping', 'OIDC_GROUP_MAPPING'],
  ['externalLogins[0].autoLink.defaultGroups', 'OIDC_DEFAULT_GROUPS'],
  ['externalLogins', 'OIDC_ISSUER'],
];

/** Variables whose value is never printed. */
const SECRET_VARIABLES = new Set(['OIDC_CLIENT_SECRET', 'BACKOFFICE_ENCRYPTION_KEY']);

/**
 * Runs the module's own validation on the options the demo builds, and reports a refusal as one line naming the
 * variable (`PUBLIC_URL: BackOfficeIdentityModule: option "publicUrl" must be ...`) instead of a stack from Nest.
 */
function checkModuleOptions(config: DemoConfig, problems: string[]): void {
  try {
    resolveBackOfficeIdentityOptions(identityOptionsFrom(config));
  } catch (error) {
    if (!(error instanceof BackOfficeIdentityOptionsError)) throw error;
    const match = VARIABLE_OF_OPTION.filter(([option]) => error.option === option || error.option.startsWith(`${option}.`) || error.option.startsWith(`${option}[`))
      .sort((a, b) => b[0].length - a[0].length)[0];
    const variable = match?.[1] ?? 'the demo\'s environment';
    const message = SECRET_VARIABLES.has(variable) ? error.message.replace(/ \(got [\s\S]*\)$/, ' (got ***)') : error.message;
    problems.push(`${variable}: ${message.replace(/[\r\n]+/g, ' ')}`);
  }
}

const GROUP_ALIAS = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * `OIDC_GROUP_MAPPING`: comma-separated `providerGroup=alias` pairs (`editor=editor,writer=writer`); a provider group
 * named twice grants both aliases. Unset: no mapping, so the groups claim grants nothing.
 */
function readGroupMapping(raw: string | undefined, fail: <T>(name: string, expectation: string, value: string, fallback: T) => T): Record<string, string[]> {
  if (raw === undefined) return {};
  const mapping: Record<string, string[]> = {};
  for (const pair of raw.split(',')) {
    const [providerGroup, alias, ...rest] = pair.split('=').map((part) => part.trim());
    if (rest.length > 0 || !providerGroup || providerGroup.length > 256 || alias === undefined || !GROUP_ALIAS.test(alias)) {
      return fail('OIDC_GROUP_MAPPING', 'must be comma-separated providerGroup=alias pairs, e.g. "editor=editor,writer=writer"', raw, {});
    }
    mapping[providerGroup] = [...new Set([...(mapping[providerGroup] ?? []), alias])];
  }
  return mapping;
}

/** `LDAP_*`: the LDAP password checker's options, or undefined when `LDAP_URL` is unset. */
function readLdapConfig(
  read: (name: string) => string | undefined,
  url: (name: string, protocols: string[]) => string | undefined,
  onOff: (name: string, fallback: boolean) => boolean,
  fail: <T>(name: string, expectation: string, value: string, fallback: T) => T,
): LdapPasswordCheckerOptions | undefined {
  const ldapUrl = url('LDAP_URL', ['ldap:', 'ldaps:']);
  if (!ldapUrl) return undefined;
  const bindDn = read('LDAP_BIND_DN');
  const bindPassword = read('LDAP_BIND_PASSWORD');
  if ((bindDn === undefined) !== (bindPassword === undefined)) fail('LDAP_BIND_PASSWORD', 'must be set together with LDAP_BIND_DN', '***', undefined);
  const searchBase = read('LDAP_SEARCH_BASE') ?? fail('LDAP_SEARCH_BASE', 'must be set when LDAP_URL is set', '', 'dc=invalid');
  const searchFilter = read('LDAP_SEARCH_FILTER') ?? '(mail={username})';
  if (!/^\(.*\{username\}.*\)$/.test(searchFilter)) fail('LDAP_SEARCH_FILTER', 'must be a parenthesised filter containing {username}', searchFilter, undefined);
  const groups = (read('LDAP_DEFAULT_GROUPS') ?? 'editor').split(',').map((g) => g.trim()).filter(Boolean);
  if (!groups.every((g) => GROUP_ALIAS.test(g))) fail('LDAP_DEFAULT_GROUPS', 'must be comma-separated group aliases', groups.join(','), undefined);
  const down = read('LDAP_ON_DIRECTORY_DOWN') ?? 'deny';
  if (down !== 'deny' && down !== 'fallback') fail('LDAP_ON_DIRECTORY_DOWN', 'must be "deny" or "fallback"', down, undefined);
  return {
    url: ldapUrl.replace(/\/+$/, ''),
    ...(bindDn !== undefined && bindPassword !== undefined ? { bindDn, bindPassword } : {}),
    searchBase,
    searchFilter,
    startTls: onOff('LDAP_START_TLS', false),
    allowInsecureConnection: onOff('LDAP_ALLOW_INSECURE', false),
    keepLocalPasswords: onOff('LDAP_KEEP_LOCAL_PASSWORDS', false),
    createUsers: onOff('LDAP_CREATE_USERS', false),
    defaultGroups: groups,
    onDirectoryDown: down === 'fallback' ? 'fallback' : 'deny',
  };
}

/**
 * Passkeys from `PUBLIC_URL`: the rp id is its host name and the one allowed origin is its origin. An IP
 * address cannot be a WebAuthn rp id, and browsers allow plain http only on localhost: then passkeys are off.
 */
export function passkeyOptionsFrom(publicUrl: string): BackOfficeIdentityOptions['passkeys'] {
  const url = new URL(publicUrl);
  const host = url.hostname;
  const isIp = /^\d+(\.\d+){3}$/.test(host) || host.startsWith('[');
  const local = host === 'localhost' || host.endsWith('.localhost');
  if (isIp || (url.protocol !== 'https:' && !local)) return undefined;
  return { rpId: host, rpName: 'backoffice-identity demo', origins: [url.origin] };
}

/** Maps the demo's environment to the module's options. */
export function identityOptionsFrom(config: DemoConfig): BackOfficeIdentityOptions {
  return {
    passkeys: passkeyOptionsFrom(config.publicUrl),
    publicUrl: config.publicUrl,
    password: { hashCost: config.bcryptCost },
    lockout: { maxFailedAccessAttempts: config.lockoutMaxAttempts },
    session: { secureCookies: config.secureCookies },
    email: { smtpUrl: config.smtpUrl, pickupDirectory: config.mailPickupDir },
    rateLimits: { enabled: config.rateLimitsEnabled, redisUrl: config.redisUrl },
    twoFactor: { encryptionKey: config.encryptionKey, issuer: 'backoffice-identity demo' },
    externalLogins: config.oidc ? [oidcProviderFrom(config.oidc)] : [],
  };
}

/** The demo's provider `oidc`; its callback URL is `<PUBLIC_URL>/backoffice/auth/external/oidc/callback`. */
function oidcProviderFrom(oidc: DemoOidcConfig): BackOfficeExternalLoginProviderOptions {
  return {
    name: 'oidc',
    displayName: oidc.displayName,
    issuer: oidc.issuer,
    clientId: oidc.clientId,
    clientSecret: oidc.clientSecret,
    scopes: ['openid', 'email', 'profile', ...(oidc.groupsClaim ? [oidc.groupsClaim] : [])],
    denyLocalLogin: oidc.denyLocalLogin,
    autoRedirect: oidc.autoRedirect,
    autoLink: { enabled: oidc.autoLink, defaultGroups: oidc.defaultGroups, groupsClaim: oidc.groupsClaim, groupMapping: oidc.groupMapping },
  };
}

/** The password checker of the demo: LDAP when `LDAP_URL` is set, else the local hash only. */
export function passwordCheckerFrom(config: DemoConfig): BackOfficePasswordChecker {
  return config.ldap ? new LdapPasswordChecker(config.ldap) : new FallbackPasswordChecker();
}

/** One-line description of the database for the start line; never shows a password. */
export function describeDatabase(database: DemoDatabaseConfig): string {
  switch (database.kind) {
    case 'embedded':
      return `embedded PGlite ${database.dataDir}`;
    case 'memory':
      return 'in-memory PGlite (data is lost on exit)';
    case 'postgres':
      return `PostgreSQL ${maskPassword(database.url)}`;
  }
}
