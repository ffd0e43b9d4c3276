import type { BackOfficeUser } from '../../src/backoffice-identity/index.js';
import { HttpClient } from '../support/http-client.js';
import { adminAppSuite, signedInClient, TEST_PASSWORD } from '../support/identity-app.js';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/**
 * A timed disable whose `until` has passed is lifted by the user's next sign-in (`liftExpiredDisable`). The sign-in
 * decides on the user as it read them; an admin's disable for good (or for longer) that commits between that read and
 * the lift was overwritten by the lift's enable: the account the admin had just disabled was enabled again, and
 * signed in. The interleaving is fixed by answering the sign-in's read of the user with the copy it read only once the
 * admin's disable has committed.
 */
describe('a sign-in lifting an ended timed disable, racing an admin who disables the user again', () => {
  const suite = adminAppSuite('liftrace');
  const approvedAsStored = async (id: string) => {
    const stored = (await suite.ctx.userManager.findById(id))!;
    return { isApproved: stored.isApproved, disabledUntil: stored.disabledUntil };
  };

  /** Disables `id` for an hour, then moves the clock two hours on: the disable has ended, not yet lifted. */
  const disableForAnHourThatPassed = async (admin: HttpClient, id: string) => {
    const until = new Date(suite.ctx.clock.now().getTime() + 3_600_000).toISOString();
    const res = await admin.post(`/users/${id}/disable`, { reason: 'holiday', until });
    expect(res.status, res.text).toBe(200);
    suite.ctx.clock.advance(2 * 3_600_000);
  };

  /**
   * The next `userManager.findById(id)` answers the user as read, but only after `meanwhile` ran (the admin's disable
   * commits between the sign-in's read and its lift). Restored afterwards.
   */
  const afterNextRead = (id: string, meanwhile: () => Promise<void>) => {
    const manager = suite.ctx.userManager;
    const original = manager.findById.bind(manager);
    let armed = true;
    const spy = vi.spyOn(manager, 'findById').mockImplementation(async (userId: string): Promise<BackOfficeUser | null> => {
      const read = await original(userId);
      if (!armed || userId !== id) return read;
      armed = false;
      await meanwhile();
      return read;
    });
    return { restore: () => spy.mockRestore(), fired: () => !armed };
  };

  it('OWASP ASVS 4.0 1.11.3 / 5.0 15.4.2: the client credentials grant does not enable an API user an admin disabled for good while it ran', async () => {
    const admin = await signedInClient(suite.ctx, suite.adminEmail);
    const created = await admin.post('/users/api', { name: 'Lift race robot', groups: ['editor'] });
    expect(created.status, created.text).toBe(201);
    const { user, clientId, clientSecret } = created.body as { user: { id: string }; clientId: string; clientSecret: string };
    await disableForAnHourThatPassed(admin, user.id);
    const later = await signedInClient(suite.ctx, suite.adminEmail); // the clock moved past the first session

    const race = afterNextRead(user.id, async () => {
      const res = await later.post(`/users/${user.id}/disable`, { reason: 'retired' });
      expect(res.status, res.text).toBe(200);
    });
    let token;
    try {
      token = await new HttpClient(suite.ctx.url).request('POST', '/auth/token', {
        raw: 'grant_type=client_credentials',
        contentType: 'application/x-www-form-urlencoded',
        headers: { authorization: basic(clientId, clientSecret) },
      });
    } finally {
      race.restore();
    }
    expect(race.fired()).toBe(true);
    expect({ status: token.status, stored: await approvedAsStored(user.id) }).toEqual({ status: 401, stored: { isApproved: false, disabledUntil: null } });
  });

  it('OWASP ASVS 4.0 1.11.3 / 5.0 15.4.2: a password sign-in does not enable a person an admin disabled for good while it ran', async () => {
    const admin = await signedInClient(suite.ctx, suite.adminEmail);
    const person = await suite.make({ groups: ['editor'] });
    await disableForAnHourThatPassed(admin, person.id);
    const later = await signedInClient(suite.ctx, suite.adminEmail); // the clock moved past the first session

    const race = afterNextRead(person.id, async () => {
      const res = await later.post(`/users/${person.id}/disable`, { reason: 'left the company' });
      expect(res.status, res.text).toBe(200);
    });
    let login;
    try {
      login = await new HttpClient(suite.ctx.url).login(person.email, TEST_PASSWORD);
    } finally {
      race.restore();
    }
    expect(race.fired()).toBe(true);
    expect({ status: login.status, stored: await approvedAsStored(person.id) }).toEqual({ status: 403, stored: { isApproved: false, disabledUntil: null } });
    // And the next attempt is refused as for any disabled account.
    expect((await new HttpClient(suite.ctx.url).login(person.email, TEST_PASSWORD)).status).toBe(403);
  });

  it('a lift that no disable races still enables the user (the README promise stands)', async () => {
    const admin = await signedInClient(suite.ctx, suite.adminEmail);
    const person = await suite.make({ groups: ['editor'] });
    await disableForAnHourThatPassed(admin, person.id);
    expect((await new HttpClient(suite.ctx.url).login(person.email, TEST_PASSWORD)).status).toBe(200);
    expect(await approvedAsStored(person.id)).toEqual({ isApproved: true, disabledUntil: null });
  });
});
