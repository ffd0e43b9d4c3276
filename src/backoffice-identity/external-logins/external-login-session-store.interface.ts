/** Which provider a session came through, with its ID token encrypted (or null without an encryption key). */
export interface BackOfficeExternalLoginSessionRecord {
  provider: string;
  encryptedIdToken: string | null;
}

/**
 * The external-login data of sessions, for RP-initiated logout. (The logins themselves, provider + key per
 * user, are the user store's `UserLoginStore` capability, as in ASP.NET Identity.) Rows go with their session.
 */
export interface BackOfficeExternalLoginSessionStore {
  attach(sessionId: string, record: BackOfficeExternalLoginSessionRecord): Promise<void>;
  find(sessionId: string): Promise<BackOfficeExternalLoginSessionRecord | null>;
}
