import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { typeOrmOptionsFor } from '../support/identity-app.js';
import { backOfficeIdentityEntities, TypeOrmBackOfficeSessionStore, TypeOrmBackOfficeUserStore, type BackOfficeSession } from '../../src/backoffice-identity/index.js';
import { randomToken, sha256Hex } from '../../src/backoffice-identity/common/crypto.js';
import { statementsSentDuring } from '../support/sent-statements.js';
import { serviceWithTouchesHeldBack } from '../support/touches-held-back.js';

const MINUTE_MS = 60_000;

/**
 * The session service on the built-in TypeORM store, whose last-seen writes (after the response) have not run yet: a
 * session last seen 19 minutes ago is slid by a request, then read 2 minutes later, when its stored row is 21 minutes
 * old (idle timeout 20 minutes) and the slid session 2 minutes old. Listing and ending the user's sessions see it live.
 */
describe('the session store lists and counts a session slid by a last-seen write not committed yet (OWASP ASVS 5.0 7.5.2)', () => {
  let db: TestDatabase;
  let source: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    source = new DataSource({ ...typeOrmOptionsFor(db), entities: backOfficeIdentityEntities, extra: { max: db.poolSize } });
    await source.initialize();
  });
  afterAll(async () => {
    await source?.destroy();
    await db?.drop();
  });

  /** The user `email` with `count` sessions last seen 19 minutes ago, each slid by a request (writes held back), read 2 minutes later. */
  async function setUp(email: string, count = 1) {
    const start = new Date(Math.floor(Date.now() / 1000) * 1000); // whole seconds: compared with what timestamptz gives back
    let now = new Date(start);
    const users = new TypeOrmBackOfficeUserStore(source);
    const store = new TypeOrmBackOfficeSessionStore(source);
    const user = await users.create(
      { username: email, normalizedUsername: email.toUpperCase(), email, normalizedEmail: email.toUpperCase(), name: 'Touch', passwordHash: null, securityStamp: 's', isApproved: true, invitedAt: null, groups: [], kind: 'person' },
      start,
    );
    const service = serviceWithTouchesHeldBack(store, user, () => now);
    const seen = new Date(start.getTime() - 19 * MINUTE_MS);
    const tokens: string[] = [];
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const token = randomToken(32);
      const session: BackOfficeSession = {
        id: randomUUID(), userId: user.id, tokenHash: sha256Hex(token), securityStamp: 's', createdAt: seen, lastSeenAt: seen,
        expiresAt: new Date(start.getTime() + 600 * MINUTE_MS), reauthenticatedAt: null, revokedAt: null, ip: null, userAgent: null, twoFactorSetupOnly: false,
      };
      await store.create(session);
      expect(await service.authenticate(token), 'slides it').not.toBeNull();
      tokens.push(token);
      ids.push(session.id);
    }
    now = new Date(start.getTime() + 2 * MINUTE_MS);
    for (const token of tokens) expect(await service.authenticate(token, { touch: false }), 'live for authenticate').not.toBeNull();
    return { service, user, id: ids[0], ids, start, seen };
  }

  it('list and listPage (GET /auth/sessions) list it', async () => {
    const { service, user, id } = await setUp('list@example.com');
    expect((await service.list(user)).map((s) => s.id), 'list').toEqual([id]);
    expect((await service.listPage(user, { skip: 0, take: 10 })).items.map((s) => s.id), 'listPage').toEqual([id]);
  });

  it('listPage first (no list before it) lists it', async () => {
    const { service, user, id } = await setUp('listpage@example.com');
    expect((await service.listPage(user, { skip: 0, take: 10 })).items.map((s) => s.id), 'listPage first').toEqual([id]);
  });

  it('revokeAll (DELETE /auth/sessions, DELETE /users/:id/sessions) counts it', async () => {
    const { service, user } = await setUp('revoke@example.com');
    expect(await service.revokeAll(user), 'revokeAll counts the live session it ended').toBe(1);
  });

  it('the flush writes 6 pending touches in one UPDATE (counted at the pg client); a later stored last-seen stays, a revoked session is not touched', async () => {
    const { service, user, ids, start, seen } = await setUp('flush@example.com', 6);
    const [later, revoked] = ids;
    const laterSeen = new Date(start.getTime() + MINUTE_MS); // written meanwhile (another process): newer than the pending touch
    await source.query(`UPDATE backoffice_session SET last_seen_at = $2 WHERE id = $1`, [later, laterSeen]);
    await source.query(`UPDATE backoffice_session SET revoked_at = $2 WHERE id = $1`, [revoked, start]);

    let listed: { id: string }[] = [];
    const sent = await statementsSentDuring(async () => (listed = await service.list(user)));
    const updates = sent.filter((q) => /^UPDATE\b/i.test(q.text));
    expect(updates.length, `one UPDATE for 6 pending touches: ${JSON.stringify(updates)}`).toBe(1);
    expect(sent.length, `the flush and the read: ${JSON.stringify(sent)}`).toBe(2);
    expect(listed.map((s) => s.id).sort(), 'every unrevoked session listed').toEqual(ids.filter((id) => id !== revoked).sort());

    const rows: { id: string; last_seen_at: Date }[] = await source.query(`SELECT id, last_seen_at FROM backoffice_session WHERE user_id = $1`, [user.id]);
    const lastSeen = new Map(rows.map((r) => [r.id, new Date(r.last_seen_at).toISOString()]));
    for (const id of ids.slice(2)) expect(lastSeen.get(id), 'the pending touch landed').toBe(start.toISOString());
    expect(lastSeen.get(later), 'a later stored last-seen is not moved back').toBe(laterSeen.toISOString());
    expect(lastSeen.get(revoked), 'a revoked session is not touched').toBe(seen.toISOString());

    const again = await statementsSentDuring(() => service.listPage(user, { skip: 0, take: 10 }));
    expect(again.filter((q) => /^UPDATE\b/i.test(q.text)), 'written: nothing left to write').toEqual([]);
  });
});
