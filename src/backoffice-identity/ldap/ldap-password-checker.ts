import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { Logger } from '@nestjs/common';
import { Client, ResultCodeError, SizeLimitExceededError, type Entry } from 'ldapts';
import { CONTROL_CHARACTERS } from '../common/lookup-normalizer.js';
import { withinTimeLimit } from '../common/time-limit.js';
import { BackOfficeIdentityOptionsError } from '../options/resolve-options.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import type {
  BackOfficePasswordChecker,
  BackOfficePasswordCheckerResult,
  BackOfficeUnknownUserCheckResult,
} from '../users/passwords/password-checker.js';
import { escapeLdapDnValue, escapeLdapFilterValue } from './ldap-escape.js';

/** Options of {@link LdapPasswordChecker}. */
export interface LdapPasswordCheckerOptions {
  /** `ldap://host:389` or `ldaps://host:636`. */
  url: string;
  /** Service account for search-then-bind (omit both for an anonymous search). */
  bindDn?: string;
  bindPassword?: string;
  /** Where users are searched (search-then-bind), e.g. `ou=people,dc=example,dc=org`. */
  searchBase?: string;
  /** `{username}` is replaced by the escaped username (RFC 4515). Default `(mail={username})`. */
  searchFilter?: string;
  /**
   * Bind directly as this DN instead of searching, `{username}` replaced by the escaped username (RFC 4514),
   * e.g. `uid={username},ou=people,dc=example,dc=org`. Every username is then a directory user: a failed bind
   * is `invalid`, never a fall-back to the local hash.
   */
  userDnTemplate?: string;
  /** Upgrade an `ldap://` connection with StartTLS before any bind. Default false. */
  startTls?: boolean;
  /**
   * Allow a cleartext `ldap://` URL without `startTls`, or `tlsOptions.rejectUnauthorized: false`. Default false:
   * either fails construction, because every bind would send the service account's and the users' passwords in the
   * clear, or to whoever presents a certificate (OWASP ASVS 4.0 9.2.1, 9.2.2). Only for a directory on a trusted
   * loopback or a test; a warning is logged when it is used.
   */
  allowInsecureConnection?: boolean;
  /**
   * TLS options for `ldaps://` and StartTLS (e.g. `ca`, `servername`). Certificates are verified; `rejectUnauthorized:
   * false` fails construction unless `allowInsecureConnection` is set.
   */
  tlsOptions?: ConnectionOptions;
  /** Default 5000. */
  connectTimeoutMs?: number;
  /**
   * Timeout of each LDAP operation (and of the TLS handshake after StartTLS). Default 5000. One password check (the
   * whole conversation: connect, StartTLS, binds, search) takes at most `connectTimeoutMs + timeoutMs`; past that the
   * directory counts as down (`onDirectoryDown`).
   */
  timeoutMs?: number;
  /**
   * Keep the local password hash of users the directory authenticated. Default false: the directory owns their
   * password, so at their first directory sign-in the local hash is removed and they may not set a local password;
   * once removed from the directory (a "not found" answer falls back to the local hash) they cannot sign in.
   * True brings back the old behaviour (an offboarded user signs in with a remaining local password). Either way
   * the directory is the authority: the users it authenticated are marked directory-managed and get no
   * password-reset link by email (see `BackOfficePasswordChecker.marksDirectoryManaged`).
   */
  keepLocalPasswords?: boolean;
  /** Create a local user at the first directory sign-in of an unknown username. Default false. */
  createUsers?: boolean;
  /** Groups of users created from the directory. Default `['editor']`. */
  defaultGroups?: string[];
  /** Attributes that hold the name and email. Defaults `cn` and `mail`. */
  attributes?: { name?: string; email?: string };
  /**
   * When the directory cannot be reached (or the service bind fails): `fallback` checks the local hash,
   * `deny` answers `unavailable`: the sign-in is refused (401 `invalid_credentials`, audited as
   * `password_check_unavailable`) and counted toward no lockout. Default `deny`. Never a 500 either way.
   * Under `fallback` an outage signs in as without a directory: every username's failed attempts count and lock
   * alike (a local user's, a directory user's without a local hash, an unknown one's), so 423 reveals no account
   * (OWASP ASVS 5.0 6.3.8); whoever retries during the outage may be locked out when it ends. Choose `deny` for
   * the opposite trade-off (nobody is counted while the directory is down).
   */
  onDirectoryDown?: 'fallback' | 'deny';
}

type Resolved = Required<Omit<LdapPasswordCheckerOptions, 'allowInsecureConnection' | 'keepLocalPasswords' | 'bindDn' | 'bindPassword' | 'searchBase' | 'userDnTemplate' | 'tlsOptions' | 'attributes'>> &
  Pick<LdapPasswordCheckerOptions, 'bindDn' | 'bindPassword' | 'searchBase' | 'userDnTemplate' | 'tlsOptions'> & { attributes: { name: string; email: string } };

/** What the directory said about a username and password. */
interface DirectoryAnswer {
  result: BackOfficePasswordCheckerResult;
  entry?: Entry;
}

/** How far one directory conversation got, and whether it was given up (closed after its deadline). */
interface Conversation {
  at: 'connect' | 'user' | 'entry';
  closed: boolean;
}

/** LDAP result codes `busy` (51) and `unavailable` (52): the directory cannot answer now, an outage. */
const OUTAGE_RESULT_CODES = new Set([51, 52]);

const MAX_USERNAME = 256;
const MAX_PASSWORD = 1024;

/** An `ldap://` URL without StartTLS: every bind crosses the network in the clear. */
function isCleartext(options: LdapPasswordCheckerOptions): boolean {
  return options.url.startsWith('ldap:') && options.startTls !== true;
}

function resolve(options: LdapPasswordCheckerOptions): Resolved {
  const fail = (option: string, expectation: string, value: unknown): never => {
    throw new BackOfficeIdentityOptionsError(`ldap.${option}`, expectation, option.toLowerCase().includes('password') ? '***' : value);
  };
  if (typeof options !== 'object' || options === null) fail('options', 'must be an object', options);
  // Credentials in the URL (ldap://user:password@host) are never used by the client and never repeated in a message.
  const shownUrl = typeof options.url === 'string' ? options.url.replace(/^([a-z]+:\/\/).*@/i, '$1***@') : options.url;
  if (typeof options.url !== 'string' || !/^ldaps?:\/\/[^/@]+\/?$/.test(options.url)) {
    fail('url', 'must be an ldap:// or ldaps:// URL (host and port only; the service account goes in bindDn and bindPassword)', shownUrl);
  }
  const optionalString = (key: 'bindDn' | 'bindPassword' | 'searchBase' | 'searchFilter' | 'userDnTemplate') => {
    const value = options[key];
    if (value !== undefined && (typeof value !== 'string' || value.length === 0)) fail(key, 'must be a non-empty string', value);
  };
  (['bindDn', 'bindPassword', 'searchBase', 'searchFilter', 'userDnTemplate'] as const).forEach(optionalString);
  if ((options.bindDn === undefined) !== (options.bindPassword === undefined)) fail('bindPassword', 'must be set together with bindDn', options.bindPassword);
  if (options.userDnTemplate === undefined && options.searchBase === undefined) fail('searchBase', 'must be set (or userDnTemplate)', options.searchBase);
  if (options.userDnTemplate !== undefined && !options.userDnTemplate.includes('{username}')) fail('userDnTemplate', 'must contain {username}', options.userDnTemplate);
  const searchFilter = options.searchFilter ?? '(mail={username})';
  if (!searchFilter.includes('{username}') || !/^\(.*\)$/.test(searchFilter)) fail('searchFilter', 'must be a parenthesised filter containing {username}', searchFilter);
  const timeout = (key: 'connectTimeoutMs' | 'timeoutMs') => {
    const value = options[key] ?? 5000;
    if (!Number.isInteger(value) || value < 100 || value > 120_000) fail(key, 'must be an integer from 100 to 120000', value);
    return value;
  };
  const groups = options.defaultGroups ?? ['editor'];
  if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string' && g.length > 0)) fail('defaultGroups', 'must be a list of group aliases', groups);
  const onDirectoryDown = options.onDirectoryDown ?? 'deny';
  if (onDirectoryDown !== 'fallback' && onDirectoryDown !== 'deny') fail('onDirectoryDown', 'must be "fallback" or "deny"', onDirectoryDown);
  if (options.startTls !== undefined && typeof options.startTls !== 'boolean') fail('startTls', 'must be a boolean', options.startTls);
  if (options.startTls && options.url.startsWith('ldaps:')) fail('startTls', 'is for ldap:// URLs (ldaps:// is TLS already)', options.startTls);
  if (options.createUsers !== undefined && typeof options.createUsers !== 'boolean') fail('createUsers', 'must be a boolean', options.createUsers);
  if (options.keepLocalPasswords !== undefined && typeof options.keepLocalPasswords !== 'boolean') fail('keepLocalPasswords', 'must be a boolean', options.keepLocalPasswords);
  if (options.allowInsecureConnection !== undefined && typeof options.allowInsecureConnection !== 'boolean') {
    fail('allowInsecureConnection', 'must be a boolean', options.allowInsecureConnection);
  }
  if (options.tlsOptions?.rejectUnauthorized === false && options.allowInsecureConnection !== true) {
    fail(
      'tlsOptions',
      'turns certificate checks off (rejectUnauthorized: false): anyone in the path could take the passwords. Pass the CA ' +
        '(tlsOptions.ca) instead (only for a trusted loopback or test directory: allowInsecureConnection: true)',
      { rejectUnauthorized: false },
    );
  }
  if (isCleartext(options) && options.allowInsecureConnection !== true) {
    fail(
      'url',
      'is a cleartext ldap:// URL: binds would send passwords unencrypted. Use ldaps://, or set startTls: true, ' +
        '(only for a trusted loopback or test directory: allowInsecureConnection: true)',
      shownUrl,
    );
  }
  return {
    url: options.url,
    bindDn: options.bindDn,
    bindPassword: options.bindPassword,
    searchBase: options.searchBase,
    searchFilter,
    userDnTemplate: options.userDnTemplate,
    startTls: options.startTls ?? false,
    tlsOptions: options.tlsOptions,
    connectTimeoutMs: timeout('connectTimeoutMs'),
    timeoutMs: timeout('timeoutMs'),
    createUsers: options.createUsers ?? false,
    defaultGroups: [...groups],
    attributes: { name: options.attributes?.name ?? 'cn', email: options.attributes?.email ?? 'mail' },
    onDirectoryDown,
  };
}

/**
 * A {@link BackOfficePasswordChecker} against an LDAP directory (OpenLDAP, Active Directory), on `ldapts`:
 * search-then-bind with a service account (or a direct bind through a DN template), over LDAPS or StartTLS,
 * with connect and operation timeouts. Usernames are escaped for filters (RFC 4515) and DNs (RFC 4514).
 *
 * Answers: `valid` / `invalid` from the user's bind; `fallback` (the local hash decides) when the directory has
 * no such user; when the directory is unreachable, `fallback` or `unavailable` as `onDirectoryDown` says. It never
 * throws, so a directory outage is never a 500. Lockout, rate limits and unknown-user timing stay the module's.
 *
 * ```ts
 * BackOfficeIdentityModule.forRoot({
 *   passwordChecker: { useValue: new LdapPasswordChecker({ url: 'ldaps://ldap.example.com', bindDn, bindPassword,
 *     searchBase: 'ou=people,dc=example,dc=com', createUsers: true, defaultGroups: ['editor'] }) },
 * });
 * ```
 */
export class LdapPasswordChecker implements BackOfficePasswordChecker {
  private readonly logger = new Logger('BackOfficeLdap');
  /**
   * The resolved options, in an ES private field: the service account password (and any TLS key) never shows in a
   * printed, logged or serialised checker (`util.inspect`, `JSON.stringify`, a start-up error that quotes it).
   */
  readonly #options: Resolved;
  private lastOutageLog = 0;
  /** The directory owns the passwords of the users it authenticates (unless `keepLocalPasswords`). */
  readonly retiresLocalPasswords: boolean;
  /**
   * The directory is the authority for the passwords of the users it authenticates, also with `keepLocalPasswords`:
   * they are marked directory-managed and get no password-reset link by email.
   */
  readonly marksDirectoryManaged = true;

  constructor(options: LdapPasswordCheckerOptions) {
    this.#options = resolve(options);
    this.retiresLocalPasswords = options.keepLocalPasswords !== true;
    if (isCleartext(this.#options)) {
      this.logger.warn('allowInsecureConnection: the LDAP connection is cleartext ldap:// without StartTLS; passwords cross it unencrypted');
    }
    if (this.#options.tlsOptions?.rejectUnauthorized === false) {
      this.logger.warn('allowInsecureConnection: the LDAP server certificate is not checked (rejectUnauthorized: false)');
    }
  }

  /**
   * An outage under `onDirectoryDown: 'fallback'` answers `fallback` for every user, also one with no local hash
   * (one whose password the directory retired, or created by it): the sign-in then fails and counts as it would
   * without a directory. Answering `unavailable` (not counted) for those alone let wrong passwords lock the users
   * with a local hash only, so a 423 told which accounts exist (OWASP ASVS 5.0 6.3.8).
   */
  async checkPassword(user: BackOfficeUser, password: string): Promise<BackOfficePasswordCheckerResult> {
    return (await this.authenticate(user.username, password)).result;
  }

  /**
   * Asks the directory for a username with no local user; with `createUsers`, a `valid` answer carries the profile.
   * An outage answers as `onDirectoryDown` says, with or without `createUsers`: under `fallback` the attempt counts as
   * for any unknown username (as a local user's wrong password counts then: a 423 must not tell that a username has a
   * local account, OWASP ASVS 5.0 6.3.8), under `deny` it is `unavailable` (counted for nobody).
   */
  async checkUnknownUser(username: string, password: string): Promise<BackOfficeUnknownUserCheckResult> {
    const answer = await this.authenticate(username, password);
    if (answer.result !== 'valid' || !this.#options.createUsers || !answer.entry) return { result: answer.result === 'valid' ? 'invalid' : answer.result };
    const email = LdapPasswordChecker.firstValue(answer.entry, this.#options.attributes.email);
    const name = LdapPasswordChecker.firstValue(answer.entry, this.#options.attributes.name) ?? email;
    if (!email || !name) {
      this.logger.warn(`A directory user has no "${this.#options.attributes.email}" attribute: not created`);
      return { result: 'invalid' };
    }
    return { result: 'valid', user: { email, name, username: username.trim(), groups: [...this.#options.defaultGroups] } };
  }

  /** One directory conversation: connect, (StartTLS), find the user's DN, bind as the user. Never throws. */
  protected async authenticate(username: string, password: string): Promise<DirectoryAnswer> {
    const login = typeof username === 'string' ? username.trim() : '';
    // An empty password would be an "unauthenticated bind" (RFC 4513 5.1.2), which many servers accept.
    if (!login || login.length > MAX_USERNAME || CONTROL_CHARACTERS.test(login)) return { result: 'invalid' };
    if (typeof password !== 'string' || password.length === 0 || password.length > MAX_PASSWORD || password.includes('\u0000')) return { result: 'invalid' };
    const o = this.#options;
    // ldapts opens TLS at once whenever `tlsOptions` is set: give them only to ldaps:// (StartTLS takes its own).
    const tlsOptions = o.url.startsWith('ldaps:') ? { ...o.tlsOptions } : undefined;
    const client = new Client({ url: o.url, timeout: o.timeoutMs, connectTimeout: o.connectTimeoutMs, tlsOptions });
    const conversation: Conversation = { at: 'connect', closed: false };
    try {
      // One deadline for the whole conversation: a directory that answers each operation just within `timeoutMs`
      // would otherwise hold the sign-in for one timeout per step (connect, StartTLS, two binds, search, entry).
      return await withinTimeLimit(this.converse(client, login, password, conversation), o.connectTimeoutMs + o.timeoutMs, (): never => {
        throw Object.assign(new Error('The directory conversation timed out'), { name: 'TimeoutError' });
      });
    } catch (error) {
      // The directory answered the user's bind and did not accept it: invalid credentials (49), but also e.g. 53 for
      // a locked or inactivated account (389-DS). Never a fall-back to the local hash; only busy/unavailable is an outage.
      if (conversation.at === 'user' && error instanceof ResultCodeError && !OUTAGE_RESULT_CODES.has(error.code)) return { result: 'invalid' };
      return this.directoryDown(error);
    } finally {
      // A conversation past its deadline must not go on (ldapts would reconnect for its next bind).
      conversation.closed = true;
      await client.unbind().catch(() => undefined);
    }
  }

  /** Connect, (StartTLS), find the user's DN, bind as the user, read the entry; `conversation` says how far it got. */
  private async converse(client: Client, login: string, password: string, conversation: Conversation): Promise<DirectoryAnswer> {
    const o = this.#options;
    if (o.startTls) await this.withinTimeout(client.startTLS(this.startTlsOptions()), 'StartTLS');
    const dn = o.userDnTemplate ? o.userDnTemplate.split('{username}').join(escapeLdapDnValue(login)) : await this.findUserDn(client, login, conversation);
    if (dn === null) return { result: 'fallback' };
    if (dn === undefined) return { result: 'invalid' };
    LdapPasswordChecker.stillOpen(conversation);
    conversation.at = 'user';
    await client.bind(dn, password);
    // The password is right: a directory that then fails to give the entry is an outage, not a wrong password.
    LdapPasswordChecker.stillOpen(conversation);
    conversation.at = 'entry';
    const entry = o.createUsers ? await this.readEntry(client, dn) : undefined;
    return { result: 'valid', entry };
  }

  /**
   * `work` or a `TimeoutError` after `timeoutMs`. ldapts times out each LDAP message but not the TLS handshake that
   * follows StartTLS: a server that stalls there would otherwise hold the sign-in forever. The `finally` of
   * {@link authenticate} then closes the socket, which ends `work` (its late rejection is ignored).
   */
  private withinTimeout<T>(work: Promise<T>, step: string): Promise<T> {
    return withinTimeLimit(work, this.#options.timeoutMs, (): never => {
      throw Object.assign(new Error(`${step} timed out`), { name: 'TimeoutError' });
    });
  }

  /**
   * A fresh object each time (ldapts writes the socket into it), with the URL's host to check the certificate
   * against: on an upgraded socket Node would otherwise check it against "localhost".
   */
  private startTlsOptions(): ConnectionOptions {
    const host = new URL(this.#options.url).hostname.replace(/^\[|\]$/g, '');
    return { host, ...(isIP(host) ? {} : { servername: host }), ...this.#options.tlsOptions };
  }

  /** The DN of the one entry matching the filter: null when none, undefined when ambiguous. */
  private async findUserDn(client: Client, login: string, conversation: Conversation): Promise<string | null | undefined> {
    const o = this.#options;
    if (o.bindDn !== undefined) await client.bind(o.bindDn, o.bindPassword);
    LdapPasswordChecker.stillOpen(conversation);
    const filter = o.searchFilter.split('{username}').join(escapeLdapFilterValue(login));
    const entries = await client
      .search(o.searchBase!, { scope: 'sub', filter, attributes: ['dn'], sizeLimit: 2, timeLimit: Math.ceil(o.timeoutMs / 1000) })
      .then(
        (result) => result.searchEntries,
        (error: unknown) => {
          if (error instanceof SizeLimitExceededError) return null; // more than one match
          throw error;
        },
      );
    if (entries !== null && entries.length === 0) return null;
    if (entries === null || entries.length > 1) {
      this.logger.warn('The LDAP search filter matched more than one entry: sign-in refused');
      return undefined;
    }
    return entries[0].dn;
  }

  private async readEntry(client: Client, dn: string): Promise<Entry | undefined> {
    const { name, email } = this.#options.attributes;
    const { searchEntries } = await client.search(dn, { scope: 'base', attributes: [name, email], sizeLimit: 1 });
    return searchEntries[0];
  }

  private directoryDown(error: unknown): DirectoryAnswer {
    const now = Date.now();
    if (now - this.lastOutageLog > 60_000) {
      this.lastOutageLog = now;
      const kind = error instanceof Error ? `${error.name}${(error as { code?: unknown }).code ? ` ${(error as { code?: unknown }).code}` : ''}` : 'error';
      this.logger.warn(`LDAP directory unavailable (${kind}): answering ${this.#options.onDirectoryDown === 'fallback' ? 'fallback to the local hash' : 'unavailable (sign-ins refused, not counted)'}`);
    }
    // `deny`: `unavailable`, refused like a wrong password but counted toward no lockout (an outage is not a guess).
    return { result: this.#options.onDirectoryDown === 'fallback' ? 'fallback' : 'unavailable' };
  }

  /** Throws once the conversation was given up (its deadline passed): no further request goes to the directory. */
  private static stillOpen(conversation: Conversation): void {
    if (conversation.closed) throw Object.assign(new Error('The directory conversation was closed'), { name: 'TimeoutError' });
  }

  private static firstValue(entry: Entry, attribute: string): string | undefined {
    const value = entry[attribute];
    const first = Array.isArray(value) ? value[0] : value;
    const text = Buffer.isBuffer(first) ? first.toString('utf8') : first;
    return typeof text === 'string' && text.trim().length > 0 ? text.trim() : undefined;
  }
}
