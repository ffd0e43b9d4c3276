import { DataSource } from 'typeorm';
import { BackOfficeGroupService, type BackOfficeExternalLoginProviderOptions } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { expectSignedIn, waitFor } from '../support/external-login-results.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { ExternalLoginPerson as Person, TestOidcProvider, type TestOidcClient } from '../support/oidc-provider.js';

// Groups that come from an OpenID provider's groups claim (contract section 6), against a real provider
// (oidc-provider in-process) whose claims the tests set: which provider groups may grant which back-office groups.

const SECRET = 'client-secret-0123456789abcdef-groups';
const GROUPS_SCOPES = ['openid', 'email', 'profile', 'groups'];

/** `plain`: groups claim passed through once (no mapping); `managed`: the same, managed by the provider; `mapped`: admin mapped explicitly. */
const PROVIDERS = ['plain', 'managed', 'mapped'] as const;

const callback = (port: number, name: string) => `http://127.0.0.1:${port}/backoffice/auth/external/${name}/callback`;

function clientsFor(port: number): TestOidcClient[] {
  return PROVIDERS.map((name) => ({ client_id: `bo-${name}`, client_secret: SECRET, redirect_uris: [callback(port, name)] }));
}

function providersFor(issuer: string): BackOfficeExternalLoginProviderOptions[] {
  const base = (name: (typeof PROVIDERS)[number]) => ({ name, displayName: name, issuer, clientId: `bo-${name}`, clientSecret: SECRET, scopes: GROUPS_SCOPES });
  return [
    { ...base('plain'), autoLink: { enabled: true, groupsClaim: 'groups' } },
    { ...base('managed'), autoLink: { enabled: true, groupsClaim: 'groups', groupsManagedByProvider: true } },
    { ...base('mapped'), autoLink: { enabled: true, groupsClaim: 'groups', groupMapping: { admin: 'admin', writer: 'writer' }, groupsManagedByProvider: true } },
  ];
}

describe('Groups from an external provider\'s groups claim (OpenID Connect, contract section 6)', () => {
  let db: TestDatabase;
  let idp: TestOidcProvider;
  let ctx: IdentityApp;
  let counter = 0;
  const sub = (label: string) => `${label}-${++counter}-${Date.now()}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await TestOidcProvider.reservePort();
    idp = await TestOidcProvider.start(clientsFor(port));
    ctx = await createIdentityApp(db, {
      port,
      identity: {
        publicUrl: `http://127.0.0.1:${port}`,
        session: { secureCookies: false },
        rateLimits: { enabled: false },
        externalLogins: providersFor(idp.issuer),
      },
    });
    // A host group that carries a permission: privileged, though it is not `admin`.
    await ctx.app.get(BackOfficeGroupService).create({ alias: 'auditors', name: 'Auditors', permissions: ['audit.read'] });
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

  async function signIn(provider: string, login: string): Promise<{ id: string; groups: string[] }> {
    const person = new Person(ctx.url);
    expectSignedIn(await person.signIn(provider, login));
    const me = await person.app.get('/auth/me');
    expect(me.status).toBe(200);
    return { id: me.body.id, groups: [...me.body.groups].sort() };
  }

  async function auditOf(userId: string, event: string): Promise<Array<Record<string, unknown>>> {
    const rows = await ctx.app.get(DataSource).query(
      `SELECT details FROM backoffice_audit_entry WHERE affected_user_id = $1 AND event = $2 ORDER BY created_at`,
      [userId, event],
    );
    return rows.map((r: { details: Record<string, unknown> }) => r.details);
  }

  describe('privileged groups need an explicit groupMapping', () => {
    it('OWASP ASVS 4.0 4.1.3: without groupMapping, a provider group named "admin" (or a group holding permissions) grants nothing on auto-link; groups without permissions still pass; the dropped grant is audited', async () => {
      const { login } = account('plain', { groups: ['admin', 'auditors', 'writer', 'no-such-group'] });
      const user = await signIn('plain', login);
      expect(user.groups).toEqual(['writer']);
      expect((await ctx.userManager.findById(user.id))!.groups).toEqual(['writer']);
      expect(await auditOf(user.id, 'backoffice.user.provider-groups.refused')).toEqual([
        { provider: 'plain', groups: ['admin', 'auditors'], reason: 'privileged_group_not_mapped' },
      ]);
    });

    it('OWASP ASVS 4.0 4.1.3: with groupsManagedByProvider and no groupMapping, a later claim naming "admin" does not make the user an admin; the refusal is audited on each such sign-in', async () => {
      const { login } = account('managed', { groups: ['writer'] });
      const first = await signIn('managed', login);
      expect(first.groups).toEqual(['writer']);
      idp.accounts.set(login, { ...idp.accounts.get(login), groups: ['writer', 'admin', 'translator'] });
      const second = await signIn('managed', login);
      expect(second.groups).toEqual(['translator', 'writer']);
      expect(await auditOf(first.id, 'backoffice.user.provider-groups.refused')).toEqual([
        { provider: 'managed', groups: ['admin'], reason: 'privileged_group_not_mapped' },
      ]);
    });

    it('a host that maps the provider group to "admin" explicitly (groupMapping: { admin: "admin" }) grants it, nothing refused', async () => {
      const { login } = account('mapped', { groups: ['admin', 'writer', 'translator'] });
      const user = await signIn('mapped', login);
      expect(user.groups).toEqual(['admin', 'writer']);
      expect(await auditOf(user.id, 'backoffice.user.provider-groups.refused')).toEqual([]);
    });
  });
});
