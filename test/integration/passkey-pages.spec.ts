import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';

describe('passkeys on the sign-in screens (HTML and assets)', () => {
  let db: TestDatabase;
  let on: IdentityApp;
  let off: IdentityApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    on = await createIdentityApp(db, { identity: { passkeys: { rpId: 'localhost', origins: ['http://localhost:3000'] } } });
    off = await createIdentityApp(db);
  });
  afterAll(async () => {
    await on?.close();
    await off?.close();
    await db?.drop();
  });

  it('with passkeys: the sign-in page offers "Sign in with a passkey" and autofill, the second step "Use a passkey", the account page a passkeys section', async () => {
    const http = new HttpClient(on.url);
    const signIn = (await http.get('/')).text;
    expect(signIn).toContain('>Sign in with a passkey</button>');
    expect(signIn).toContain('autocomplete="username webauthn"');
    expect(signIn).toMatch(/<script src="\/backoffice\/assets\/webauthn\.js\?v=[0-9a-f]{12}" defer><\/script>\s*<script src="\/backoffice\/assets\/passkeys\.js\?v=[0-9a-f]{12}" defer>/);
    // pages.js (window.BackOfficePages) runs before passkeys.js: deferred scripts run in document order.
    expect(signIn.indexOf('assets/pages.js')).toBeLessThan(signIn.indexOf('assets/passkeys.js'));
    const twoFactor = (await http.get('/two-factor')).text;
    expect(twoFactor).toContain('>Use a passkey</button>');
    // hidden until passkeys.js knows the account has a passkey (?providers= of the sign-in answer)
    expect(twoFactor).toContain('<div class="bo-passkey" id="bo-passkey-2fa-box" hidden>');
    const account = (await http.get('/account')).text;
    expect(account).toContain('<h2 id="bo-passkeys-heading" tabindex="-1">Passkeys</h2>');
    expect(account).toMatch(/<label for="bo-passkey-name">Passkey name<\/label>/);
    expect(account).toContain('>Add a passkey</button>');
    expect((await http.get('/forgot-password')).text).not.toContain('webauthn.js');
  });

  it.each(['/', '/two-factor', '/account'])('ASVS 14.4.3: %s with passkeys keeps the strict CSP: scripts from this origin only, no inline script, no framing', async (path) => {
    const result = await new HttpClient(on.url).get(path);
    const csp = result.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    expect(csp).toContain("frame-ancestors 'none'");
    const scripts = result.text.match(/<script[^>]*>/g) ?? [];
    expect(scripts.some((tag) => tag.includes('/backoffice/assets/webauthn.js'))).toBe(true);
    for (const tag of scripts) expect(tag).toMatch(/src="\/backoffice\/assets\/|type="application\/json"/);
  });

  it('serves @simplewebauthn/browser from this origin as assets/webauthn.js (no CDN), cacheable by version', async () => {
    const http = new HttpClient(on.url);
    const page = (await http.get('/')).text;
    const version = /webauthn\.js\?v=([0-9a-f]{12})/.exec(page)![1];
    const asset = await http.get(`/assets/webauthn.js?v=${version}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(asset.headers.get('cache-control')).toContain('immutable');
    expect(asset.text).toContain('SimpleWebAuthnBrowser');
    expect(asset.text).toContain('@simplewebauthn/browser@14');
  });

  it('session.js names the same versioned webauthn.js, for "Sign in with a passkey" in its "Your session has ended" dialog on host pages', async () => {
    const http = new HttpClient(on.url);
    const version = /webauthn\.js\?v=([0-9a-f]{12})/.exec((await http.get('/')).text)![1];
    expect((await http.get('/assets/session.js')).text).toContain(`"webAuthnScript":"/backoffice/assets/webauthn.js?v=${version}"`);
  });

  it('without passkeys: no passkey button, section or script, and no webauthn.js', async () => {
    const http = new HttpClient(off.url);
    for (const path of ['/', '/two-factor', '/account']) {
      const text = (await http.get(path)).text;
      expect(text).not.toContain('bo-passkey');
      expect(text).not.toMatch(/passkeys\.js|webauthn/);
      expect(text).toContain('"passkeys":false');
    }
    expect((await http.get('/assets/webauthn.js')).status).toBe(404);
    expect((await http.get('/assets/session.js')).text).toContain('"webAuthnScript":null');
  });
});
