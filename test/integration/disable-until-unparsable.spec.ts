import { expectClientError } from '../support/bad-input.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';

/**
 * POST /users/:id/disable { until }: `until` is checked with class-validator's strict ISO 8601 rule, which also
 * accepts forms JavaScript's Date cannot read (week dates, ordinal dates, the basic format, an hour without
 * minutes, a comma before the fraction). Found in review: such an `until` became an Invalid Date, passed the
 * "in the future" check (NaN compares false) and reached PostgreSQL: 500 `internal_error`.
 */
describe('POST /users/:id/disable refuses an `until` that is no date it can store (OWASP ASVS 4.0 5.1.4: structured data is validated)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'until');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    admin = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it.each(['2099-W50', '2099-W50-1', '2099-335', '20991201T000000Z', '2099-12-01T10', '2099-12-01T10:00:00,5Z'])(
    'answers 400 validation_failed naming until for %s, and leaves the user enabled',
    async (until) => {
      const user = await make({ groups: ['editor'] });
      const res = await admin.post(`/users/${user.id}/disable`, { reason: 'holiday', until });
      expectClientError(res, 400);
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.errors).toEqual([expect.objectContaining({ field: 'until' })]);
      expect((await ctx.userManager.findById(user.id))!).toMatchObject({ isApproved: true, disabledUntil: null });
    },
  );

  it('still takes a full ISO 8601 date-time in the future', async () => {
    const user = await make({ groups: ['editor'] });
    const until = new Date(ctx.clock.now().getTime() + 3_600_000).toISOString();
    const res = await admin.post(`/users/${user.id}/disable`, { until });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ state: 'disabled', disabledUntil: until });
  });
});
