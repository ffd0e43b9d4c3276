import { startOidcSignInApp, type OidcSignInApp } from '../support/external-login-app.js';
import { expectSignedIn } from '../support/external-login-results.js';
import { pendingSignInCookies } from '../support/pending-sign-in-cookies.js';
import type { IdentityApp } from '../support/identity-app.js';
import { ExternalLoginPerson as Person, TestOidcProvider } from '../support/oidc-provider.js';

// The sign-in page's automatic redirect to an `autoRedirect` provider marks its challenge (`?auto=1`). A browser that
// holds a live session never starts such a challenge (OWASP ASVS 5.0 3.5.x / 7.x, login CSRF and session swap by
// cookie tossing): a sibling subdomain that tosses a second session cookie at `Path=/backoffice/auth/me` makes the
// page's GET /auth/me answer 401, so the page redirects although the victim is signed in; the challenge would record
// that live session for replacement and a silent provider sign-in would swap it for the attacker's. The marked
// challenge answers with the sign-in page and `?error=already_signed_in` instead: no state cookie, no provider.

const SECRET = 'client-auto-secret-0123456789abcd';
const SESSION_COOKIE = 'backoffice_session';
const { externalLogin: STATE_COOKIE } = pendingSignInCookies({ secureCookies: false });

describe('Automatic provider redirect (challenge ?auto=1) from a signed-in browser', () => {
  let oidc: OidcSignInApp;
  let idp: TestOidcProvider;
  let ctx: IdentityApp;
  let counter = 0;

  beforeAll(async () => {
    oidc = await startOidcSignInApp({ clientId: 'backoffice-auto', clientSecret: SECRET }, { autoRedirect: true, autoLink: { enabled: true } });
    ({ idp, ctx } = oidc);
  });
  afterAll(async () => {
    await oidc?.close();
  });

  /** A person signed in through the provider: their live session cookie's value. */
  async function signedIn(): Promise<{ person: Person; token: string }> {
    const login = `auto-${++counter}-${Date.now()}`;
    idp.accounts.set(login, { email: `${login}@idp.example.com`, email_verified: true, name: `Person ${counter}` });
    const person = new Person(ctx.url);
    expectSignedIn(await person.signIn('oidc', login));
    return { person, token: person.app.cookies.get(SESSION_COOKIE)! };
  }

  /** GET the challenge with exactly this Cookie header (none when undefined). */
  function challenge(query: string, cookie?: string) {
    return new Person(ctx.url).app.get(`/auth/external/oidc/challenge?${query}`, { redirect: 'manual', headers: cookie === undefined ? {} : { cookie } });
  }

  function expectToProvider(answer: Awaited<ReturnType<typeof challenge>>): void {
    expect(answer.status, answer.text).toBe(302);
    expect(answer.headers.get('location')!.startsWith(`${idp.issuer}/`), answer.headers.get('location')!).toBe(true);
    expect(answer.setCookies.some((c) => c.startsWith(`${STATE_COOKIE}=`) && !/Max-Age=0/i.test(c))).toBe(true);
  }

  function expectAlreadySignedIn(answer: Awaited<ReturnType<typeof challenge>>, returnUrl?: string): void {
    expect(answer.status, answer.text).toBe(302);
    const query = new URLSearchParams({ ...(returnUrl ? { returnUrl } : {}), error: 'already_signed_in' });
    expect(answer.headers.get('location')).toBe(`/backoffice?${query}`);
    expect(answer.setCookies.filter((c) => c.startsWith(`${STATE_COOKIE}=`) && !/Max-Age=0/i.test(c))).toEqual([]);
  }

  it('a live session: 302 to the sign-in page with ?error=already_signed_in and the returnUrl, no state cookie, no provider; the session stays', async () => {
    const { person, token } = await signedIn();
    expectAlreadySignedIn(await challenge('returnUrl=%2Fbackoffice%2Faccount&auto=1', `${SESSION_COOKIE}=${token}`), '/backoffice/account');
    expect((await person.app.get('/auth/me')).status).toBe(200);
  });

  it('a live session, no returnUrl: the sign-in page without one (its own default, never the sign-in page again)', async () => {
    const { token } = await signedIn();
    expectAlreadySignedIn(await challenge('auto=1', `${SESSION_COOKIE}=${token}`));
  });

  it('the session cookie sent twice (a second one tossed from a sibling subdomain), in either order: already_signed_in, no state cookie, no provider', async () => {
    const { token } = await signedIn();
    const tossed = `${SESSION_COOKIE}=${'A'.repeat(43)}`;
    expectAlreadySignedIn(await challenge('returnUrl=%2Fbackoffice%2Faccount&auto=1', `${tossed}; ${SESSION_COOKIE}=${token}`), '/backoffice/account');
    expectAlreadySignedIn(await challenge('returnUrl=%2Fbackoffice%2Faccount&auto=1', `${SESSION_COOKIE}=${token}; ${tossed}`), '/backoffice/account');
  });

  it('an ended session (signed out): on to the provider, as before', async () => {
    const { person, token } = await signedIn();
    expect((await person.app.post('/auth/logout')).status).toBeLessThan(300);
    expectToProvider(await challenge('returnUrl=%2Fbackoffice%2Faccount&auto=1', `${SESSION_COOKIE}=${token}`));
  });

  it('no session cookie: on to the provider, as before', async () => {
    expectToProvider(await challenge('returnUrl=%2Fbackoffice%2Faccount&auto=1'));
  });

  it('an unmarked challenge (a click on the provider button) with a live session: on to the provider, as before', async () => {
    const { token } = await signedIn();
    expectToProvider(await challenge('returnUrl=%2Fbackoffice%2Faccount', `${SESSION_COOKIE}=${token}`));
  });

  it.each(['2', '', 'true'])('auto=%j: 400 validation_failed, no state cookie', async (value) => {
    const answer = await challenge(`auto=${value}`);
    expect(answer.status, answer.text).toBe(400);
    expect(answer.body).toMatchObject({ code: 'validation_failed' });
    expect(answer.setCookies.filter((c) => c.startsWith(`${STATE_COOKIE}=`))).toEqual([]);
  });
});
