import type { BackOfficeListPage } from '../../common/list-page.js';
import { isLiveOnStamp } from '../../sessions/session-liveness.js';
import { byLastSeenThenId } from '../../sessions/session-order.js';
import { MAX_ANNOUNCED_SECURITY_STAMPS, type BackOfficeSession, type BackOfficeSessionChanges, type BackOfficeSessionStore } from '../../sessions/session-store.interface.js';
import type { BackOfficeUser } from '../../users/backoffice-user.js';
import type { BackOfficeUserStore } from '../../users/stores/user-store.interface.js';
import { copyDate, InMemoryBackOfficeState } from './in-memory-state.js';
import { InMemoryBackOfficeUserStore } from './in-memory-user-store.js';

const WEEK_MS = 7 * 86_400_000;

const copy = (s: BackOfficeSession): BackOfficeSession => ({
  ...s,
  createdAt: new Date(s.createdAt),
  lastSeenAt: new Date(s.lastSeenAt),
  expiresAt: new Date(s.expiresAt),
  reauthenticatedAt: copyDate(s.reauthenticatedAt),
  revokedAt: copyDate(s.revokedAt),
  ...(s.nextSecurityStamps ? { nextSecurityStamps: [...s.nextSecurityStamps] } : {}),
});

/** Sessions in memory; with the in-memory user store of the same state, session and user are read together. */
export class InMemoryBackOfficeSessionStore implements BackOfficeSessionStore {
  private readonly sessions = new Map<string, BackOfficeSession>();

  constructor(private readonly state: InMemoryBackOfficeState = new InMemoryBackOfficeState()) {}

  async create(session: BackOfficeSession): Promise<void> {
    for (const s of this.sessions.values()) if (s.tokenHash === session.tokenHash) throw new Error('duplicate session token');
    this.sessions.set(session.id, copy(session));
  }

  private byTokenHash(tokenHash: string): BackOfficeSession | undefined {
    for (const s of this.sessions.values()) if (s.tokenHash === tokenHash) return s;
    return undefined;
  }

  async findByTokenHash(tokenHash: string): Promise<BackOfficeSession | null> {
    const found = this.byTokenHash(tokenHash);
    return found ? copy(found) : null;
  }

  readsUsersOf(userStore: BackOfficeUserStore): boolean {
    return userStore instanceof InMemoryBackOfficeUserStore && userStore.state === this.state && userStore.findById === InMemoryBackOfficeUserStore.prototype.findById;
  }

  async findByTokenHashWithUser(tokenHash: string): Promise<{ session: BackOfficeSession; user: BackOfficeUser | null } | null> {
    const found = this.byTokenHash(tokenHash);
    if (!found) return null;
    const user = this.state.users.get(found.userId);
    return { session: copy(found), user: user ? this.state.toUser(user) : null };
  }

  async findById(userId: string, sessionId: string): Promise<BackOfficeSession | null> {
    const found = this.sessions.get(sessionId);
    return found && found.userId === userId ? copy(found) : null;
  }

  async listLive(userId: string, securityStamp: string, now: Date, seenAfter: Date): Promise<BackOfficeSession[]> {
    return [...this.sessions.values()]
      .filter((s) => s.userId === userId && s.revokedAt === null && isLiveOnStamp(s, securityStamp, now, seenAfter))
      .sort(byLastSeenThenId)
      .map(copy);
  }

  async listLivePage(userId: string, securityStamp: string, now: Date, seenAfter: Date, page: BackOfficeListPage): Promise<BackOfficeSession[]> {
    return (await this.listLive(userId, securityStamp, now, seenAfter)).slice(page.skip, page.skip + page.take);
  }

  async touch(sessionId: string, at: Date): Promise<void> {
    const s = this.sessions.get(sessionId);
    if (s && s.revokedAt === null && s.lastSeenAt < at) s.lastSeenAt = new Date(at);
  }

  async touchMany(touches: ReadonlyArray<{ sessionId: string; at: Date }>): Promise<void> {
    for (const { sessionId, at } of touches) await this.touch(sessionId, at);
  }

  async update(sessionId: string, changes: BackOfficeSessionChanges, options: { onlyIfLive?: boolean } = {}): Promise<void> {
    const s = this.sessions.get(sessionId);
    if (s && !(options.onlyIfLive && s.revokedAt !== null)) Object.assign(s, structuredClone(changes));
  }

  async replaceTokenHash(sessionId: string, previousTokenHash: string, tokenHash: string, changes: BackOfficeSessionChanges): Promise<boolean> {
    const s = this.sessions.get(sessionId);
    if (!s || s.revokedAt !== null || s.tokenHash !== previousTokenHash) return false;
    if (this.byTokenHash(tokenHash)) throw new Error('duplicate session token');
    Object.assign(s, structuredClone(changes), { tokenHash });
    return true;
  }

  async announceSecurityStamp(sessionId: string, nextSecurityStamp: string): Promise<void> {
    const s = this.sessions.get(sessionId);
    if (!s || s.revokedAt !== null) return;
    const held = this.state.users.get(s.userId)?.securityStamp;
    const announced = s.nextSecurityStamps ?? [];
    if (held !== undefined && announced.includes(held)) s.securityStamp = held;
    s.nextSecurityStamps = [...announced.filter((stamp) => stamp !== held), nextSecurityStamp].slice(-MAX_ANNOUNCED_SECURITY_STAMPS);
  }

  async adoptSecurityStamp(sessionId: string, securityStamp: string): Promise<boolean> {
    const s = this.sessions.get(sessionId);
    if (!s || s.revokedAt !== null || this.state.users.get(s.userId)?.securityStamp !== securityStamp) return false;
    s.securityStamp = securityStamp;
    if (s.nextSecurityStamps) s.nextSecurityStamps = s.nextSecurityStamps.filter((stamp) => stamp !== securityStamp);
    return true;
  }

  async revoke(userId: string, sessionId: string, now: Date): Promise<boolean> {
    const s = this.sessions.get(sessionId);
    if (!s || s.userId !== userId || s.revokedAt !== null) return false;
    s.revokedAt = new Date(now);
    return true;
  }

  async revokeAll(userId: string, now: Date, exceptSessionId?: string, live?: { securityStamp: string; seenAfter: Date }): Promise<number> {
    let count = 0;
    for (const s of this.sessions.values()) {
      if (s.userId === userId && s.revokedAt === null && s.id !== exceptSessionId) {
        // Counted only if it was live (listLive's rule), when the caller asks for that.
        const wasLive = !live || isLiveOnStamp(s, live.securityStamp, now, live.seenAfter);
        s.revokedAt = new Date(now);
        if (wasLive) count++;
      }
    }
    return count;
  }

  async revokeOthersIfLive(userId: string, keepSessionId: string, now: Date): Promise<number> {
    const keep = this.sessions.get(keepSessionId);
    if (!keep || keep.userId !== userId || keep.revokedAt !== null) return 0;
    return this.revokeAll(userId, now, keepSessionId);
  }

  async prune(now: Date): Promise<{ sessions: number }> {
    const weekAgo = new Date(now.getTime() - WEEK_MS);
    let sessions = 0;
    for (const [id, s] of this.sessions) {
      if (s.expiresAt < weekAgo || (s.revokedAt !== null && s.revokedAt < weekAgo) || !this.state.users.has(s.userId)) {
        this.sessions.delete(id);
        sessions++;
      }
    }
    return { sessions };
  }
}
