import { gunzipSync } from 'node:zlib';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { BackOfficeIdentityModule } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, TEST_IDENTITY_DEFAULTS, TEST_PASSWORD, typeOrmOptionsFor, userFactory, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { landsOn, SAME_ORIGIN_PATH_VECTORS } from '../support/same-origin-path-vectors.js';

const PAGES = ['/', '/two-factor', '/forgot-password', '/reset-password', '/accept-invite', '/confirm-email', '/account'];

describe('sign-in screens over HTTP (the pages, their headers and assets)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const newUser = userFactory(() => ctx, 'ui');
  const client = () => new HttpClient(ctx.url);

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      identity: {
        rateLimits: { enabled: false },
        session: { idleTimeoutMinutes: 20, absoluteTimeoutHours: 12 },
        ui: { branding: { productName: 'Acme "Admin" & Co', logoUrl: 'https://cdn.example.com/logo.svg', accentColor: '#aa3300' }, messages: { signInButton: 'Log in' } },
      },
    });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it.each(PAGES)('serves %s as HTML with a strict CSP (ASVS 14.4.3), no framing, no referrer and no caching', async (path) => {
    const result = await client().get(path);
    expect(result.status).toBe(200);
    expect(result.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = result.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain('img-src \'self\' data: https://cdn.example.com');
    expect(result.headers.get('referrer-policy')).toBe('no-referrer');
    expect(result.headers.get('x-frame-options')).toBe('DENY');
    expect(result.headers.get('cache-control')).toBe('no-store');
    // no inline script: every <script> either has a src on this origin or is a JSON data block
    for (const tag of result.text.match(/<script[^>]*>/g) ?? []) {
      expect(tag).toMatch(/src="\/backoffice\/assets\/|type="application\/json"/);
    }
    expect(result.text).not.toMatch(/\sstyle=|\son[a-z]+=/i);
    expect(result.text).not.toMatch(/https?:\/\/(?!cdn\.example\.com)/);
  });

  it.each(PAGES)('%s with a trailing slash: a 302 to the page on both platforms, the query kept, never to another host (ASVS 5.1.5)', async (path) => {
    const page = path === '/' ? '/backoffice' : `/backoffice${path}`;
    for (const query of ['', '?returnUrl=%2Fbackoffice%2Faccount&x=%2F%2Fevil.example']) {
      const answer = await fetch(`${ctx.url}${page}/${query}`, { redirect: 'manual' });
      expect(answer.status, `${page}/${query}`).toBe(302);
      expect(answer.headers.get('location'), `${page}/${query}`).toBe(`${page}${query}`);
      expect(answer.headers.get('cache-control')).toBe('no-store');
    }
    // not a page: no redirect built from the request's path (an open redirect to //evil.example/)
    for (const other of [`${page}//evil.example/`, `/backoffice//evil.example/${path.slice(1)}`]) {
      const answer = await fetch(`${ctx.url}${other}`, { redirect: 'manual' });
      expect(answer.status, other).toBe(404);
      expect(answer.headers.get('location'), other).toBeNull();
    }
  });

  it('the email-change link of the confirmation email (/confirm-email#userId=...&token=...) has a page that confirms it', async () => {
    const page = await client().get('/confirm-email');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<form id="bo-confirm-email-form" method="post" novalidate>');
    expect(page.text).toContain('>Confirm email address</button>');
    const pagesJs = await client().get('/assets/pages.js');
    expect(pagesJs.text).toContain("'/auth/me/email/confirm'");
    expect((await client().get('/?notice=email-changed')).text).toContain('Your email address has been changed.');
  });

  it('OWASP ASVS 4.0 8.3.1: every form of every page is method="post", so a submit before pages.js runs never puts its fields in the URL', async () => {
    for (const path of ['/', '/two-factor', '/forgot-password', '/reset-password', '/accept-invite', '/confirm-email', '/account']) {
      const page = await client().get(path);
      const forms = page.text.match(/<form\b[^>]*>/g) ?? [];
      expect(forms.length, path).toBeGreaterThan(0);
      expect(forms.filter((form) => !form.includes(' method="post"')), path).toEqual([]);
    }
  });

  it('escapes the branding and uses the message overrides', async () => {
    const page = await client().get('/');
    expect(page.text).toContain('Acme &quot;Admin&quot; &amp; Co');
    expect(page.text).not.toContain('"Admin"');
    expect(page.text).toContain('>Log in</button>');
    expect(page.text).toContain('<label for="bo-username">Email</label>');
    const theme = await client().get('/assets/theme.css');
    expect(theme.text).toContain('--bo-accent: #aa3300');
  });

  it('keeps only same-origin returnUrl paths and maps ?error= codes to catalogue messages, never echoing input', async () => {
    const config = (text: string) => JSON.parse(/<script type="application\/json" id="bo-config">(.*?)<\/script>/.exec(text)![1]);
    expect(config((await client().get('/?returnUrl=%2Fbackoffice%2Faccount')).text).returnUrl).toBe('/backoffice/account');
    for (const bad of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)']) {
      expect(config((await client().get(`/?returnUrl=${encodeURIComponent(bad)}`)).text).returnUrl, bad).toBeNull();
    }
    const locked = await client().get('/?error=external_email_unverified');
    expect(locked.text).toContain('The external provider has not verified your email address.');
    const injected = await client().get(`/?error=${encodeURIComponent('<img src=x onerror=alert(1)>')}`);
    expect(injected.text).not.toContain('<img src=x');
    expect(injected.text).toContain('Signing in with the external provider failed.');
    const xssReturn = await client().get(`/?returnUrl=${encodeURIComponent('/"></script><script>alert(1)</script>')}`);
    expect(xssReturn.text).not.toContain('<script>alert(1)');
    // Handed to the script as the final path, as the URL parser writes it (where the browser would go with the input).
    expect(config(xssReturn.text).returnUrl).toBe('/%22%3E%3C/script%3E%3Cscript%3Ealert(1)%3C/script%3E');
  });

  it('OWASP ASVS 4.0 5.1.3: an ?error= or ?notice= that names a property every object has (constructor, __proto__, toString) is an unknown code: the generic provider message, never none', async () => {
    const config = (text: string) => JSON.parse(/<script type="application\/json" id="bo-config">(.*?)<\/script>/.exec(text)![1]);
    const alert = (text: string) => /<div id="bo-alert"[^>]*>(.*?)<\/div>/.exec(text)![1];
    const status = (text: string) => /<div id="bo-status"[^>]*>(.*?)<\/div>/.exec(text)![1];
    for (const code of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
      for (const path of ['/', '/account']) {
        const page = await client().get(`${path}?error=${code}`);
        expect(page.status, `${path} ${code}`).toBe(200);
        // The message that stops pages.js's automatic redirect to an autoRedirect provider (page.error).
        expect(alert(page.text), `${path} ${code}`).toBe('Signing in with the external provider failed. Try again.');
        expect(config(page.text).error, `${path} ${code}`).toBe(true);
      }
      const notice = await client().get(`/?notice=${code}`);
      expect(notice.status, code).toBe(200);
      expect(status(notice.text), code).toBe('');
    }
  });

  it('OWASP ASVS 4.0 5.1.4: a returnUrl within 2048 characters as given but far longer once percent-encoded (1,500 CJK characters: 13,500) is refused, not handed to pages.js, whose second-factor URL with it would answer 431', async () => {
    const config = (text: string) => JSON.parse(/<script type="application\/json" id="bo-config">(.*?)<\/script>/.exec(text)![1]);
    const input = `/backoffice/${'\u4e00'.repeat(1500)}`;
    const signIn = await client().get(`/?returnUrl=${encodeURIComponent(input)}`);
    expect(signIn.status).toBe(200);
    const handedOut: string | null = config(signIn.text).returnUrl;
    // What pages.js does with it after a password sign-in of a two-factor account (afterSignIn).
    const next = `/two-factor?${new URLSearchParams({ returnUrl: handedOut ?? '', providers: 'totp' })}`;
    expect((await client().get(next)).status, `returnUrl of ${handedOut?.length} characters`).toBe(200);
    expect(handedOut).toBeNull();
  });

  it.each(SAME_ORIGIN_PATH_VECTORS)('the sign-in and second-factor pages hand the script returnUrl $input ($why) only as a same-origin path', async ({ input, path }) => {
    const config = (text: string) => JSON.parse(/<script type="application\/json" id="bo-config">(.*?)<\/script>/.exec(text)![1]);
    for (const page of ['/', '/two-factor']) {
      const handedOut: string | null = config((await client().get(`${page}?returnUrl=${encodeURIComponent(input)}`)).text).returnUrl;
      // Where the browser goes with it (pages.js: window.location.assign(returnUrl)).
      expect(landsOn(handedOut), page).toBe(landsOn(path));
    }
  });

  it('shows the second-factor page for ?status=requiresTwoFactor (external sign-in) and ?error= on the account page', async () => {
    const pending = await client().get('/?status=requiresTwoFactor&providers=totp&returnUrl=%2Fbackoffice%2Faccount');
    expect(pending.status).toBe(200);
    expect(pending.text).toContain('<label for="bo-code">Code</label>');
    expect(pending.text).toContain('"page":"two-factor"');
    const account = await client().get('/account?error=login_already_linked');
    expect(account.text).toContain('That external login is already linked to an account.');
  });

  it('serves assets gzipped when asked, long-cached only under their content hash', async () => {
    const page = await client().get('/');
    const src = /<script src="(\/backoffice\/assets\/pages\.js\?v=([0-9a-f]+))"/.exec(page.text)!;
    const response = await fetch(`${ctx.url}${src[1]}`, { headers: { 'accept-encoding': 'gzip' } });
    expect(response.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(response.headers.get('cache-control')).toContain('immutable');
    const plain = await client().get('/assets/pages.js');
    expect(plain.headers.get('cache-control')).toBe('no-cache');
    expect(plain.text).toContain('BackOfficeSession');
    // fetch decodes gzip itself: compare with a raw request
    const raw = await new Promise<{ encoding?: string; body: Buffer }>((resolve, reject) => {
      import('node:http').then(({ get }) =>
        get(`${ctx.url}/backoffice/assets/pages.js`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }));
        }).on('error', reject),
      );
    });
    expect(raw.encoding).toBe('gzip');
    expect(gunzipSync(raw.body).toString('utf8')).toBe(plain.text);
    expect(raw.body.length).toBeLessThan(plain.text.length / 2);
    expect((await client().get('/assets/..%2Fui.controller.ts')).status).toBe(404);
    expect((await client().get('/assets/nope.js')).status).toBe(404);
  });

  it('RFC 9110 12.5.3: an Accept-Encoding that refuses gzip (q=0) gets the asset uncompressed; one that accepts it still gets gzip', async () => {
    const raw = (acceptEncoding: string) =>
      new Promise<{ encoding?: string; etag?: string; body: Buffer }>((resolve, reject) => {
        import('node:http').then(({ get }) =>
          get(`${ctx.url}/backoffice/assets/pages.js`, { headers: { 'accept-encoding': acceptEncoding } }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ encoding: res.headers['content-encoding'], etag: res.headers.etag, body: Buffer.concat(chunks) }));
          }).on('error', reject),
        );
      });
    const plain = (await client().get('/assets/pages.js')).text;
    for (const refused of ['gzip;q=0', 'identity, gzip; q=0.0', 'br;q=1, GZIP ; Q=0']) {
      const answer = await raw(refused);
      expect(answer.encoding, refused).toBeUndefined();
      expect(answer.etag, refused).not.toMatch(/-gz"$/);
      expect(answer.body.toString('utf8'), refused).toBe(plain);
    }
    for (const accepted of ['gzip;q=0.5', 'deflate, gzip', 'x-gzip']) expect((await raw(accepted)).encoding, accepted).toBe('gzip');
  });

  it('fills session.js with the route prefix, the idle warning and the message catalogue', async () => {
    const script = await client().get('/assets/session.js');
    expect(script.text).not.toContain('__BACKOFFICE_SESSION_CONFIG__');
    expect(script.text).toContain('"base":"/backoffice"');
    expect(script.text).toContain('"idleWarningSeconds":120');
    expect(script.text).toContain('"signInButton":"Log in"');
    expect(script.text).toContain('"staySignedInButton":"Stay signed in"');
  });

  it('GET /auth/me tells the idle and absolute deadlines; a peek does not slide the idle deadline', async () => {
    const user = await newUser();
    const http = client();
    expect((await http.login(user.email, TEST_PASSWORD)).status).toBe(200);
    const first = await http.get('/auth/me');
    const { now, idleExpiresAt, absoluteExpiresAt } = first.body.session;
    expect(Date.parse(idleExpiresAt) - Date.parse(now)).toBeGreaterThan(19 * 60_000);
    expect(Date.parse(idleExpiresAt) - Date.parse(now)).toBeLessThanOrEqual(20 * 60_000);
    expect(Date.parse(absoluteExpiresAt) - Date.parse(now)).toBeGreaterThan(11.9 * 3_600_000);

    ctx.clock.advance(10 * 60_000);
    const peek = await http.get('/auth/me', { headers: { 'x-backoffice-session-peek': '1' } });
    expect(peek.status).toBe(200);
    expect(peek.body.session.idleExpiresAt).toBe(idleExpiresAt);
    expect(Date.parse(peek.body.session.idleExpiresAt) - Date.parse(peek.body.session.now)).toBeLessThanOrEqual(10 * 60_000);

    const touched = await http.get('/auth/me');
    expect(Date.parse(touched.body.session.idleExpiresAt)).toBeGreaterThan(Date.parse(idleExpiresAt) + 9 * 60_000);
    expect(touched.body.session.absoluteExpiresAt).toBe(absoluteExpiresAt);

    // a peek cannot keep a session alive past its idle deadline
    ctx.clock.advance(19 * 60_000);
    expect((await http.get('/auth/me', { headers: { 'x-backoffice-session-peek': '1' } })).status).toBe(200);
    ctx.clock.advance(2 * 60_000);
    expect((await http.get('/auth/me', { headers: { 'x-backoffice-session-peek': '1' } })).status).toBe(401);
  });
});

describe('sign-in screens turned off', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { ui: false } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('answers 404 JSON for every page and asset with ui: false, and the API still works', async () => {
    for (const path of [...PAGES, '/assets/session.js', '/assets/ui.css']) {
      const result = await new HttpClient(ctx.url).get(path);
      expect(result.status, path).toBe(404);
      expect(result.body.code, path).toBe('not_found');
    }
    expect((await new HttpClient(ctx.url).post('/auth/login', { username: 'nobody@example.com', password: 'wrong password here' })).status).toBe(401);
  });
});

describe('sign-in screens on Fastify', () => {
  it('serves /backoffice and redirects /backoffice/ (which Fastify routes apart) to it, keeping the query', async () => {
    const db = await createTestDatabase();
    const moduleRef = await Test.createTestingModule({
      imports: [TypeOrmModule.forRoot(typeOrmOptionsFor(db)), EventEmitterModule.forRoot(), BackOfficeIdentityModule.forRoot(TEST_IDENTITY_DEFAULTS)],
    }).compile();
    const app = moduleRef.createNestApplication(new FastifyAdapter(), { logger: ['error'] });
    try {
      await app.listen(0, '127.0.0.1');
      const { port } = app.getHttpServer().address() as { port: number };
      const base = `http://127.0.0.1:${port}/backoffice`;
      const page = await fetch(base);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<button type="submit">Sign in</button>');
      const slash = await fetch(`${base}/?returnUrl=%2Fbackoffice%2Faccount`, { redirect: 'manual' });
      expect(slash.status).toBe(302);
      expect(slash.headers.get('location')).toBe('/backoffice?returnUrl=%2Fbackoffice%2Faccount');
      const asset = await fetch(`${base}/assets/session.js`);
      expect(asset.status).toBe(200);
      expect(await asset.text()).toContain('"base":"/backoffice"');
    } finally {
      await app.close();
      await db.drop();
    }
  });
});
