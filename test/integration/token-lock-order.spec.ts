import { createHash } from 'node:crypto';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { typeOrmOptionsFor } from '../support/identity-app.js';
import { backOfficeIdentityEntities, TypeOrmBackOfficeUserStore } from '../../src/backoffice-identity/index.js';
import { lockWaiters, lockWaitersReach, until } from '../support/lock-waits.js';

const hash = (text: string) => createHash('sha256').update(text).digest('hex');
const HOUR = 3_600_000;

/**
 * The built-in store's new-link write (`replaceToken`: void the user's live links of a purpose, insert the new one)
 * against the transactions that write the user's row and then void the user's links: an email change (the
 * manager's `changeEmail`, an admin's edit) and a user import's update. Both must finish; neither may be the
 * victim of a deadlock (PostgreSQL aborts one of two transactions waiting on each other).
 */
describe.skipIf(dbKind() !== 'postgres')('replaceToken and a transaction that writes the user and then voids its links', () => {
  let db: TestDatabase;
  let source: DataSource;
  let store: TypeOrmBackOfficeUserStore;

  beforeAll(async () => {
    db = await createTestDatabase();
    source = new DataSource({ ...typeOrmOptionsFor(db), entities: backOfficeIdentityEntities });
    await source.initialize();
    store = new TypeOrmBackOfficeUserStore(source);
  });
  afterAll(async () => {
    await source?.destroy();
    await db?.drop();
  });

  /** A promise the test resolves: holds a transaction of the store open at a chosen statement. */
  function gate(): { open: () => void; opened: Promise<void> } {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    return { open, opened };
  }

  async function newUser(name: string): Promise<{ id: string; email: string }> {
    const email = `${name}@example.test`;
    return store.create(
      {
        username: email,
        normalizedUsername: email.toUpperCase(),
        email,
        normalizedEmail: email.toUpperCase(),
        name,
        passwordHash: 'hash-1',
        securityStamp: 'stamp-1',
        isApproved: true,
        invitedAt: null,
        groups: [],
        kind: 'person',
      },
      new Date(),
    );
  }

  /** What a password reset (or an invite acceptance) writes, as the manager's `setPasswordWithToken` does. */
  const PASSWORD_BOUND = ['password_reset', 'invite', 'change_email'] as const;

  it('OWASP ASVS 4.0 1.11.3: a new password-reset link requested while an email change is being written is no deadlock: both finish, the new link stays live', async () => {
    const now = new Date();
    const user = await newUser('lock-order');
    await store.replaceToken(user.id, 'password_reset', hash('first'), new Date(now.getTime() + HOUR), now);

    const change = new pg.Client({ connectionString: db.url });
    const observer = new pg.Client({ connectionString: db.url });
    await change.connect();
    await observer.connect();
    try {
      // The email change's first write: the user's row (a unique column, so the row is locked FOR UPDATE).
      await change.query('BEGIN');
      await change.query(`UPDATE backoffice_user SET email = $2, normalized_email = $3, security_stamp = 'stamp-2' WHERE id = $1`, [
        user.id,
        'moved@example.test',
        'MOVED@EXAMPLE.TEST',
      ]);
      // Meanwhile a "forgot password" writes a new link; it waits for the email change.
      const replacing = store.replaceToken(user.id, 'password_reset', hash('second'), new Date(now.getTime() + HOUR), now).then(
        () => null,
        (error: Error) => error,
      );
      await lockWaitersReach(observer, 1);
      // The email change then voids the links mailed to the old address, and commits.
      const voiding = await change
        .query(`UPDATE backoffice_user_token SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL AND purpose IN ('password_reset', 'invite', 'change_email')`, [user.id, now])
        .then(() => null, (error: Error) => error);
      await change.query(voiding ? 'ROLLBACK' : 'COMMIT');
      expect(voiding?.message ?? null).toBeNull();
      expect((await replacing)?.message ?? null).toBeNull();
      expect(await store.isTokenLive(user.id, 'password_reset', hash('first'), new Date(now.getTime() + 1))).toBe(false);
      expect(await store.isTokenLive(user.id, 'password_reset', hash('second'), new Date(now.getTime() + 1))).toBe(true);
    } finally {
      await change.end();
      await observer.end();
    }
  });
  /**
   * A password reset (or invite acceptance) uses its link up (the link's row) and then writes the user's row; an
   * email change or an import's update writes the user's row and then voids the user's links. The reset is held
   * open right after using its link; the other transaction starts; then the reset goes on. Both must finish.
   */
  async function resetAgainst(name: string, other: (user: { id: string; email: string }, now: Date) => Promise<Error | null>) {
    const now = new Date();
    const user = await newUser(name);
    await store.replaceToken(user.id, 'password_reset', hash(`${name}-link`), new Date(now.getTime() + HOUR), now);
    const consumed = gate();
    const proceed = gate();
    const resetting = store
      .transaction(async (tx) => {
        const used = await tx.consumeToken(user.id, 'password_reset', hash(`${name}-link`), now);
        consumed.open();
        await proceed.opened;
        await tx.setPasswordHash(user.id, 'hash-reset', 'stamp-reset', now);
        for (const purpose of PASSWORD_BOUND) await tx.voidTokens(user.id, purpose, now);
        return used;
      })
      .then(
        (used) => ({ used, error: null }),
        (error: Error) => ({ used: false, error }),
      );
    await consumed.opened;
    const observer = new pg.Client({ connectionString: db.url });
    await observer.connect();
    try {
      const otherDone = other(user, now);
      // The other transaction waits for a lock the reset holds (its link's row, or the user's row).
      await lockWaitersReach(observer, 1);
      proceed.open();
      const otherError = await otherDone;
      const reset = await resetting;
      return { user, otherError, reset };
    } finally {
      await observer.end();
    }
  }

  it('OWASP ASVS 4.0 1.11.3: a password reset (link used, then the password written) and an email change of the same user at once are no deadlock: both finish', async () => {
    const change = new pg.Client({ connectionString: db.url });
    await change.connect();
    try {
      const { user, otherError, reset } = await resetAgainst('reset-vs-email', async (target, now) => {
        await change.query('BEGIN');
        // The email change: the user's row (FOR UPDATE: email is unique), then the links mailed to the old address.
        const error = await change
          .query(`UPDATE backoffice_user SET email = $2, normalized_email = $3, security_stamp = 'stamp-2' WHERE id = $1`, [
            target.id,
            'moved-reset@example.test',
            'MOVED-RESET@EXAMPLE.TEST',
          ])
          .then(() =>
            change.query(`UPDATE backoffice_user_token SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL AND purpose IN ('password_reset', 'invite', 'change_email')`, [
              target.id,
              now,
            ]),
          )
          .then(
            () => null,
            (e: Error) => e,
          );
        await change.query(error ? 'ROLLBACK' : 'COMMIT');
        return error;
      });
      expect(otherError?.message ?? null).toBeNull();
      expect(reset.error?.message ?? null).toBeNull();
      expect(reset.used).toBe(true);
      const after = (await store.findById(user.id))!;
      expect([after.email, after.passwordHash]).toEqual(['moved-reset@example.test', 'hash-reset']);
    } finally {
      await change.end();
    }
  });

  it("OWASP ASVS 4.0 1.11.3: a password reset and an import's update of the same user at once are no deadlock: both finish", async () => {
    const { user, otherError, reset } = await resetAgainst('reset-vs-import', async (target, now) => {
      const email = target.email;
      return store
        .importUsers(
          [
            {
              username: email,
              normalizedUsername: email.toUpperCase(),
              email,
              normalizedEmail: email.toUpperCase(),
              name: 'Imported',
              passwordHash: 'hash-imported',
              securityStamp: 'stamp-imported',
              groups: [],
              createdAt: now,
              lastLoginAt: null,
              isApproved: null,
            },
          ],
          { onConflict: 'update', dryRun: false, protectedGroup: 'admin' },
          now,
        )
        .then(
          (outcomes) => {
            expect(outcomes).toEqual(['updated']);
            return null;
          },
          (e: Error) => e,
        );
    });
    expect(otherError?.message ?? null).toBeNull();
    expect(reset.error?.message ?? null).toBeNull();
    expect(reset.used).toBe(true);
    expect((await store.findById(user.id))!.name).toBe('Imported');
  });
  /**
   * A password change (the manager's `setNewPassword`: the hash, then every outstanding link voided) is held open
   * after its void statements; meanwhile a new link is requested (an email change from a session, a "forgot
   * password"). The change commits: no link that was committed before it may be live after it. The new link may
   * only be written after the change (then it is a link requested after the change) or be voided by it.
   */
  it.each([
    ['an email-change link', 'change_email', (userId: string, tokenHash: string, now: Date) => store.replaceEmailChangeToken(userId, tokenHash, 'elsewhere@example.test', new Date(now.getTime() + HOUR), now)],
    ['a handed-over email-change link', 'change_email', (userId: string, tokenHash: string, now: Date) => store.addEmailChangeToken(userId, tokenHash, 'elsewhere@example.test', new Date(now.getTime() + HOUR), now)],
    ['a password-reset link', 'password_reset', (userId: string, tokenHash: string, now: Date) => store.replaceToken(userId, 'password_reset', tokenHash, new Date(now.getTime() + HOUR), now)],
  ] as const)(
    'OWASP ASVS 4.0 1.11.3, 2.5.x: %s requested while a password change is being written is not left live by it (it waits for the change)',
    async (kind, purpose, request) => {
      const tag = `race-${kind.replace(/[^a-z]+/g, '-')}`;
      const now = new Date();
      const user = await newUser(tag);
      const voided = gate();
      const finish = gate();
      const changing = store.transaction(async (tx) => {
        await tx.setPasswordHash(user.id, 'hash-2', 'stamp-2', now);
        for (const p of PASSWORD_BOUND) await tx.voidTokens(user.id, p, now);
        voided.open();
        await finish.opened;
      });
      await voided.opened;
      const observer = new pg.Client({ connectionString: db.url });
      await observer.connect();
      try {
        const replacing = request(user.id, hash(tag), now);
        let settled = false;
        const done = replacing.then(
          () => (settled = true),
          () => (settled = true),
        );
        // Either the new link is committed (the write settles) or it waits for a lock the change holds.
        await until(async () => settled || (await lockWaiters(observer)) > 0);
        const liveDuringChange: string[] = (
          await observer.query(`SELECT token_hash FROM backoffice_user_token WHERE user_id = $1 AND used_at IS NULL`, [user.id])
        ).rows.map((r: { token_hash: string }) => r.token_hash);
        finish.open();
        await changing;
        await done;
        await replacing;
        const stillLive = (
          await observer.query(`SELECT token_hash FROM backoffice_user_token WHERE user_id = $1 AND used_at IS NULL AND token_hash = ANY($2::text[])`, [
            user.id,
            liveDuringChange,
          ])
        ).rows;
        // A link committed while the change was being written, left live by it: the change did not void every link.
        expect(stillLive).toEqual([]);
        // The new link was written after the change: the one live link of its purpose.
        expect(await store.isTokenLive(user.id, purpose, hash(tag), new Date(now.getTime() + 1))).toBe(true);
      } finally {
        await observer.end();
      }
    },
  );
  /**
   * Maintenance's prune deletes the links that expired a month ago, of every user, in one statement; a password
   * change voids the user's links one purpose after another. Held open after its first void (an expired reset link),
   * the change then voids the invites, among them an expired one the prune had deleted first. Both must finish.
   */
  it('OWASP ASVS 4.0 1.11.3: pruning expired links while a password change voids them is no deadlock: both finish, the rest is pruned next time', async () => {
    const now = new Date();
    const user = await newUser('prune-vs-void');
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    const insertExpired = (purpose: string, daysAgo: number) =>
      admin.query(`INSERT INTO backoffice_user_token (user_id, purpose, token_hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $4)`, [
        user.id,
        purpose,
        hash(`prune-${purpose}`),
        new Date(now.getTime() - daysAgo * 24 * HOUR),
      ]);
    try {
      // The invite first: the prune meets it before the reset link (in the heap and by expiry).
      await insertExpired('invite', 50);
      await insertExpired('password_reset', 40);
      const firstVoid = gate();
      const finish = gate();
      const changing = store
        .transaction(async (tx) => {
          await tx.setPasswordHash(user.id, 'hash-2', 'stamp-2', now);
          await tx.voidTokens(user.id, 'password_reset', now);
          firstVoid.open();
          await finish.opened;
          await tx.voidTokens(user.id, 'invite', now);
          await tx.voidTokens(user.id, 'change_email', now);
        })
        .then(
          () => null,
          (e: Error) => e,
        );
      await firstVoid.opened;
      let settled = false;
      const pruning = store.prune(now).then(
        (r) => ((settled = true), r),
        (e: Error) => ((settled = true), e),
      );
      // The prune either finishes or waits for the reset link the change holds.
      await until(async () => settled || (await lockWaiters(admin)) > 0);
      finish.open();
      const changeError = await changing;
      const pruned = await pruning;
      expect(changeError?.message ?? null).toBeNull();
      expect(pruned instanceof Error ? pruned.message : null).toBeNull();
      expect((await store.findById(user.id))!.passwordHash).toBe('hash-2');
      await store.prune(now);
      expect((await admin.query(`SELECT count(*)::int AS n FROM backoffice_user_token WHERE user_id = $1`, [user.id])).rows[0].n).toBe(0);
    } finally {
      await admin.end();
    }
  });
});
