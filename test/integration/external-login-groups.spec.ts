import { Controller, Get } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { BackOfficeAuthorize, BackOfficeGroupService, type BackOfficeExternalLoginProviderOptions } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { expectRefused, expectSignedIn, waitFor } from '../support/external-login-results.js';
import { createIdentityApp, userFactory, type IdentityApp } from '../support/identity-app.js';
import { ExternalLoginPerson as Person, TestOidcProvider, type TestOidcClient } from '../support/oidc-provider.js';

// Groups that come from an OpenID provider's groups claim (contract section 6), against a real provider
// (oidc-provider in-process) whose claims the tests set: which provider groups may grant which back-office groups.

const SECRET = 'client-secret-0123456789abcdef-groups';
const GROUPS_SCOPES = ['openid', 'email', 'profile', 'groups'];

/**
 * `plain`: a groups claim without groupMapping (grants nothing); `mapped`: admin, writer and the provider's
 * `fin-team` mapped explicitly, managed by the provider; `lenient`: as `mapped`, with an absent claim read as "no groups".
 */
const PROVIDERS = ['plain', 'mapped', 'lenient'] as const;
const MAPPING = { admin: 'admin', writer: 'writer', 'fin-team': 'finance' };

/** A host route guarded by group name alone: `finance` holds no module permission. */
@Controller('finance-reports')
class HostFinanceController {
  @Get()
  @BackOfficeAuthorize({ groups: ['finance'] })
  list() {
    return { reports: [] };
  }
}

const callback = (port: number, name: string) => `http://127.0.0.1:${port}/backoffice/auth/external/${name}/callback`;

function clientsFor(port: number): TestOidcClient[] {
  return PROVIDERS.map((name) => ({ client_id: `bo-${name}`, client_secret: SECRET, redirect_uris: [callback(port, name)] }));
}

function providersFor(issuer: string): BackOfficeExternalLoginProviderOptions[] {
  const base = (name: (typeof PROVIDERS)[number]) => ({ name, displayName: name, issuer, clientId: `bo-${name}`, clientSecret: SECRET, scopes: GROUPS_SCOPES });
  return [
    { ...base('plain'), autoLink: { enabled: true, groupsClaim: 'groups' } },
    { ...base('mapped'), autoLink: { enabled: true, groupsClaim: 'groups', groupMapping: MAPPING, groupsManagedByProvider: true } },
    { ...base('lenient'), autoLink: { enabled: true, groupsClaim: 'groups', groupMapping: MAPPING, groupsManagedByProvider: true, missingGroupsClaim: 'noGroups' } },
  ];
}

describe('Groups from an external provider\'s groups claim (OpenID Connect, contract section 6)', () => {
  let db: TestDatabase;
  let idp: TestOidcProvider;
  let ctx: IdentityApp;
  let counter = 0;
  const sub = (label: string) => `${label}-${++counter}-${Date.now()}`;
  const newUser = userFactory(() => ctx, 'ext-groups');
  /** Every line the app logged. */
  const logLines: string[] = [];
  const logger = {
    log: (m: unknown) => void logLines.push(String(m)),
    warn: (m: unknown) => void logLines.push(String(m)),
    error: (m: unknown) => void logLines.push(String(m)),
    debug: () => undefined,
    verbose: () => undefined,
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await TestOidcProvider.reservePort();
    idp = await TestOidcProvider.start(clientsFor(port));
    ctx = await createIdentityApp(db, {
      port,
      logger,
      controllers: [HostFinanceController],
      identity: {
        publicUrl: `http://127.0.0.1:${port}`,
        session: { secureCookies: false },
        rateLimits: { enabled: false },
        externalLogins: providersFor(idp.issuer),
      },
    });
    // A host group that carries a permission: privileged, though it is not `admin`.
    await ctx.app.get(BackOfficeGroupService).create({ alias: 'auditors', name: 'Auditors', permissions: ['audit.read'] });
    // A host group without any module permission, which the host's own routes check by name.
    await ctx.app.get(BackOfficeGroupService).create({ alias: 'finance', name: 'Finance', permissions: [] });
    // Another enabled admin: the last-admin rule never hides what a provider sign-in does to an admin's groups.
    await newUser({ groups: ['admin'] });
    await waitFor(async () => (await new HttpClient(ctx.url).get('/auth/external/providers')).body.every((p: { available: boolean }) => p.available));
  });
  afterAll(async () => {
    await ctx?.close();
    await idp?.stop();
    await db?.drop();
  });

  /** A person known to the provider with a verified email and these claims. */
  function account(label: string, claims: Record<string, unknown> = {}): { login: string; email: string } {
    const login = sub(label);
    const email = `${login}@idp.example.com`;
    idp.accounts.set(login, { email, email_verified: true, name: `Person ${login}`, ...claims });
    return { login, email };
  }

  async function signIn(provider: string, login: string): Promise<{ id: string; groups: string[]; person: Person }> {
    const person = new Person(ctx.url);
    expectSignedIn(await person.signIn(provider, login));
    const me = await person.app.get('/auth/me');
    expect(me.status).toBe(200);
    return { id: me.body.id, groups: [...me.body.groups].sort(), person };
  }

  async function auditOf(userId: string, event: string): Promise<Array<Record<string, unknown>>> {
    const rows = await ctx.app.get(DataSource).query(
      `SELECT details FROM backoffice_audit_entry WHERE affected_user_id = $1 AND event = $2 ORDER BY created_at`,
      [userId, event],
    );
    return rows.map((r: { details: Record<string, unknown> }) => r.details);
  }

  describe('provider groups are granted only through an explicit groupMapping', () => {
    it('OWASP ASVS 4.0 4.1.3: without groupMapping, the groups claim grants nothing, not even a group without permissions that a host route guards by name ("finance"); the names are audited (not_mapped)', async () => {
      const { login } = account('plain', { groups: ['finance', 'admin', 'auditors', 'writer', 'no-such-group'] });
      const user = await signIn('plain', login);
      expect(user.groups).toEqual([]);
      expect((await ctx.userManager.findById(user.id))!.groups).toEqual([]);
      expect((await user.person.app.get(`${ctx.url}/finance-reports`)).status).toBe(403);
      expect(await auditOf(user.id, 'backoffice.user.provider-groups.refused')).toEqual([
        { provider: 'plain', groups: ['finance', 'admin', 'auditors', 'writer'], reason: 'not_mapped' },
      ]);
    });

    it('OWASP ASVS 4.0 4.1.3: a groups claim without groupMapping is reported at start-up (it grants nothing)', () => {
      expect(logLines.some((l) => l.includes('"plain"') && l.includes('autoLink.groupMapping') && l.includes('grants nothing'))).toBe(true);
      expect(logLines.some((l) => l.includes('"mapped"') && l.includes('autoLink.groupMapping'))).toBe(false);
    });

    it('a host that maps provider groups explicitly grants them (admin, and "fin-team" to the host group finance), nothing refused; an unmapped alias ("translator") grants nothing', async () => {
      const { login } = account('mapped', { groups: ['admin', 'writer', 'translator', 'fin-team'] });
      const user = await signIn('mapped', login);
      expect(user.groups).toEqual(['admin', 'finance', 'writer']);
      expect((await user.person.app.get(`${ctx.url}/finance-reports`)).status).toBe(200);
      expect(await auditOf(user.id, 'backoffice.user.provider-groups.refused')).toEqual([]);
    });

    it('with groupsManagedByProvider, a later claim naming an alias that is not mapped ("translator", "finance") does not add it', async () => {
      const { login } = account('managed', { groups: ['writer'] });
      const first = await signIn('mapped', login);
      expect(first.groups).toEqual(['writer']);
      idp.accounts.set(login, { ...idp.accounts.get(login), groups: ['writer', 'translator', 'finance'] });
      expect((await signIn('mapped', login)).groups).toEqual(['writer']);
    });
  });

  describe('groups managed by the provider when the claim cannot be read', () => {
    /** Entra ID's groups overage: no `groups`, but `_claim_names` / `_claim_sources` pointing at Microsoft Graph. */
    const overage = {
      groups: undefined,
      _claim_names: { groups: 'src1' },
      _claim_sources: { src1: { endpoint: 'https://graph.microsoft.com/v1.0/users/00000000-0000-0000-0000-000000000000/getMemberObjects' } },
    };

    async function failedLoginReasons(since: Date): Promise<string[]> {
      const rows = await ctx.app.get(DataSource).query(
        `SELECT details FROM backoffice_audit_entry WHERE event = 'backoffice.user.login.failed' AND created_at >= $1 ORDER BY created_at`,
        [since],
      );
      return rows.map((r: { details: { reason: string } }) => r.details.reason);
    }

    it('OWASP ASVS 4.0 4.1.5: a groups overage (Entra ID: _claim_names / _claim_sources instead of groups) does not strip the admin\'s groups: the sign-in is refused (external_groups_unavailable), groups unchanged, audited', async () => {
      const { login } = account('overage', { groups: ['admin', 'writer'] });
      const user = await signIn('mapped', login);
      expect(user.groups).toEqual(['admin', 'writer']);
      idp.accounts.set(login, { ...idp.accounts.get(login), ...overage });
      const since = new Date(Date.now() - 1000);
      const result = await new Person(ctx.url).signIn('mapped', login);
      expect((await ctx.userManager.findById(user.id))!.groups.sort()).toEqual(['admin', 'writer']);
      expectRefused(result, 'external_groups_unavailable');
      expect(logLines.some((l) => l.includes('overage') && l.includes('_claim_names'))).toBe(true);
      expect(await failedLoginReasons(since)).toContain('external_groups_unavailable');
      expect(await auditOf(user.id, 'backoffice.user.groups.changed')).toHaveLength(0);
    });

    it('OWASP ASVS 4.0 4.1.5: a groups claim that is missing (scope not granted, claim not configured) does not strip the groups either: refused, groups unchanged', async () => {
      const { login } = account('missing', { groups: ['writer'] });
      const user = await signIn('mapped', login);
      expect(user.groups).toEqual(['writer']);
      idp.accounts.set(login, { ...idp.accounts.get(login), groups: undefined });
      const result = await new Person(ctx.url).signIn('mapped', login);
      expect((await ctx.userManager.findById(user.id))!.groups).toEqual(['writer']);
      expectRefused(result, 'external_groups_unavailable');
    });

    it('a first sign-in with an overage creates nobody', async () => {
      const { login, email } = account('overage-first', overage);
      expectRefused(await new Person(ctx.url).signIn('mapped', login), 'external_groups_unavailable');
      expect(await ctx.userManager.findByEmail(email)).toBeNull();
    });

    it('a groups claim that is not a list of names (a number) is refused the same way', async () => {
      const { login } = account('garbled', { groups: ['writer'] });
      const user = await signIn('mapped', login);
      idp.accounts.set(login, { ...idp.accounts.get(login), groups: 42 });
      expectRefused(await new Person(ctx.url).signIn('mapped', login), 'external_groups_unavailable');
      expect((await ctx.userManager.findById(user.id))!.groups).toEqual(['writer']);
    });

    it.each([
      ['a list of objects ([{ id, name }])', [{ id: 'g-1', name: 'writer' }]],
      ['a list of numbers', [123]],
      ['a list mixing names and numbers', ['writer', 7]],
    ])('OWASP ASVS 4.0 4.1.5: a groups claim that is %s is unreadable: refused (external_groups_unavailable), groups not stripped', async (_what, claim) => {
      const { login } = account('non-strings', { groups: ['writer'] });
      const user = await signIn('mapped', login);
      expect(user.groups).toEqual(['writer']);
      idp.accounts.set(login, { ...idp.accounts.get(login), groups: claim });
      expectRefused(await new Person(ctx.url).signIn('mapped', login), 'external_groups_unavailable');
      // missingGroupsClaim: 'noGroups' is about an absent claim only.
      expectRefused(await new Person(ctx.url).signIn('lenient', login), 'external_groups_unavailable');
      expect((await ctx.userManager.findById(user.id))!.groups).toEqual(['writer']);
    });

    it('with missingGroupsClaim: "noGroups" (providers that leave an empty claim out) an absent claim means no groups; an overage is still refused', async () => {
      const { login } = account('lenient', { groups: ['writer'] });
      const user = await signIn('lenient', login);
      expect(user.groups).toEqual(['writer']);
      idp.accounts.set(login, { ...idp.accounts.get(login), groups: undefined });
      expect((await signIn('lenient', login)).groups).toEqual([]);
      idp.accounts.set(login, { ...idp.accounts.get(login), groups: ['writer'] });
      expect((await signIn('lenient', login)).groups).toEqual(['writer']);
      idp.accounts.set(login, { ...idp.accounts.get(login), ...overage });
      expectRefused(await new Person(ctx.url).signIn('lenient', login), 'external_groups_unavailable');
      expect((await ctx.userManager.findById(user.id))!.groups).toEqual(['writer']);
    });

    it('an explicitly empty groups claim still means "no groups": the provider removed them all', async () => {
      const { login } = account('emptied', { groups: ['writer'] });
      const user = await signIn('mapped', login);
      idp.accounts.set(login, { ...idp.accounts.get(login), groups: [] });
      expect((await signIn('mapped', login)).groups).toEqual([]);
      expect((await ctx.userManager.findById(user.id))!.groups).toEqual([]);
    });
  });
});
