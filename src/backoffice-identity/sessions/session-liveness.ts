import type { BackOfficeSessionOptions } from '../options/backoffice-identity-options.interface.js';
import type { BackOfficeSession } from './session-store.interface.js';

/**
 * The session timeouts in whole milliseconds, rounded once: the options take fractions of minutes and hours, and a
 * fractional length made `now - lastSeenAt < idleMs` and `lastSeenAt > new Date(now - idleMs)` (the stores' rule)
 * disagree at the boundary through floating-point rounding. Every deadline and liveness check uses these.
 */
export function sessionTimeoutsMs(session: Required<Pick<BackOfficeSessionOptions, 'idleTimeoutMinutes' | 'absoluteTimeoutHours' | 'reauthenticationMinutes'>>): {
  idleMs: number;
  absoluteMs: number;
  reauthenticationMs: number;
} {
  return {
    idleMs: minutesToMs(session.idleTimeoutMinutes),
    absoluteMs: Math.round(session.absoluteTimeoutHours * 3_600_000),
    reauthenticationMs: minutesToMs(session.reauthenticationMinutes),
  };
}

/** `minutes` in whole milliseconds. */
export function minutesToMs(minutes: number): number {
  return Math.round(minutes * 60_000);
}

/** The `seenAfter` of {@link isLiveOnStamp} at `now`: a session last seen at or before it is idle. `idleMs` whole (see {@link sessionTimeoutsMs}). */
export function idleCutoff(now: Date, idleMs: number): Date {
  return new Date(now.getTime() - idleMs);
}

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
  return holdsStamp(session, securityStamp) && isUnexpired(session, now, seenAfter);
}

/** {@link isLiveOnStamp} without the stamp: before its absolute end and seen after `seenAfter` (not idle). */
export function isUnexpired(session: Pick<BackOfficeSession, 'expiresAt' | 'lastSeenAt'>, now: Date, seenAfter: Date): boolean {
  return session.expiresAt > now && session.lastSeenAt > seenAfter;
}
