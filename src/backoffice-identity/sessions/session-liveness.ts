import type { BackOfficeSession } from './session-store.interface.js';

/** True when the session is signed in under the user's `securityStamp`: its own, or one of those it announced. */
export function holdsStamp(session: Pick<BackOfficeSession, 'securityStamp' | 'nextSecurityStamps'>, securityStamp: string): boolean {
  return session.securityStamp === securityStamp || (!!session.nextSecurityStamps && session.nextSecurityStamps.includes(securityStamp));
}

/**
 * The rule of a live session that a store's `listLive` lists and its `revokeAll` with `live` counts: on the user's
 * stamp ({@link holdsStamp}), before its absolute end, seen after `seenAfter` (not idle). Not revoked is the
 * caller's part. The built-in TypeORM store writes the same rule as SQL (`liveSessionSql`).
 */
export function isLiveOnStamp(session: BackOfficeSession, securityStamp: string, now: Date, seenAfter: Date): boolean {
  return holdsStamp(session, securityStamp) && session.expiresAt > now && session.lastSeenAt > seenAfter;
}
