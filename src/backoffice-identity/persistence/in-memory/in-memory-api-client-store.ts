import { countedPage, type BackOfficeListPage } from '../../common/list-page.js';
import type {
  BackOfficeAccessTokenRecord,
  BackOfficeApiClient,
  BackOfficeApiClientListing,
  BackOfficeApiClientStore,
} from '../../api-users/api-client-store.interface.js';
import type { FailedAccessResult, LockoutPolicy } from '../../users/stores/user-store.interface.js';
import { copyDate, InMemoryBackOfficeState } from './in-memory-state.js';

const copy = (c: BackOfficeApiClient): BackOfficeApiClient => ({
  ...c,
  previousSecretExpiresAt: copyDate(c.previousSecretExpiresAt),
  lockoutEnd: copyDate(c.lockoutEnd),
  createdAt: new Date(c.createdAt),
  rotatedAt: copyDate(c.rotatedAt),
});

/** API clients and bearer tokens in memory; a client goes with its user (as the foreign key's cascade does). */
export class InMemoryBackOfficeApiClientStore implements BackOfficeApiClientStore {
  private readonly clients = new Map<string, BackOfficeApiClient>();
  private readonly tokens = new Map<string, BackOfficeAccessTokenRecord>();

  constructor(private readonly state: InMemoryBackOfficeState = new InMemoryBackOfficeState()) {}

  /** The client of a user that still exists. */
  private byUser(userId: string): BackOfficeApiClient | undefined {
    const client = this.clients.get(userId);
    return client && this.state.users.has(userId) ? client : undefined;
  }

  async createClient(userId: string, clientId: string, secretHash: string, now: Date): Promise<void> {
    if (!this.state.users.has(userId)) throw new Error(`Unknown user "${userId}"`);
    if ([...this.clients.values()].some((c) => c.clientId === clientId) || this.clients.has(userId)) throw new Error('duplicate API client');
    this.clients.set(userId, {
      userId,
      clientId,
      secretHash,
      previousSecretHash: null,
      previousSecretExpiresAt: null,
      accessFailedCount: 0,
      lockoutEnd: null,
      createdAt: new Date(now),
      rotatedAt: null,
    });
  }

  async findClient(clientId: string): Promise<BackOfficeApiClient | null> {
    for (const c of this.clients.values()) if (c.clientId === clientId && this.state.users.has(c.userId)) return copy(c);
    return null;
  }

  async listClients(): Promise<BackOfficeApiClientListing[]> {
    return [...this.clients.values()]
      .filter((c) => this.state.users.has(c.userId))
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.userId < b.userId ? -1 : 1))
      .map((c) => {
        const user = this.state.toUser(this.state.users.get(c.userId)!);
        return { client: copy(c), name: user.name, isApproved: user.isApproved, groups: user.groups };
      });
  }

  async listClientsPage(page: BackOfficeListPage): Promise<{ items: BackOfficeApiClientListing[]; total: number; totalExact: boolean }> {
    return countedPage(await this.listClients(), page);
  }

  async rotateSecret(userId: string, secretHash: string, previousSecretExpiresAt: Date | null, now: Date): Promise<string | null> {
    const c = this.byUser(userId);
    if (!c) return null;
    Object.assign(c, {
      previousSecretHash: previousSecretExpiresAt === null ? null : c.secretHash,
      previousSecretExpiresAt: copyDate(previousSecretExpiresAt),
      secretHash,
      rotatedAt: new Date(now),
      accessFailedCount: 0,
      lockoutEnd: null,
    });
    return c.clientId;
  }

  async recordFailedAccess(userId: string, policy: LockoutPolicy, now: Date): Promise<FailedAccessResult> {
    const c = this.byUser(userId);
    if (!c || (c.lockoutEnd !== null && c.lockoutEnd > now)) return { alreadyLocked: true, lockedNow: false, accessFailedCount: 0, lockoutEnd: null };
    const next = c.accessFailedCount + 1;
    if (next >= policy.maxFailedAccessAttempts) Object.assign(c, { accessFailedCount: 0, lockoutEnd: new Date(policy.lockoutEnd) });
    else c.accessFailedCount = next;
    const lockoutEnd = copyDate(c.lockoutEnd);
    return { alreadyLocked: false, lockedNow: lockoutEnd !== null && lockoutEnd > now, accessFailedCount: c.accessFailedCount, lockoutEnd };
  }

  async resetAccessFailedCount(userId: string): Promise<void> {
    const c = this.byUser(userId);
    if (c) c.accessFailedCount = 0;
  }

  async clearLockout(userId: string): Promise<void> {
    const c = this.byUser(userId);
    if (c) Object.assign(c, { accessFailedCount: 0, lockoutEnd: null });
  }

  async createAccessToken(userId: string, tokenHash: string, now: Date, expiresAt: Date, issuedFor?: { secretHash: string }): Promise<false | Date> {
    if (this.tokens.has(tokenHash)) throw new Error('duplicate access token');
    if (issuedFor && !this.stillIssuable(userId, issuedFor.secretHash, now)) return false;
    // A token of the previous secret ends no later than that secret (also one checked while it was still current).
    const c = issuedFor ? this.byUser(userId) : undefined;
    const end = c && c.secretHash !== issuedFor!.secretHash && c.previousSecretExpiresAt && c.previousSecretExpiresAt < expiresAt ? c.previousSecretExpiresAt : expiresAt;
    this.tokens.set(tokenHash, { userId, expiresAt: new Date(end), revokedAt: null });
    return new Date(end);
  }

  /** The client still has this secret (current, or previous within its overlap), is not locked, and its user is enabled. */
  private stillIssuable(userId: string, secretHash: string, now: Date): boolean {
    const c = this.byUser(userId);
    const previous = c?.previousSecretHash === secretHash && c.previousSecretExpiresAt !== null && c.previousSecretExpiresAt > now;
    const locked = c?.lockoutEnd != null && c.lockoutEnd > now;
    return !!c && !locked && this.state.users.get(userId)?.isApproved === true && (c.secretHash === secretHash || previous);
  }

  async findAccessToken(tokenHash: string): Promise<BackOfficeAccessTokenRecord | null> {
    const t = this.tokens.get(tokenHash);
    return t && this.state.users.has(t.userId) ? { userId: t.userId, expiresAt: new Date(t.expiresAt), revokedAt: copyDate(t.revokedAt) } : null;
  }

  async revokeAccessTokens(userId: string, now: Date): Promise<number> {
    let count = 0;
    for (const t of this.tokens.values()) {
      if (t.userId === userId && t.revokedAt === null) {
        t.revokedAt = new Date(now);
        count++;
      }
    }
    return count;
  }

  async prune(now: Date): Promise<{ accessTokens: number }> {
    const dayAgo = now.getTime() - 86_400_000;
    let accessTokens = 0;
    for (const [hash, t] of this.tokens) {
      if (t.expiresAt.getTime() < dayAgo) {
        this.tokens.delete(hash);
        accessTokens++;
      }
    }
    return { accessTokens };
  }
}
