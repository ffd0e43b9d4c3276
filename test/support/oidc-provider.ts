import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import Provider from 'oidc-provider';
import { HttpClient, type HttpResult } from './http-client.js';

/** Claims of an account at the test identity provider. */
export interface TestAccountClaims {
  email?: string;
  email_verified?: boolean;
  name?: string;
  groups?: string[];
  [claim: string]: unknown;
}

export interface TestOidcClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  post_logout_redirect_uris?: string[];
}

/**
 * A real OpenID provider (`oidc-provider`, the certified Node implementation) on a loopback port. Its
 * development interactions accept any login; the accounts' claims come from {@link accounts}, so tests decide
 * what the provider says (email, email_verified, groups). It can be stopped and started again on the same port.
 */
export class TestOidcProvider {
  readonly accounts = new Map<string, TestAccountClaims>();
  /**
   * Changes the ID token of the next token responses, as a broken or hostile provider (or a network attacker)
   * would: `signature` flips its signature, `expired` re-signs it (with the provider's own key) an hour in the
   * past, `amr` re-signs it with these authentication methods, `authTime` re-signs it with an `auth_time` that many
   * seconds ago (null: without `auth_time`), as a provider that reused an old session would; `claims` re-signs it with
   * these claims merged in (`undefined` values removed: e.g. another `iss`, `aud` with more audiences, `azp`); `alg`
   * re-signs it unsigned (`none`) or with HS256 and `secret` (the client secret, as a forger who knows it would);
   * `foreignKey` re-signs it (RS256, same `kid`) with a forger's own key and names that key in the header: `jwk` embeds
   * it, `jku` points to a JWKS holding it, served at {@link forgerJwksUrl}; `algorithmConfusion` re-signs it with HS256
   * keyed with the provider's own public key (PEM), for a client that would verify an HMAC with whatever key the JWKS
   * gives. `undefined`: tokens as issued.
   */
  idTokenChange:
    | { kind: 'signature' }
    | { kind: 'expired' }
    | { kind: 'amr'; amr: string[] }
    | { kind: 'authTime'; secondsAgo: number | null }
    | { kind: 'claims'; claims: Record<string, unknown> }
    | { kind: 'alg'; alg: 'none' }
    | { kind: 'alg'; alg: 'HS256'; secret: string }
    | { kind: 'foreignKey'; embed: 'jwk' | 'jku' }
    | { kind: 'algorithmConfusion' }
    | undefined;
  /**
   * Replaces the next token responses' body as a broken or hostile provider would: `body` is sent as it is (with
   * `contentType`, default `application/json`), e.g. text that is no JSON, or a valid response padded to megabytes;
   * `chunked`: streamed without a Content-Length. `undefined`: token responses as issued.
   */
  tokenResponseChange: ((issued: Record<string, unknown>) => { body: string; contentType?: string; chunked?: boolean }) | undefined;

  /** While true every connection is reset before an answer (the provider is "down" but keeps its port). */
  down = false;
  /** While true requests get no answer at all (a provider that hangs); they are dropped when the provider stops. */
  hang = false;
  /** While set, requests whose path starts with it (e.g. `/jwks`, `/me`) get no answer; the others are served. */
  hangPath: string | undefined;
  private server?: Server;
  private readonly signingKey: KeyObject;
  /** A forger's key pair (for `foreignKey`) and its public JWK. */
  private readonly forgerKey: KeyObject;
  private readonly forgerJwk: Record<string, unknown>;
  /** Requests for {@link forgerJwksUrl} (a client that trusts a token's `jku` header would make one). */
  forgerJwksRequests = 0;
  private readonly jwk: Record<string, unknown>;
  private provider!: Provider;
  port = 0;

  private constructor(
    private readonly clients: TestOidcClient[],
    private readonly fixedIssuer?: string,
  ) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.signingKey = privateKey;
    this.jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' };
    this.forgerKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    this.forgerJwk = { ...createPublicKey(this.forgerKey).export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' };
  }

  get issuer(): string {
    return this.fixedIssuer ?? `http://127.0.0.1:${this.port}`;
  }

  /** A JWKS with the forger's key, on the provider's own host but named nowhere in its metadata. */
  get forgerJwksUrl(): string {
    return `${this.issuer}/forger/jwks`;
  }

  /**
   * Starts on a free loopback port (or `port`). `issuer`: another origin that stands for the provider (a proxy in front
   * of it that forwards with its own `Host`); the provider's metadata and tokens name it, and its endpoints are on it.
   */
  static async start(clients: TestOidcClient[], port = 0, issuer?: string): Promise<TestOidcProvider> {
    const idp = new TestOidcProvider(clients, issuer);
    await idp.listen(port);
    return idp;
  }

  /** Reserves a free port without listening: a provider that is down until {@link listen} is called. */
  static async reservePort(): Promise<number> {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    return port;
  }

  async listen(port = this.port): Promise<void> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.provider ??= this.build();
    const handle = this.provider.callback();
    server.on('request', (request, response) => {
      if (this.down) request.socket.destroy();
      else if (this.hang || (this.hangPath !== undefined && (request.url ?? '').startsWith(this.hangPath))) return;
      else if (request.url === '/forger/jwks') {
        this.forgerJwksRequests++;
        response.setHeader('content-type', 'application/json');
        response.end(JSON.stringify({ keys: [this.forgerJwk] }));
      }
      else void handle(request, response);
    });
    this.server = server;
  }

  private build(): Provider {
    const accounts = this.accounts;
    const provider = new Provider(this.issuer, {
      // require_auth_time (OpenID Connect Dynamic Client Registration 2), as the README asks hosts to register their
      // client: every ID token says when the person authenticated, also on a sign-in (sent without max_age), whose
      // session is fresh from then.
      clients: this.clients.map((c) => ({ ...c, grant_types: ['authorization_code'], response_types: ['code'], require_auth_time: true })),
      jwks: { keys: [this.jwk as never] },
      pkce: { required: () => true },
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'department', 'suspended'], groups: ['groups'] },
      scopes: ['openid', 'email', 'profile', 'groups'],
      features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
      findAccount: async (_ctx, sub) => ({
        accountId: sub,
        claims: async () => ({ sub, ...(accounts.get(sub) ?? {}) }),
      }),
      ttl: { Session: 3600, Interaction: 600, Grant: 3600, IdToken: 3600, AccessToken: 3600, AuthorizationCode: 60 },
      cookies: { keys: ['test-cookie-key-0123456789'] },
    });
    // Koa's default error handler prints every error; a client that hangs up on purpose (the app refusing an answer
    // it will not read) is no provider error.
    provider.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ECONNRESET') console.error(error);
    });
    provider.use(async (ctx, next) => {
      await next();
      const body = ctx.body as { id_token?: string } | undefined;
      if (ctx.path === '/token' && this.idTokenChange && body && typeof body.id_token === 'string') {
        ctx.body = { ...body, id_token: await this.changeIdToken(body.id_token) };
      }
      if (ctx.path === '/token' && this.tokenResponseChange && ctx.status === 200 && body) {
        const changed = this.tokenResponseChange(ctx.body as Record<string, unknown>);
        ctx.type = changed.contentType ?? 'application/json';
        ctx.body = changed.chunked ? Readable.from([Buffer.from(changed.body)]) : changed.body;
      }
    });
    return provider;
  }

  private async changeIdToken(idToken: string): Promise<string> {
    const change = this.idTokenChange!;
    if (change.kind === 'signature') {
      const [header, payload, signature] = idToken.split('.');
      const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1);
      return [header, payload, flipped].join('.');
    }
    const claims = decodeJwt(idToken);
    const now = Math.floor(Date.now() / 1000);
    const changed = { ...claims };
    if (change.kind === 'algorithmConfusion') {
      const header = { ...(decodeProtectedHeader(idToken) as Record<string, unknown>), alg: 'HS256' };
      const publicKeyPem = createPublicKey(this.signingKey).export({ format: 'pem', type: 'spki' }).toString();
      return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(new TextEncoder().encode(publicKeyPem));
    }
    if (change.kind === 'foreignKey') {
      const header = { ...(decodeProtectedHeader(idToken) as Record<string, unknown>), alg: 'RS256', kid: 'test-key' };
      if (change.embed === 'jwk') header.jwk = this.forgerJwk;
      else header.jku = this.forgerJwksUrl;
      return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(this.forgerKey);
    }
    if (change.kind === 'alg') {
      const header = { ...(decodeProtectedHeader(idToken) as Record<string, unknown>), alg: change.alg };
      delete header.kid;
      if (change.alg === 'none') {
        const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
        return `${part(header)}.${part(claims)}.`;
      }
      return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(new TextEncoder().encode(change.secret));
    }
    if (change.kind === 'claims') {
      for (const [key, value] of Object.entries(change.claims)) {
        if (value === undefined) delete changed[key];
        else changed[key] = value;
      }
    } else if (change.kind === 'expired') Object.assign(changed, { iat: now - 7200, exp: now - 3600 });
    else if (change.kind === 'amr') changed.amr = change.amr;
    else if (change.secondsAgo === null) delete changed.auth_time;
    else changed.auth_time = now - change.secondsAgo;
    return new SignJWT(changed).setProtectedHeader(decodeProtectedHeader(idToken) as { alg: string }).sign(this.signingKey);
  }

  /** Stops listening (the provider is "down"); {@link listen} brings it back on the same port. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A cookie jar for one browser at the identity provider. */
export class IdpBrowser {
  private readonly cookies = new Map<string, string>();

  private header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private keep(response: Response): void {
    for (const cookie of response.headers.getSetCookie()) {
      const [pair, ...attrs] = cookie.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (attrs.some((a) => /expires=Thu, 01 Jan 1970/i.test(a)) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
    const response = await fetch(url, {
      method: init.method ?? (init.form ? 'POST' : 'GET'),
      redirect: 'manual',
      headers: { cookie: this.header(), ...(init.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: init.form ? new URLSearchParams(init.form).toString() : undefined,
    });
    this.keep(response);
    return response;
  }

  /**
   * Follows the provider's pages from an authorization URL, signing in as `login` and consenting, until the
   * provider redirects outside itself (to the client's redirect URI). Returns that URL.
   */
  async authorize(authorizationUrl: string, login: string): Promise<string> {
    const origin = new URL(authorizationUrl).origin;
    let url = authorizationUrl;
    for (let step = 0; step < 20; step++) {
      const response = await this.request(url);
      if (response.status >= 300 && response.status < 400) {
        const next = new URL(response.headers.get('location')!, url).toString();
        if (new URL(next).origin !== origin) return next;
        url = next;
        continue;
      }
      const html = await response.text();
      if (response.status !== 200) throw new Error(`identity provider answered ${response.status}: ${html.slice(0, 300)}`);
      const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
      if (!action) throw new Error(`no interaction form at ${url}: ${html.slice(0, 300)}`);
      // Hidden fields as the page has them (prompt, or the provider's own auto-submitted forms such as the
      // logout of the previous account when another one signs in), plus the credentials on the login page.
      const form: Record<string, string> = {};
      for (const [, name, value] of html.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) form[name] = value;
      const prompt = form.prompt ?? 'auto-submit';
      if (prompt === 'login') Object.assign(form, { login, password: 'any' });
      const posted = await this.request(new URL(action, url).toString(), { form });
      if (posted.status < 300 || posted.status >= 400) throw new Error(`interaction ${prompt} answered ${posted.status}`);
      const next = new URL(posted.headers.get('location')!, url).toString();
      if (new URL(next).origin !== origin) return next;
      url = next;
    }
    throw new Error('too many steps at the identity provider');
  }
}

/** One person with a browser: a cookie jar at the app and one at the provider. */
export class ExternalLoginPerson {
  readonly app: HttpClient;
  readonly idp = new IdpBrowser();
  constructor(baseUrl: string) {
    this.app = new HttpClient(baseUrl);
  }

  /** GET /auth/external/:name/challenge; the 302 (or error) as it is. */
  challenge(name: string, query: Record<string, string> = {}): Promise<HttpResult> {
    const qs = new URLSearchParams(query).toString();
    return this.app.get(`/auth/external/${name}/challenge${qs ? `?${qs}` : ''}`, { redirect: 'manual' });
  }

  /** POST /auth/external/:name/challenge with an invite in the JSON body, as the accept-invite page does. */
  inviteChallenge(name: string, body: unknown): Promise<HttpResult> {
    return this.app.post(`/auth/external/${name}/challenge`, body);
  }

  /** Accepts an invite through the provider as `login`: POST challenge, the provider's pages, then the callback. */
  async acceptInvite(name: string, invite: { userId: string; token: string }, login: string): Promise<HttpResult> {
    const challenge = await this.inviteChallenge(name, { userId: invite.userId, token: invite.token });
    expect(challenge.status, challenge.text).toBe(200);
    return this.deliver(await this.idp.authorize(challenge.body.redirectUrl, login));
  }

  /** Challenge, then the provider's pages as `login`: the callback URL the provider redirects to. */
  async toCallback(name: string, login: string, query: Record<string, string> = {}, changeAuthorizationUrl?: (url: URL) => void): Promise<string> {
    const challenge = await this.challenge(name, query);
    expect(challenge.status, challenge.text).toBe(302);
    const authorizationUrl = new URL(challenge.headers.get('location')!);
    changeAuthorizationUrl?.(authorizationUrl);
    return this.idp.authorize(authorizationUrl.toString(), login);
  }

  /** Delivers the provider's redirect to the app (optionally to another instance of it). */
  deliver(callbackUrl: string, baseUrl?: string): Promise<HttpResult> {
    const url = new URL(callbackUrl);
    return this.app.get(`${baseUrl ?? url.origin}${url.pathname}${url.search}`, { redirect: 'manual' });
  }

  async signIn(name: string, login: string, query: Record<string, string> = {}): Promise<HttpResult> {
    return this.deliver(await this.toCallback(name, login, query));
  }
}

