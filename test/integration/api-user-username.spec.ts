import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, reauthenticate, TEST_PASSWORD, type IdentityApp } from '../support/identity-app.js';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/**
 * POST /users/api under both `usernameIsEmail` settings. With `false` the API user's create path gave no username, so
 * the built-in validator refused every API user (400 "The API user is not valid."). An API user's username is its
 * synthetic address (`<client id, lower case>@api-users.invalid`): unique by its random client id, never a person's
 * directory uid, and no name an admin types (which could meet a person's username).
 */
for (const usernameIsEmail of [false, true]) {
  describe(`POST /users/api with usernameIsEmail ${usernameIsEmail}`, () => {
    let db: TestDatabase;
    let ctx: IdentityApp;
    let admin: HttpClient;
    const bossUsername = `apiun-boss-${usernameIsEmail}`;
    const bossEmail = `${bossUsername}@example.com`;
    const row = async (id: string) =>
      (await ctx.app.get(DataSource).query(`SELECT username, normalized_username, email, name, kind FROM backoffice_user WHERE id = $1`, [id]))[0];

    beforeAll(async () => {
      db = await createTestDatabase();
      ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, usernameIsEmail } });
      const boss = await ctx.userManager.createUser({ email: bossEmail, username: bossUsername, name: 'Boss', password: TEST_PASSWORD, groups: ['admin'] });
      expect(boss.succeeded, JSON.stringify(boss.errors)).toBe(true);
      admin = new HttpClient(ctx.url);
      expect((await admin.login(usernameIsEmail ? bossEmail : bossUsername, TEST_PASSWORD)).status).toBe(200);
    });
    afterAll(async () => {
      await ctx?.close();
      await db?.drop();
    });

    it('creates the API user with its synthetic address as username; its client credentials get a token', async () => {
      await reauthenticate(admin);
      const res = await admin.post('/users/api', { name: 'Robot', groups: ['editor'] });
      expect(res.status, res.text).toBe(201);
      const { user, clientId, clientSecret } = res.body as { user: { id: string }; clientId: string; clientSecret: string };
      const stored = await row(user.id);
      expect(stored).toMatchObject({ kind: 'api', name: 'Robot', email: `${clientId.toLowerCase()}@api-users.invalid` });
      expect(stored.username).toBe(stored.email);
      const token = await new HttpClient(ctx.url).request('POST', '/auth/token', {
        raw: new URLSearchParams({ grant_type: 'client_credentials' }).toString(),
        contentType: 'application/x-www-form-urlencoded',
        headers: { authorization: basic(clientId, clientSecret) },
      });
      expect(token.status, token.text).toBe(200);
    });

    it("takes no person's username: an API user named after a person's username is created beside them, the person unchanged, and two API users get distinct usernames", async () => {
      const person = (await ctx.userManager.createUser({ email: 'apiun-person@example.com', username: 'apiun-person', name: 'Person', password: TEST_PASSWORD, groups: ['editor'] })).value!;
      const before = await row(person.id);
      await reauthenticate(admin);
      const first = await admin.post('/users/api', { name: person.username, groups: ['editor'] });
      const second = await admin.post('/users/api', { name: person.username, groups: ['editor'] });
      expect([first.status, second.status], first.text + second.text).toEqual([201, 201]);
      const [a, b] = [await row(first.body.user.id), await row(second.body.user.id)];
      expect(a.username).not.toBe(b.username);
      expect([a.username, b.username]).not.toContain(person.username);
      expect(await row(person.id)).toEqual(before);
      // The person still signs in as before.
      expect((await new HttpClient(ctx.url).login(usernameIsEmail ? person.email : person.username, TEST_PASSWORD)).status).toBe(200);
    });
  });
}
