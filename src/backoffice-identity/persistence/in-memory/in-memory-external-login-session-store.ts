import type {
  BackOfficeExternalLoginSessionRecord,
  BackOfficeExternalLoginSessionStore,
} from '../../external-logins/external-login-session-store.interface.js';

/** Sessions' external-login data in memory. */
export class InMemoryBackOfficeExternalLoginSessionStore implements BackOfficeExternalLoginSessionStore {
  private readonly records = new Map<string, BackOfficeExternalLoginSessionRecord>();

  async attach(sessionId: string, record: BackOfficeExternalLoginSessionRecord): Promise<void> {
    if (this.records.has(sessionId)) throw new Error('the session has its external login already');
    this.records.set(sessionId, { ...record });
  }

  async find(sessionId: string): Promise<BackOfficeExternalLoginSessionRecord | null> {
    const record = this.records.get(sessionId);
    return record ? { ...record } : null;
  }
}
