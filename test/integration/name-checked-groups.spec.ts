import { Controller, Get } from '@nestjs/common';
import { BackOfficeAuthorize, BackOfficeBackgroundTasks, BackOfficeEvents } from '../../src/backoffice-identity/index.js';
import { expectClientError } from '../support/bad-input.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';

/** A host route that checks a group by name: membership of `finance` is the privilege, whatever the group's permissions. */
@Controller('payroll')
class PayrollController {
  @Get()
  @BackOfficeAuthorize({ groups: ['finance'] })
  read() {
    return { salaries: 'secret' };
  }
}

/**
 * OWASP ASVS 4.0 4.1.3 (least privilege), 4.2.1: a group that a route checks by name (`@BackOfficeAuthorize({ groups })`)
 * grants access by membership alone, so outside `admin` it counts as held only by its members: holders of `users.manage`
 * or `groups.manage` who are not in it may not give it (to anyone, themselves included), act on its members, move
 * members into it, change it or delete it. Members of it (and of admin) may.
 */
describe('Groups checked by name are privileges in the admin surface', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'gated');
  const signIn = (email: string) => signedInClient(ctx, email);
  const put = (client: HttpClient, path: string, body: unknown) => client.request('PUT', path, { body });

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } }, controllers: [PayrollController] });
    admin = await signIn((await make({ groups: ['admin'] })).email);
    for (const group of [
      { alias: 'finance', name: 'Finance', permissions: [] },
      { alias: 'helpdesk', name: 'Helpdesk', permissions: ['users.manage', 'users.read'] },
      { alias: 'keepers', name: 'Group keepers', permissions: ['groups.manage'] },
      { alias: 'interns', name: 'Interns', permissions: [] },
    ]) {
      expect((await admin.post('/groups', group)).status).toBe(201);
    }
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('users.manage outside the group cannot put anyone (itself included) into it, nor take it from a member', async () => {
    const desk = await make({ groups: ['helpdesk'] });
    const other = await make({ groups: ['interns'] });
    const member = await make({ groups: ['finance'] });
    const client = await signIn(desk.email);
    expectClientError(await client.get(`${ctx.url}/payroll`), 403);

    const refusals = [
      await put(client, `/users/${desk.id}/groups`, { groups: ['helpdesk', 'finance'] }),
      await put(client, `/users/${other.id}/groups`, { groups: ['interns', 'finance'] }),
      await put(client, `/users/${member.id}/groups`, { groups: [] }),
      await client.post(`/users/${member.id}/disable`, {}),
      await put(client, `/users/${member.id}`, { name: 'Renamed' }),
    ];
    for (const refused of refusals) {
      expectClientError(refused, 403);
      expect(refused.body.code).toBe('forbidden');
    }
    expect((await ctx.userManager.findById(desk.id))!.groups).toEqual(['helpdesk']);
    expect((await ctx.userManager.findById(other.id))!.groups).toEqual(['interns']);
    expect((await ctx.userManager.findById(member.id))).toMatchObject({ groups: ['finance'], isApproved: true, name: member.name });
    expectClientError(await client.get(`${ctx.url}/payroll`), 403);

    // Audited like any refusal, with the target as the affected user.
    await ctx.app.get(BackOfficeBackgroundTasks).drain();
    const audit = (await admin.get(`/audit?userId=${other.id}&take=50`)).body.items;
    expect(audit).toContainEqual(expect.objectContaining({ event: BackOfficeEvents.AccessDenied, performingUserId: desk.id, affectedUserId: other.id }));
  });

  it('groups.manage outside the group cannot move members into it, change it or delete it', async () => {
    const keeper = await make({ groups: ['keepers'] });
    const client = await signIn(keeper.email);
    expect((await client.post('/groups', { alias: 'temps', name: 'Temps', permissions: [] })).status).toBe(201);
    const temp = await make({ groups: ['temps'] });
    const refusals = [
      await client.request('DELETE', '/groups/temps?moveMembersTo=finance'),
      await put(client, '/groups/finance', { requireTwoFactor: false, name: 'Not finance' }),
      await client.request('DELETE', '/groups/finance?moveMembersTo=interns'),
    ];
    for (const refused of refusals) {
      expectClientError(refused, 403);
      expect(refused.body.code).toBe('forbidden');
    }
    expect((await ctx.userManager.findById(temp.id))!.groups).toEqual(['temps']);
    const finance = (await admin.get('/groups')).body.items.find((g: { alias: string }) => g.alias === 'finance');
    expect(finance).toMatchObject({ name: 'Finance' });
  });

  it('a member of the group with users.manage may give it; an admin may do all of it', async () => {
    const lead = await make({ groups: ['helpdesk', 'finance'] });
    const newcomer = await make({ groups: ['interns'] });
    const client = await signIn(lead.email);
    expect((await put(client, `/users/${newcomer.id}/groups`, { groups: ['interns', 'finance'] })).status).toBe(200);
    expect((await (await signIn(newcomer.email)).get(`${ctx.url}/payroll`)).status).toBe(200);
    expect((await client.post(`/users/${newcomer.id}/disable`, {})).status).toBe(200);
    expect((await admin.post(`/users/${newcomer.id}/enable`, {})).status).toBe(200);
    expect((await put(admin, `/users/${newcomer.id}/groups`, { groups: ['interns'] })).status).toBe(200);
  });
});
