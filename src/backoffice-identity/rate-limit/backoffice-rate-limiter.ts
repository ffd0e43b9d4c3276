import { Inject, Injectable, Logger } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { sha256Hex } from '../common/crypto.js';
import { BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_RATE_LIMIT_STORAGE } from '../constants.js';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { ipRateLimitKey, ipv6AggregateKey } from './ip-rate-limit-key.js';

/** How often a storage outage that goes on is logged again. */
const OUTAGE_REMINDER_MS = 60_000;
/** An outage is over once the storage has answered for this long without a failure (one answer between failures is no recovery). */
const OUTAGE_RECOVERY_MS = 10_000;

/** One limit: at most `limit` hits per `windowSeconds` for `key`. */
export interface RateLimitRule {
  name: string;
  key: string;
  limit: number;
  windowSeconds: number;
}

/**
 * Applies fixed-window limits through a `@nestjs/throttler` storage (in-process by default, Redis when
 * configured). Keys are hashed with the rule's name ({@link storageKey}), so no username or email is kept in the
 * store and no two rules share a record. When the storage fails the
 * request goes through (lockout still protects accounts): one error line when it starts failing (again every
 * {@link OUTAGE_REMINDER_MS} while it goes on), one line once it has answered for {@link OUTAGE_RECOVERY_MS} without a failure, not one per request and rule.
 */
@Injectable()
export class BackOfficeRateLimiter {
  private readonly logger = new Logger('BackOfficeRateLimiter');
  /** While the storage fails: since when, how many calls failed, when that was last logged. */
  private outage: { since: number; failures: number; loggedAt: number; lastFailureAt: number } | null = null;

  constructor(
    @Inject(BACKOFFICE_RATE_LIMIT_STORAGE) private readonly storage: ThrottlerStorage,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
  ) {}

  /**
   * The sign-in rate rule, one place for every way in (password, second factor, passkey, external challenge,
   * client credentials, and the emailed-token routes: reset-password, invite accept, email-change confirm): at most `rateLimits.loginPerIp` attempts per minute from the request's IP ({@link clientKey}), counted
   * under `name`; with `subject` (a username, credential id or client id) also at most `subjectLimit`
   * (default `rateLimits.loginPerIpAndUsername`) per minute for that IP and subject, under `subject.name`. For an
   * IPv6 client the per-IP limit also bounds its wider prefix ({@link perIpRules}: a /56 by default).
   * The per-IP rules are counted first and the subject's only for requests it let through: a client over its per-IP
   * limit adds no counter per username (or id) it sends, so the store does not grow with its requests.
   * Throws 429 `too_many_requests` with `Retry-After` when one is over.
   */
  async enforceSignInPerIp(name: string, subject?: { name: string; key: string; limit?: number }): Promise<void> {
    const ip = this.clientKey();
    const limits = this.options.rateLimits;
    const rules: RateLimitRule[] = this.perIpRules(name, limits.loginPerIp, 60);
    if (subject) rules.push({ name: subject.name, key: `${ip}|${subject.key}`, limit: subject.limit ?? limits.loginPerIpAndUsername, windowSeconds: 60 });
    await this.enforceInOrder(rules);
  }

  /**
   * The rule of a signed-in user's password check (`POST /auth/reauthenticate`, `POST /auth/change-password`,
   * `POST /auth/2fa/disable`) and of the passkey step-up's assertion (`POST /auth/reauthenticate/passkey`): at most `rateLimits.passwordCheckPerIp` per minute from the request's IP (an IPv6
   * client's wider prefix too, {@link perIpRules}), one counter for the four routes: a counter per route let one client
   * guess four times the limit, and the user's failed-access count (lockout) is one for them already. Lockout bounds
   * the guesses per account, this one client's guesses across the accounts it holds sessions of (OWASP ASVS 5.0 6.3.1 /
   * 4.0 2.2.1). Throws 429 `too_many_requests` with `Retry-After` when it is over.
   */
  async enforcePasswordCheckPerIp(): Promise<void> {
    await this.enforceInOrder(this.perIpRules('password-check-ip', this.options.rateLimits.passwordCheckPerIp, 60));
  }

  /**
   * The rule of the signed-in user's own renames (`PUT /auth/me`, `PATCH /auth/passkeys/:id`), each an audit entry: at
   * most `rateLimits.profileChangePerUser` per hour for the user, one counter shared by both routes, every request
   * counted (before the name is compared or the passkey looked up). With `audit.retentionDays` 0 and lists newest first,
   * a stolen session cookie cannot bury the earlier entries under renames (OWASP ASVS 4.0 11.1.4 / 5.0 16.3.x).
   */
  async enforceProfileChangePerUser(userId: string): Promise<void> {
    await this.enforce([{ name: 'profile-change-user', key: userId, limit: this.options.rateLimits.profileChangePerUser, windowSeconds: 3600 }]);
  }

  /**
   * The rule of a signed-in route that stores a challenge until it expires (`POST /auth/passkeys/options`,
   * `POST /auth/reauthenticate/passkey/options`, `POST /auth/external/{provider}/link` and `.../reauthenticate`): at
   * most `rateLimits.challengePerIp` per minute from the request's IP (an IPv6 client's wider prefix too,
   * {@link perIpRules}), counted under `name`. A stolen or idle session cookie cannot fill the table of stored
   * challenges (OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1). Throws 429 `too_many_requests` with `Retry-After` when it is over.
   */
  async enforceChallengePerIp(name: string): Promise<void> {
    await this.enforceInOrder(this.perIpRules(name, this.options.rateLimits.challengePerIp, 60));
  }

  /**
   * The key of per-IP rules for the current request: its client IP, an IPv6 address as its `rateLimits.ipv6Subnet`
   * prefix (a /64 by default: one client holds all of it), `unknown` outside a request.
   */
  clientKey(): string {
    const ip = BackOfficeRequestContextStore.current().ipAddress;
    return ip ? ipRateLimitKey(ip, this.options.rateLimits.ipv6Subnet) : 'unknown';
  }

  /**
   * The rules of one per-IP limit, in the order {@link enforceInOrder} counts them: at most `limit` hits per
   * `windowSeconds` from the client ({@link clientKey}: an IPv6 client's `rateLimits.ipv6Subnet` prefix) under
   * `name`; for an IPv6 client also at most `limit` x `rateLimits.ipv6AggregateMultiplier` from its wider
   * `rateLimits.ipv6AggregateSubnet` prefix (a /56 by default) under `name:v6agg`. A client that holds a /56 owns
   * 256 /64s and would get a fresh per-IP budget with each; the wider count bounds that, while clients that share
   * a /56 are not held to one /64's limit together. The client's own rule comes first, so hits that it refuses do
   * not use up the budget its neighbours in the /56 share (each /64 adds at most `limit` per window to it). IPv4
   * addresses (also IPv4-mapped), and a wider prefix equal to the per-IP one, get no second rule.
   */
  perIpRules(name: string, limit: number, windowSeconds: number): RateLimitRule[] {
    const rules: RateLimitRule[] = [{ name, key: this.clientKey(), limit, windowSeconds }];
    const { ipv6Subnet, ipv6AggregateSubnet, ipv6AggregateMultiplier } = this.options.rateLimits;
    const ip = BackOfficeRequestContextStore.current().ipAddress;
    const wider = ip && ipv6AggregateSubnet < ipv6Subnet ? ipv6AggregateKey(ip, ipv6AggregateSubnet) : undefined;
    if (wider) rules.push({ name: `${name}:v6agg`, key: wider, limit: limit * ipv6AggregateMultiplier, windowSeconds });
    return rules;
  }

  /** Counts a hit on every rule; throws 429 `too_many_requests` with `Retry-After` when one is over. */
  async enforce(rules: RateLimitRule[]): Promise<void> {
    if (!this.options.rateLimits.enabled) return;
    let retryAfter = 0;
    for (const rule of rules) retryAfter = Math.max(retryAfter, await this.count(rule));
    BackOfficeRateLimiter.throwIfLimited(retryAfter);
  }

  /**
   * Counts the rules in order and stops at the first one that is over: the later rules are not counted for a
   * request an earlier one refused (a client over its per-IP limit cannot use up a per-address budget that other
   * clients share). Throws 429 `too_many_requests` with `Retry-After` when one is over.
   */
  async enforceInOrder(rules: RateLimitRule[]): Promise<void> {
    if (!this.options.rateLimits.enabled) return;
    for (const rule of rules) BackOfficeRateLimiter.throwIfLimited(await this.count(rule));
  }

  /** Counts a hit on one rule: the seconds until it allows one again when it is over, else 0 (also when the storage fails). */
  private async count(rule: RateLimitRule): Promise<number> {
    try {
      // No block duration: with one, the in-memory storage stops counting while blocked, and its block outlives
      // the hits that set it, so once those aged out every attempt went through uncounted until the block ended.
      // Without, it keeps a sliding log of the allowed hits and names when the oldest one ages out.
      const record = await this.storage.increment(BackOfficeRateLimiter.storageKey(rule), rule.windowSeconds * 1000, rule.limit, 0, rule.name);
      this.storageAnswered();
      if (record.totalHits > rule.limit) return record.timeToBlockExpire > 0 ? record.timeToBlockExpire : record.timeToExpire;
    } catch (error) {
      this.storageFailed(rule, error);
    }
    return 0;
  }

  /** Logs the start of an outage once, and a reminder every {@link OUTAGE_REMINDER_MS} while it lasts. */
  private storageFailed(rule: RateLimitRule, error: unknown): void {
    const now = Date.now();
    const reason = error instanceof Error ? error.message : String(error);
    if (!this.outage) {
      this.outage = { since: now, failures: 1, loggedAt: now, lastFailureAt: now };
      this.logger.error(`Rate-limit storage failed (${rule.name}: ${reason}): requests go through without rate limits until it answers again (lockout still protects accounts).`);
      return;
    }
    this.outage.failures++;
    this.outage.lastFailureAt = now;
    if (now - this.outage.loggedAt >= OUTAGE_REMINDER_MS) {
      this.outage.loggedAt = now;
      this.logger.error(`Rate-limit storage still failing (${rule.name}: ${reason}): ${this.outage.failures} calls went without rate limits since ${new Date(this.outage.since).toISOString()}.`);
    }
  }

  /**
   * Ends an outage once the storage has answered for {@link OUTAGE_RECOVERY_MS} since its last failure: one line
   * saying that the limits apply again (a storage that fails on and off stays one outage, not a line per failure).
   */
  private storageAnswered(): void {
    if (!this.outage || Date.now() - this.outage.lastFailureAt < OUTAGE_RECOVERY_MS) return;
    const { since, failures } = this.outage;
    this.outage = null;
    this.logger.log(`Rate-limit storage answers again after ${Math.round((Date.now() - since) / 1000)} s (${failures} calls went without rate limits): rate limits apply.`);
  }

  private static throwIfLimited(retryAfter: number): void {
    if (retryAfter > 0) {
      throw new BackOfficeHttpError(429, 'too_many_requests', 'Too many requests; try again later.', { retryAfterSeconds: retryAfter }, { 'Retry-After': String(retryAfter) });
    }
  }

  /**
   * The storage key of a rule's counter: SHA-256 of the rule's name and key. Each rule gets a record of its own: a
   * `@nestjs/throttler` storage keeps one block flag per key, so two rules on one key (e.g. two per-IP limits, or
   * the forgot-password email `"<ip>|<user>"` beside the login's IP + username) would let a blocked cheap rule
   * switch off the counting of the other.
   */
  static storageKey(rule: Pick<RateLimitRule, 'name' | 'key'>): string {
    return sha256Hex(`${rule.name}\u0000${rule.key}`);
  }
}
