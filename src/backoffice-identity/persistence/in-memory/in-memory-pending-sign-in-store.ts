import type {
  BackOfficePendingSignIn,
  BackOfficePendingSignInKind,
  BackOfficePendingSignInMatch,
  BackOfficePendingSignInStore,
} from '../../sign-in/pending-sign-in-store.interface.js';
import { livePerUserCap } from '../../sign-in/pending-sign-in-store.interface.js';

const DAY_MS = 86_400_000;

/** `createdAt` and `seq` (creation order, for steps created at the same instant) order a user's capped steps for the cap. */
type Row = BackOfficePendingSignIn & { usedAt: Date | null; createdAt: number; seq: number };

const copy = ({ usedAt: _usedAt, createdAt: _createdAt, seq: _seq, slot: _slot, ...p }: Row): BackOfficePendingSignIn => ({ ...p, expiresAt: new Date(p.expiresAt) });

/** Pending sign-in steps in memory; `consume` checks and marks in one synchronous step, so one caller wins. */
export class InMemoryBackOfficePendingSignInStore implements BackOfficePendingSignInStore {
  private readonly rows = new Map<string, Row>();

  private seq = 0;

  /** Inserts, and caps the user's live steps of the kind and purpose, in one synchronous step (so concurrent creations too). */
  async create(pending: BackOfficePendingSignIn, now: Date): Promise<void> {
    const key = `${pending.kind}:${pending.keyHash}`;
    if (this.rows.has(key)) throw new Error('duplicate pending sign-in key');
    // A slot is a passkey challenge's (as in the TypeORM store): a step of another kind given one replaces nothing.
    if (pending.kind === 'passkey' && pending.slot !== undefined) for (const [k, r] of this.rows) if (r.kind === 'passkey' && r.slot === pending.slot) this.rows.delete(k);
    this.rows.set(key, { ...pending, expiresAt: new Date(pending.expiresAt), usedAt: null, createdAt: now.getTime(), seq: ++this.seq });
    const cap = livePerUserCap(pending);
    if (cap === null) return;
    const others = [...this.rows]
      .filter(([k, r]) => k !== key && r.kind === pending.kind && r.userId === pending.userId && r.purpose === pending.purpose && r.usedAt === null && r.expiresAt > now)
      .sort(([, a], [, b]) => b.createdAt - a.createdAt || b.seq - a.seq);
    for (const [k] of others.slice(cap - 1)) this.rows.delete(k);
  }

  private live(kind: BackOfficePendingSignInKind, keyHash: string, now: Date): Row | undefined {
    const row = this.rows.get(`${kind}:${keyHash}`);
    return row && row.usedAt === null && row.expiresAt > now ? row : undefined;
  }

  async find(kind: BackOfficePendingSignInKind, keyHash: string, now: Date): Promise<BackOfficePendingSignIn | null> {
    const row = this.live(kind, keyHash, now);
    return row ? copy(row) : null;
  }

  async consume(kind: BackOfficePendingSignInKind, keyHash: string, now: Date, match: BackOfficePendingSignInMatch = {}): Promise<BackOfficePendingSignIn | null> {
    const row = this.live(kind, keyHash, now);
    if (!row) return null;
    if (match.purpose !== undefined && row.purpose !== match.purpose) return null;
    if (match.browserHash !== undefined && row.browserHash !== match.browserHash) return null;
    if (match.userId !== undefined && row.userId !== match.userId) return null;
    if (match.slot !== undefined && (kind !== 'passkey' || row.slot !== match.slot)) return null;
    row.usedAt = now;
    return copy(row);
  }

  async prune(now: Date): Promise<{ twoFactorChallenges: number; passkeyChallenges: number; externalLoginStates: number }> {
    const result = { twoFactorChallenges: 0, passkeyChallenges: 0, externalLoginStates: 0 };
    const counter = { two_factor: 'twoFactorChallenges', passkey: 'passkeyChallenges', external_login: 'externalLoginStates' } as const;
    for (const [key, row] of this.rows) {
      // Passkey challenges and external login states once expired (find and consume treat them as unknown then).
      const expired = row.kind === 'two_factor' ? row.expiresAt.getTime() < now.getTime() - 7 * DAY_MS : row.expiresAt.getTime() <= now.getTime();
      if (expired) {
        this.rows.delete(key);
        result[counter[row.kind]]++;
      }
    }
    return result;
  }
}
