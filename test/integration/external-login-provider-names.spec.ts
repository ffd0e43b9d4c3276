import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackOfficeEvents } from '../../src/backoffice-identity/index.js';
import { startOidcSignInApp, type OidcSignInApp } from '../support/external-login-app.js';
import { expectSignedIn } from '../support/external-login-results.js';
import type { IdentityApp } from '../support/identity-app.js';
import { ExternalLoginPerson as Person, TestOidcProvider } from '../support/oidc-provider.js';

// The name a provider sends (the `name` claim at a first sign-in, or onExternalLogin's `{ name }` on every sign-in,
// README: `onExternalLogin: (user, claims) => ({ name: claims.name })`) is checked as every other name is (1 to 256
// characters, no control characters, no NUL or unpaired surrogate): it is never written past the user validator.

const SECRET = 'client-names-secret-0123456789abcdef';

describe('Names from an OpenID provider pass the user validator (OWASP ASVS 5.0 2.2.1)', () => {
  let oidc: OidcSignInApp;
  let idp: TestOidcProvider;
  let ctx: IdentityApp;
  let counter = 0;

  beforeAll(async () => {
    oidc = await startOidcSignInApp(
      { clientId: 'backoffice-names', clientSecret: SECRET },
      {
        autoLink: { enabled: true, defaultGroups: ['editor'] },
        onExternalLogin: (_user, claims) => ({ name: typeof claims.name === 'string' ? claims.name : undefined }),
      },
    );
    ({ idp, ctx } = oidc);
  });
  afterAll(async () => {
    await oidc?.close();
  });

  function account(label: string, name: string): { login: string; email: string } {
    const login = `${label}-${++counter}-${Date.now()}`;
    const email = `${login}@idp.example.com`;
    idp.accounts.set(login, { email, email_verified: true, name });
    return { login, email };
  }

  it('a first sign-in whose name claim the validator refuses signs in with the email as the name', async () => {
    for (const [label, name, expected] of [
      ['nul', 'Mallory\u0000Admin', null],
      ['control', 'Mallory\u001b[2J\r\nAdmin', null],
      // 255 letters then an emoji: cut at 256 code units, the pair was split into a lone surrogate. Cut before it.
      ['split-pair', `${'a'.repeat(255)}\u{1F600}`, 'a'.repeat(255)],
    ] as const) {
      const { login, email } = account(label, name);
      expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
      const user = await ctx.userManager.findByEmail(email);
      expect(user, `${label}: the user is created`).not.toBeNull();
      expect(user!.name, label).toBe(expected ?? email);
    }
  });

  it('onExternalLogin\'s name goes through the validator: a refused one leaves the stored name, the sign-in goes on', async () => {
    const { login, email } = account('sync', 'Good Name');
    expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
    expect((await ctx.userManager.findByEmail(email))!.name).toBe('Good Name');
    for (const bad of ['Evil\u0000Name', 'Evil\u0007\u001b[31mName\r\nInjected']) {
      idp.accounts.set(login, { ...idp.accounts.get(login), name: bad });
      expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
      expect((await ctx.userManager.findByEmail(email))!.name, JSON.stringify(bad)).toBe('Good Name');
    }
    idp.accounts.set(login, { ...idp.accounts.get(login), name: `${'b'.repeat(255)}\u{1F600}` });
    expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
    expect((await ctx.userManager.findByEmail(email))!.name).toBe('b'.repeat(255));
    idp.accounts.set(login, { ...idp.accounts.get(login), name: '  Renamed  ' });
    expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
    expect((await ctx.userManager.findByEmail(email))!.name).toBe('Renamed');
  });

  /** The audit entries of profile changes about `userId`, oldest first. */
  async function profileAudit(userId: string): Promise<Array<{ performingUserId: string | null; details: Record<string, unknown> }>> {
    const rows = await ctx.app.get(DataSource).query(
      `SELECT performing_user_id, details FROM backoffice_audit_entry WHERE event = $1 AND affected_user_id = $2 ORDER BY created_at, id`,
      [BackOfficeEvents.ProfileUpdated, userId],
    );
    return rows.map((row: { performing_user_id: string | null; details: Record<string, unknown> }) => ({ performingUserId: row.performing_user_id, details: row.details }));
  }

  // OWASP ASVS 5.0 16.3.x / 4.0 7.2.x: a rename by the provider is a change of the account as an admin's or the
  // user's own rename is, audited with the same before/after diff; the entry says the provider made it.
  it('a rename by onExternalLogin is audited with a before/after diff and the provider as its source; the same name is not', async () => {
    const { login, email } = account('audit', 'Old Name');
    expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
    const user = (await ctx.userManager.findByEmail(email))!;
    expect(await profileAudit(user.id), 'first sign-in (the name the user was created with)').toEqual([]);
    idp.accounts.set(login, { ...idp.accounts.get(login), name: 'New Name' });
    expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
    expect((await ctx.userManager.findByEmail(email))!.name).toBe('New Name');
    const renamed = [{ performingUserId: user.id, details: { changes: { name: { from: 'Old Name', to: 'New Name' } }, source: 'provider:oidc' } }];
    expect(await profileAudit(user.id), 'the rename').toEqual(renamed);
    expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
    expect(await profileAudit(user.id), 'a sign-in with the same name').toEqual(renamed);
    idp.accounts.set(login, { ...idp.accounts.get(login), name: 'Evil\u0000Name' });
    expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
    expect(await profileAudit(user.id), 'a refused name (not stored)').toEqual(renamed);
  });
});
