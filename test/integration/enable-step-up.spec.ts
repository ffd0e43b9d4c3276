import { randomUUID } from 'node:crypto';
import { expectClientError } from '../support/bad-input.js';
import { HttpClient } from '../support/http-client.js';
import { staleImportRacing } from '../support/import-race.js';
import { BACKOFFICE_USER_STORE, TypeOrmBackOfficeUserStore } from '../../src/backoffice-identity/index.js';
import { adminAppSuite, reauthenticate, signedInClient } from '../support/identity-app.js';

/** A host's import store written before the module asked stores to call `authorizeTarget` under their locks. */
class IgnoresAuthorizeTarget extends TypeOrmBackOfficeUserStore {
  override importUsers(...[rows, options, now]: Parameters<TypeOrmBackOfficeUserStore['importUsers']>) {
    const { authorizeTarget: _dropped, ...known } = options;
    return super.importUsers(rows, known, now);
  }
}

const answer = (res: { status: number; body?: { code?: string } }) => ({ status: res.status, code: res.body?.code });

/**
 * OWASP ASVS 5.0 7.5.3 / 4.0 3.7.1: enabling a disabled account brings back a lasting credential (its password, its
 * passkeys, an API user's secret, which a disable leaves in place), as an invite or an API user is (both need a recent
 * sign-in). A stolen, stale admin cookie or an admin API user's bearer token must not be enough to bring back a
 * disabled account the attacker controls: POST /users/:id/enable, and an import record turning isApproved false to
 * true, need a recent sign-in. Disabling takes access away and needs none.
 */
describe('enabling a user needs a recent sign-in (OWASP ASVS 5.0 7.5.3 / 4.0 3.7.1)', () => {
  const suite = adminAppSuite('enablestep');
  const { make } = suite;
  const approved = async (id: string) => (await suite.ctx.userManager.findById(id))!.isApproved;
  const refused = { status: 401, code: 'reauthentication_required' };

  it('POST /users/:id/enable with a stale admin session is 401 reauthentication_required, nothing written; disable needs no step-up (ASVS 5.0 7.5.3 / 4.0 3.7.1)', async () => {
    const { ctx, adminEmail } = suite;
    const attacker = await make({ groups: ['writer'], isApproved: false });
    const other = await make({ groups: ['writer'] });
    const stolen = await signedInClient(ctx, adminEmail);
    ctx.clock.advance(6 * 60_000); // past session.reauthenticationMinutes (default 5)

    expect(answer(await stolen.post(`/users/${attacker.id}/enable`, {}))).toEqual(refused);
    expect(await approved(attacker.id)).toBe(false);
    expect((await new HttpClient(ctx.url).login(attacker.email, 'correct horse battery staple')).status).not.toBe(200);

    // Disabling takes access away: no step-up.
    const disabled = await stolen.post(`/users/${other.id}/disable`, {});
    expect(disabled.status, disabled.text).toBe(200);
    expect(await approved(other.id)).toBe(false);

    await reauthenticate(stolen);
    const enabled = await stolen.post(`/users/${attacker.id}/enable`, {});
    expect(enabled.status, enabled.text).toBe(200);
    expect(await approved(attacker.id)).toBe(true);
  });

  it('a timed disable cannot end a disable sooner without a recent sign-in: POST /users/:id/disable { until } on a disabled user (no end, or a later one) is 401, as an enable is; a first timed disable or a later end needs none (ASVS 5.0 7.5.3 / 4.0 3.7.1)', async () => {
    const { ctx, adminEmail } = suite;
    const attacker = await make({ groups: ['writer'], isApproved: false });
    const timed = await make({ groups: ['writer'] });
    const stolen = await signedInClient(ctx, adminEmail);
    ctx.clock.advance(6 * 60_000);
    const inMinutes = (minutes: number) => new Date(ctx.clock.now().getTime() + minutes * 60_000).toISOString();

    // A disabled account brought back a minute later by the next sign-in (liftExpiredDisable): an enable by another name.
    expect(answer(await stolen.post(`/users/${attacker.id}/disable`, { until: inMinutes(1) }))).toEqual(refused);
    ctx.clock.advance(2 * 60_000);
    expect((await new HttpClient(ctx.url).login(attacker.email, 'correct horse battery staple')).status).not.toBe(200);
    expect(await approved(attacker.id)).toBe(false);

    // Disabling an enabled user for a while, or lengthening a timed disable, takes access away: no step-up.
    expect((await stolen.post(`/users/${timed.id}/disable`, { until: inMinutes(60) })).status).toBe(200);
    expect((await stolen.post(`/users/${timed.id}/disable`, { until: inMinutes(120) })).status).toBe(200);
    expect(answer(await stolen.post(`/users/${timed.id}/disable`, { until: inMinutes(30) }))).toEqual(refused);

    await reauthenticate(stolen);
    expect((await stolen.post(`/users/${attacker.id}/disable`, { until: inMinutes(1) })).status).toBe(200);
  });

  it("an admin API user's bearer token cannot enable a user (nor a disabled API user, whose secret survives), only disable one (ASVS 5.0 7.5.3 / 4.0 3.7.1)", async () => {
    const { ctx, adminEmail } = suite;
    const admin = await signedInClient(ctx, adminEmail);
    const mint = async (groups: string[]) => {
      const minted = await admin.post('/users/api', { name: 'Enable robot', groups });
      expect(minted.status, minted.text).toBe(201);
      return minted.body as { user: { id: string }; clientId: string; clientSecret: string };
    };
    const robot = await mint(['admin']);
    const token = await new HttpClient(ctx.url).post('/auth/token', { grant_type: 'client_credentials', client_id: robot.clientId, client_secret: robot.clientSecret });
    expect(token.status, token.text).toBe(200);
    const bearer = { headers: { authorization: `Bearer ${token.body.access_token}` } };
    const asRobot = (path: string) => new HttpClient(ctx.url).request('POST', path, { body: {}, ...bearer });

    const person = await make({ groups: ['writer'], isApproved: false });
    const machine = await mint(['writer']);
    expect((await admin.post(`/users/${machine.user.id}/disable`, {})).status).toBe(200);
    for (const id of [person.id, machine.user.id]) {
      const res = await asRobot(`/users/${id}/enable`);
      expectClientError(res, 401);
      expect(res.body.code).toBe('reauthentication_required');
      expect(await approved(id)).toBe(false);
    }
    // The disabled API user's secret gets no token.
    const revived = await new HttpClient(ctx.url).post('/auth/token', { grant_type: 'client_credentials', client_id: machine.clientId, client_secret: machine.clientSecret });
    expect(revived.status).not.toBe(200);

    const victim = await make({ groups: ['writer'] });
    const disabled = await asRobot(`/users/${victim.id}/disable`);
    expect(disabled.status, disabled.text).toBe(200);
    expect(await approved(victim.id)).toBe(false);
  });

  it('checks the target first: 404 for an unknown user and 403 for one beyond the caller, whatever the sign-in (ASVS 5.0 7.5.3 / 4.0 3.7.1)', async () => {
    const { ctx, adminEmail } = suite;
    const admin = await signedInClient(ctx, adminEmail);
    expect((await admin.post('/groups', { alias: 'enabledesk', name: 'Enable desk', permissions: ['users.manage'] })).status).toBe(201);
    const deskUser = await make({ groups: ['enabledesk'] });
    const desk = await signedInClient(ctx, deskUser.email);
    const disabledAdmin = await make({ groups: ['admin'], isApproved: false });
    const disabledWriter = await make({ groups: ['writer'], isApproved: false });
    ctx.clock.advance(6 * 60_000);

    expect(answer(await desk.post(`/users/${randomUUID()}/enable`, {}))).toEqual({ status: 404, code: 'not_found' });
    expect(answer(await desk.post(`/users/${disabledAdmin.id}/enable`, {}))).toEqual({ status: 403, code: 'forbidden' });
    expect(answer(await desk.post(`/users/${disabledWriter.id}/enable`, {}))).toEqual(refused);
    expect(await approved(disabledAdmin.id)).toBe(false);
    expect(await approved(disabledWriter.id)).toBe(false);
  });

  it('POST /users/import with onConflict update: a record turning isApproved false to true needs a recent sign-in; disabling, keeping or a dry run does not (ASVS 5.0 7.5.3 / 4.0 3.7.1)', async () => {
    const { ctx, adminEmail } = suite;
    const attacker = await make({ groups: ['writer'], name: 'Attacker', isApproved: false });
    const other = await make({ groups: ['writer'], name: 'Other' });
    const stolen = await signedInClient(ctx, adminEmail);
    ctx.clock.advance(6 * 60_000);
    const record = (user: { email: string; name: string }, isApproved?: boolean) => ({ email: user.email, name: user.name, groups: ['writer'], ...(isApproved === undefined ? {} : { isApproved }) });
    const importing = (users: object[], dryRun = false) => stolen.post('/users/import', { users, onConflict: 'update', dryRun });

    expect(answer(await importing([record(other), record(attacker, true)]))).toEqual(refused);
    expect(await approved(attacker.id)).toBe(false);

    // A dry run writes nothing: no step-up, as for a group added.
    const dry = await importing([record(attacker, true)], true);
    expect(dry.status, dry.text).toBe(200);
    expect(dry.body.results[0].outcome).toBe('updated');
    expect(await approved(attacker.id)).toBe(false);

    // Keeping the disabled user disabled (no isApproved, or false), keeping an enabled one enabled, or disabling: no step-up.
    const routine = await importing([record(attacker), record(other, true)]);
    expect(routine.status, routine.text).toBe(200);
    const disabling = await importing([record(attacker, false), record(other, false)]);
    expect(disabling.status, disabling.text).toBe(200);
    expect([await approved(attacker.id), await approved(other.id)]).toEqual([false, false]);

    await reauthenticate(stolen);
    const enabled = await importing([record(attacker, true)]);
    expect(enabled.status, enabled.text).toBe(200);
    expect(await approved(attacker.id)).toBe(true);
  });

  it('POST /users/import with onConflict update by a stale session: a record read as keeping an enabled user enabled, whose user a concurrent disable committed meanwhile, would enable it as stored under the locks: 401 reauthentication_required, nothing written (ASVS 5.0 7.5.3 / 4.0 3.7.1)', async () => {
    const { ctx, adminEmail } = suite;
    const attacker = await make({ groups: ['writer'], name: 'Attacker' });
    const other = await make({ groups: ['writer'], name: 'Other' });
    // The checks before the write pass (attacker enabled: isApproved true keeps it so, no step-up asked).
    const imported = await staleImportRacing(
      ctx,
      adminEmail,
      {
        users: [
          { email: other.email, name: 'Other (renamed)', groups: ['writer'] },
          { email: attacker.email, name: 'Attacker (renamed)', groups: ['writer'], isApproved: true },
        ],
      },
      // Another admin (or the attacker's own stale cookie: a disable needs no step-up) disables the account meanwhile.
      async () => {
        const disabled = await (await signedInClient(ctx, adminEmail)).post(`/users/${attacker.id}/disable`, {});
        expect(disabled.status, disabled.text).toBe(200);
      },
    );
    expect(answer(imported)).toEqual(refused);
    const [attackerNow, otherNow] = [(await ctx.userManager.findById(attacker.id))!, (await ctx.userManager.findById(other.id))!];
    expect({ approved: attackerNow.isApproved, names: [attackerNow.name, otherNow.name] }).toEqual({ approved: false, names: ['Attacker', 'Other'] });
    expect((await new HttpClient(ctx.url).login(attacker.email, 'correct horse battery staple')).status).not.toBe(200);
  });
});

describe('an import through a host store that never calls authorizeTarget (OWASP ASVS 5.0 7.5.3 / 4.0 3.7.1)', () => {
  const suite = adminAppSuite('enablehost', { override: (b) => b.overrideProvider(BACKOFFICE_USER_STORE).useClass(IgnoresAuthorizeTarget) });

  it('still needs a recent sign-in for a record that enables a disabled user or adds a group: asked on the reads before the write as well as under its locks (ASVS 5.0 7.5.3 / 4.0 3.7.1)', async () => {
    const { ctx, adminEmail, make } = suite;
    const attacker = await make({ groups: ['writer'], name: 'Attacker', isApproved: false });
    const other = await make({ groups: ['writer'], name: 'Other' });
    const stolen = await signedInClient(ctx, adminEmail);
    ctx.clock.advance(6 * 60_000);
    const importing = (user: { email: string; name: string }, extra: object) => stolen.post('/users/import', { users: [{ email: user.email, name: user.name, groups: ['writer'], ...extra }], onConflict: 'update' });

    expect(answer(await importing(attacker, { isApproved: true }))).toEqual({ status: 401, code: 'reauthentication_required' });
    expect(answer(await importing(other, { groups: ['writer', 'admin'] }))).toEqual({ status: 401, code: 'reauthentication_required' });
    const [attackerNow, otherNow] = [await ctx.userManager.findById(attacker.id), await ctx.userManager.findById(other.id)];
    expect({ approved: attackerNow!.isApproved, groups: otherNow!.groups }).toEqual({ approved: false, groups: ['writer'] });
  });
});
