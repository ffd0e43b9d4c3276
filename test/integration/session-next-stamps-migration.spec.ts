import { TEST_PASSWORD } from '../support/identity-app.js';
import { LATEST_MIGRATION, MigrationTestDatabase } from '../support/migration-harness.js';
import { MAX_ANNOUNCED_SECURITY_STAMPS } from '../../src/backoffice-identity/index.js';

const MIGRATION = 1732600000000;

/**
 * Migration 1732600000000 replaces `backoffice_session.next_security_stamp` by the array `next_security_stamps`.
 * `up`: a live session's announced stamp becomes the one element of its array; a revoked session's is dropped (a
 * revoked session is never adopted again), a session with none gets NULL. `down`: the newest announcement (the
 * array's last element: the stores append and keep the newest {@link MAX_ANNOUNCED_SECURITY_STAMPS}) becomes the
 * single column again, for every row that has one; an empty or NULL array gives NULL.
 */
describe('Migration 1732600000000 (session next_security_stamps) with rows', () => {
  let migrated: MigrationTestDatabase;
  let userId: string;

  beforeAll(async () => {
    migrated = await MigrationTestDatabase.create(async (ctx) => {
      userId = (await ctx.userManager.createUser({ email: 'stamps@example.com', name: 'Stamps', password: TEST_PASSWORD })).value!.id;
    });
  });
  afterAll(async () => {
    await migrated?.close();
  });
  const columns = async () =>
    (
      await migrated.source.query(
        `SELECT column_name FROM information_schema.columns WHERE table_name = 'backoffice_session' AND column_name LIKE 'next_security_stamp%' ORDER BY column_name`,
      )
    ).map((r: { column_name: string }) => r.column_name);
  const insertSession = async (name: string, nextStamp: string | null, revoked: boolean) => {
    const [row] = await migrated.source.query(
      `INSERT INTO backoffice_session (user_id, token_hash, security_stamp, created_at, last_seen_at, expires_at, revoked_at, next_security_stamp)
       VALUES ($1, $2, 'stamp-held', now(), now(), now() + interval '1 day', ${revoked ? 'now()' : 'NULL'}, $3) RETURNING id`,
      [userId, name.padEnd(64, '0'), nextStamp],
    );
    return row.id as string;
  };

  it('up carries a live session\'s announced stamp into the array; down restores the single column with the newest', async () => {
    expect(await migrated.newest()).toBe(LATEST_MIGRATION);
    await migrated.undoFrom(MIGRATION);
    expect(await columns()).toEqual(['next_security_stamp']);

    const liveAnnounced = await insertSession('a', 'stamp-next-live', false);
    const liveNone = await insertSession('b', null, false);
    const revokedAnnounced = await insertSession('c', 'stamp-next-revoked', true);
    const revokedNone = await insertSession('d', null, true);

    await migrated.migrateUp();
    expect(await migrated.newest()).toBe(LATEST_MIGRATION);
    expect(await columns()).toEqual(['next_security_stamps']);
    const after = async () =>
      Object.fromEntries(
        (await migrated.source.query(`SELECT id, next_security_stamps FROM backoffice_session`)).map((r: { id: string; next_security_stamps: string[] | null }) => [
          r.id,
          r.next_security_stamps,
        ]),
      );
    expect(await after()).toEqual({
      [liveAnnounced]: ['stamp-next-live'],
      [liveNone]: null,
      [revokedAnnounced]: null,
      [revokedNone]: null,
    });

    // Several announcements in flight (as many as a session keeps), one empty list, one revoked session with some.
    const many = Array.from({ length: MAX_ANNOUNCED_SECURITY_STAMPS }, (_, i) => `stamp-${i}`);
    await migrated.source.query(`UPDATE backoffice_session SET next_security_stamps = $2 WHERE id = $1`, [liveAnnounced, many]);
    await migrated.source.query(`UPDATE backoffice_session SET next_security_stamps = '{}' WHERE id = $1`, [liveNone]);
    await migrated.source.query(`UPDATE backoffice_session SET next_security_stamps = $2 WHERE id = $1`, [revokedAnnounced, ['old', 'new']]);
    // The store's own append (array_remove(...) || stamp, sliced to the newest) gives the order down relies on.
    await migrated.source.query(
      `UPDATE backoffice_session SET next_security_stamps = (array_remove(coalesce(next_security_stamps, '{}'::varchar[]), 'x') || 'stamp-appended'::varchar)[2:] WHERE id = $1`,
      [liveAnnounced],
    );
    expect((await after())[liveAnnounced]).toEqual([...many.slice(1), 'stamp-appended']);

    await migrated.undoFrom(MIGRATION);
    expect(await columns()).toEqual(['next_security_stamp']);
    const restored = Object.fromEntries(
      (await migrated.source.query(`SELECT id, next_security_stamp FROM backoffice_session`)).map((r: { id: string; next_security_stamp: string | null }) => [
        r.id,
        r.next_security_stamp,
      ]),
    );
    expect(restored).toEqual({
      [liveAnnounced]: 'stamp-appended',
      [liveNone]: null,
      [revokedAnnounced]: 'new',
      [revokedNone]: null,
    });

    // And up again: the newest announcement of the live session is carried over once more.
    await migrated.migrateUp();
    expect((await after())[liveAnnounced]).toEqual(['stamp-appended']);
    expect((await after())[revokedAnnounced]).toBeNull();
  });
});
