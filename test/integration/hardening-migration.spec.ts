import { createHash } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, TEST_PASSWORD, typeOrmOptionsFor } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { backOfficeIdentityEntities, backOfficeIdentityMigrations } from '../../src/backoffice-identity/index.js';

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex');

describe('Migration 1732500000000 (hardening) on a database with data from 0.1', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('old recovery codes keep working once (wrapped, salted at rest) and clear-text attempted usernames are dropped', async () => {
    // 1. a 0.1 database: the module's tables, a 2FA user with an old-style recovery code and a failure counter
    let ctx = await createIdentityApp(db);
    const user = (await ctx.userManager.createUser({ email: 'legacy@example.com', name: 'Legacy', password: TEST_PASSWORD })).value!;
    await ctx.userManager.setTwoFactorEnabled(user, true);
    await ctx.close();
    const source = new DataSource({ ...typeOrmOptionsFor(db), entities: backOfficeIdentityEntities, migrationsRun: false });
    await source.initialize();
    // Back to the 0.1 schema: undo the hardening migration and every migration that came after it.
    const newest = async () => Number((await source.query(`SELECT max("timestamp") AS t FROM migrations`))[0].t);
    while ((await newest()) >= 1732500000000) await source.undoLastMigration();
    const oldCode = '7KQ2M-XW9TD';
    await source.query(`INSERT INTO backoffice_user_recovery_code (user_id, code_hash, created_at) VALUES ($1, $2, now())`, [user.id, sha256('7KQ2MXW9TD')]);
    await source.query(`INSERT INTO backoffice_login_attempt (normalized_username, access_failed_count, updated_at) VALUES ('my password typed as username', 2, now())`);
    await source.destroy();

    // 2. the app starts and runs the migration
    ctx = await createIdentityApp(db);
    try {
      const data = ctx.app.get(DataSource);
      expect(await data.query(`SELECT * FROM backoffice_login_attempt`)).toEqual([]);
      const [row] = await data.query(`SELECT code_hash FROM backoffice_user_recovery_code WHERE user_id = $1`, [user.id]);
      expect(row.code_hash).toMatch(/^legacy:[0-9a-f]{64}$/);
      expect(row.code_hash).not.toContain(sha256('7KQ2MXW9TD')); // no unsalted hash at rest
      const signIn = async () => {
        const http = new HttpClient(ctx.url);
        const login = await http.login(user.email, TEST_PASSWORD);
        expect(login.body.status).toBe('requiresTwoFactor');
        expect(login.body.providers).toContain('recovery');
        return http.post('/auth/2fa', { provider: 'recovery', code: oldCode.toLowerCase() });
      };
      const first = await signIn();
      expect(first.status, first.text).toBe(200);
      const again = new HttpClient(ctx.url);
      await again.login(user.email, TEST_PASSWORD);
      expect((await again.post('/auth/2fa', { provider: 'recovery', code: oldCode })).status).toBe(401);
    } finally {
      await ctx.close();
    }
  });
});
